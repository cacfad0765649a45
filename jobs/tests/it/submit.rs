use std::sync::Arc;

use runnel_connectors::Connectors;
use runnel_jobs::{Cluster, Watermark};

const SCRIPT: &str = "
CREATE TABLE numbers (id BIGINT) WITH (
  'connector' = 'datagen', 'number-of-rows' = '1000', 'fields.id.kind' = 'sequence',
  'fields.id.start' = '1', 'fields.id.end' = '1000');
CREATE TABLE out_table (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out_table SELECT id FROM numbers WHERE id % 2 = 0;
";

/// Planning from inside a multi-threaded runtime, as a server handler
/// does, must not try to start a runtime of its own there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_submitted_from_async_code_runs_to_its_end() {
    let submission = runnel_jobs::submit(SCRIPT.to_string(), Arc::new(Connectors::default()))
        .await
        .unwrap();
    assert_eq!(submission.sources_of("datagen"), 1);
    assert!(
        submission.plan().contains("Sink: out_table"),
        "{}",
        submission.plan()
    );
    let results = runnel_connectors::results_sink("blackhole").unwrap();
    let job = runnel_jobs::start(submission, Cluster::local(2), results, "evens", None).unwrap();
    let context = job.context().clone();
    tokio::task::spawn_blocking(move || job.wait())
        .await
        .unwrap()
        .unwrap();
    let figures = runnel_jobs::Figures::of(&context);
    assert_eq!(figures.records_in, 1000);
    assert_eq!(figures.records_out, 500);
    assert_eq!(figures.watermark, Watermark::EndOfInput);
}

#[test]
fn a_rejected_script_says_where() {
    let error = runnel_jobs::submit_blocking(
        "CREATE TABLE t (a BIGINT) WITH ('connector' = 'datagen');\nSELECT b FROM t",
        Arc::new(Connectors::default()),
    )
    .err()
    .unwrap();
    assert!(matches!(error, runnel_jobs::JobError::Rejected(_)));
    assert!(error.to_string().contains("line 2, column 8"), "{error}");
}
