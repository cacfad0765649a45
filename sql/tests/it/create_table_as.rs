//! `CREATE TABLE ... WITH (...) AS SELECT`: the rows land in the new
//! table, whose columns are the query's, and a later query reads them;
//! SHOW FUNCTIONS lists what a query can call.

use std::sync::Arc;

use runnel_connectors::Connectors;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_sql::Session;

use crate::support::Collected;

#[test]
fn a_created_table_holds_the_querys_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big");
    let bids = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt/data/bids.jsonl");
    let create = format!(
        "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         CREATE TABLE big WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json')
           AS SELECT auction, price * 2 AS doubled FROM bids WHERE price > 20;",
        bids.display(),
        out.display()
    );
    let mut session = Session::new(Arc::new(Connectors::default()));
    let submitted = session.submit_blocking(&create).unwrap();
    assert_eq!(submitted.job.pipelines.len(), 1);
    submitted
        .job
        .run(
            &Cluster::local(2),
            Arc::new(JobContext::default()),
            Arc::new(Collected::default()),
        )
        .unwrap();
    // The same session reads the table back.
    let read = session
        .submit_blocking("SELECT doubled, auction FROM big")
        .unwrap();
    let rows = Collected::default();
    read.job
        .run(
            &Cluster::local(1),
            Arc::new(JobContext::default()),
            Arc::new(rows.clone()),
        )
        .unwrap();
    let mut rows = rows.0.lock().unwrap().clone();
    rows.sort();
    assert_eq!(rows, ["[100, 2]", "[50, 2]", "[60, 1]"]);
}

#[test]
fn show_functions_lists_what_queries_can_call() {
    let mut session = Session::new(Arc::new(Connectors::default()));
    let submitted = session.submit_blocking("SHOW FUNCTIONS").unwrap();
    let names: Vec<&str> = submitted.explained[0].lines().collect();
    // DataFusion's, Flink's where they differ, and aggregates alike.
    for name in [
        "abs",
        "mod",
        "json_value",
        "split_index",
        "listagg",
        "count",
    ] {
        assert!(names.contains(&name), "{name} missing from SHOW FUNCTIONS");
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted, "sorted, each once");
}
