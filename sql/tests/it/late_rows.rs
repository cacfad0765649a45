//! `'late-rows.table'`: a source's late rows land in another table instead
//! of being dropped.

use std::sync::Arc;

use runnel_connectors::Connectors;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_engine::sink::BlackholeSink;
use runnel_sql::Session;

#[test]
fn late_rows_are_written_to_the_named_table() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bids.jsonl");
    // Watermarks advance per batch (of 8192 rows), as Flink's do per
    // interval: the first batch ends at 08:00:10, so the watermark is then
    // 08:00:09, and 08:00:03 in the next batch is late.
    let row = |auction: usize, second: u32| {
        format!(
            r#"{{"auction": {auction}, "price": 10, "ts": "2020-04-15 08:00:{second:02}.000"}}"#
        )
    };
    let mut lines: Vec<String> = (0..8191).map(|i| row(i, 1)).collect();
    lines.push(row(8191, 10));
    lines.push(row(9000, 3));
    lines.push(row(9001, 11));
    std::fs::write(&input, lines.join("\n")).unwrap();
    let late_dir = dir.path().join("late");
    let script = format!(
        "CREATE TABLE late_bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3)) \
           WITH ('connector' = 'filesystem', 'path' = '{late}', 'format' = 'json');
         CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json',
                 'late-rows.table' = 'late_bids');
         CREATE TABLE out_table (c BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO out_table SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
           GROUP BY window_start, window_end;",
        late = late_dir.display(),
        input = input.display()
    );
    let mut session = Session::new(Arc::new(Connectors::default()));
    let submitted = session.submit_blocking(&script).unwrap();
    let context = Arc::new(JobContext::default());
    struct Nothing;
    impl runnel_engine::connector::SinkProvider for Nothing {
        fn sink(
            &self,
            _worker: usize,
            _peers: usize,
        ) -> Result<Box<dyn runnel_engine::sink::BatchSink>, runnel_engine::EngineError> {
            Ok(Box::new(BlackholeSink))
        }
    }
    submitted
        .job
        .run(&Cluster::local(1), context.clone(), Arc::new(Nothing))
        .unwrap();
    let written = std::fs::read_to_string(late_dir.join("part-0.json")).unwrap();
    assert_eq!(
        written.trim(),
        r#"{"auction":9000,"price":10,"ts":"2020-04-15 08:00:03.000"}"#
    );
    assert_eq!(
        context
            .late_records
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn a_late_rows_table_must_exist() {
    let mut session = Session::new(Arc::new(Connectors::default()));
    let error = session
        .submit_blocking(
            "CREATE TABLE bids (ts TIMESTAMP(3), WATERMARK FOR ts AS ts) \
               WITH ('connector' = 'datagen', 'late-rows.table' = 'nope');
             SELECT * FROM bids",
        )
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("'late-rows.table' names 'nope', which is not a table"),
        "{error}"
    );
}
