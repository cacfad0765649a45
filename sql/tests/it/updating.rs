//! Oracle tests for updating queries: the changelog Runnel emits, applied
//! to an empty table, equals DataFusion's batch answer over the same rows,
//! for any worker count and input order.

use proptest::prelude::*;

use crate::support::{Row, oracle, runnel, write_jsonl};

/// Queries whose streaming and batch forms are the same SQL.
const QUERIES: &[&str] = &[
    "SELECT k, COUNT(*), SUM(v), MIN(v), MAX(v) FROM lt GROUP BY k",
    "SELECT k, COUNT(DISTINCT v), AVG(v) FROM lt GROUP BY k HAVING COUNT(*) > 1",
    "SELECT k, COUNT(*) FILTER (WHERE v > 20) FROM lt GROUP BY k",
    "SELECT DISTINCT k, v FROM lt",
    // An aggregate over an updating input: counts move between groups.
    "SELECT c, COUNT(*) FROM (SELECT k, COUNT(*) AS c FROM lt GROUP BY k) GROUP BY c",
    "SELECT COUNT(*), SUM(v), MAX(v) FROM lt",
    "SELECT l.k, l.v, r.v FROM lt l JOIN rt r ON l.k = r.k AND l.v < r.v",
    "SELECT l.k, MAX(r.v), COUNT(*) FROM lt l JOIN rt r ON l.k = r.k GROUP BY l.k",
    "SELECT l.k, l.v FROM lt l WHERE l.k IN (SELECT k FROM rt WHERE v > 25)",
    "SELECT l.k, l.v, r.v FROM lt l LEFT JOIN rt r ON l.k = r.k AND l.v < r.v",
    "SELECT l.v, r.k, r.v FROM lt l RIGHT JOIN rt r ON l.k = r.k AND l.v > r.v",
    "SELECT l.k, l.v, r.k, r.v FROM lt l FULL JOIN rt r ON l.k = r.k",
    "SELECT l.k, l.v FROM lt l WHERE NOT EXISTS (SELECT 1 FROM rt r WHERE r.k = l.k AND r.v > l.v)",
    "SELECT r.k, COUNT(l.v) FROM lt l RIGHT JOIN rt r ON l.k = r.k GROUP BY r.k",
    "SELECT k, v, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM lt) WHERE rn <= 2",
    // Keeping the last row per key; v breaks ties of equal times.
    "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC, v DESC) AS rn FROM lt) WHERE rn = 1",
    "SELECT k, c, rn FROM (SELECT k, c, ROW_NUMBER() OVER (ORDER BY c DESC, k) AS rn FROM (SELECT k, COUNT(*) AS c FROM lt GROUP BY k)) WHERE rn <= 2",
];

fn rows(min: usize) -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec((0i64..5, 0i64..50, 0i64..6000), min..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn changelogs_apply_to_the_batch_answer_for_any_workers_and_order(
        left in rows(1),
        right in rows(0),
        query in 0..QUERIES.len(),
        workers in 1usize..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_jsonl(&dir.path().join("lt.jsonl"), &left);
        write_jsonl(&dir.path().join("rt.jsonl"), &right);
        let sql = QUERIES[query];
        prop_assert_eq!(runnel(dir.path(), sql, workers, false), oracle(&left, &right, sql), "{}", sql);
    }
}

/// A GROUP BY written to files as Debezium JSON: replaying the envelopes
/// gives the final counts.
#[test]
fn debezium_json_files_replay_to_the_final_result() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Row> = (0..30).map(|i| (i % 3, i, i * 10)).collect();
    write_jsonl(&dir.path().join("lt.jsonl"), &rows);
    let out = dir.path().join("out");
    let script = format!(
        "CREATE TABLE lt (k BIGINT, v BIGINT, ts TIMESTAMP(3)) \
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         CREATE TABLE counts (k BIGINT, c BIGINT, PRIMARY KEY (k) NOT ENFORCED) \
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         INSERT INTO counts SELECT k, COUNT(*) FROM lt GROUP BY k;",
        dir.path().join("lt.jsonl").display(),
        out.display()
    );
    crate::support::run_script(&script, 2);
    let mut table: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        for line in std::fs::read_to_string(entry.unwrap().path())
            .unwrap()
            .lines()
        {
            if let Some(after) = line.strip_prefix(r#"{"before":null,"after":"#) {
                assert!(after.ends_with(r#","op":"c"}"#), "{line}");
                table.push(after.trim_end_matches(r#","op":"c"}"#).to_string());
            } else {
                let before = line
                    .strip_prefix(r#"{"before":"#)
                    .and_then(|l| l.strip_suffix(r#","after":null,"op":"d"}"#))
                    .unwrap_or_else(|| panic!("not an envelope: {line}"));
                let at = table.iter().position(|r| r == before).unwrap();
                table.swap_remove(at);
            }
        }
    }
    table.sort();
    assert_eq!(
        table,
        [
            r#"{"k":0,"c":10}"#,
            r#"{"k":1,"c":10}"#,
            r#"{"k":2,"c":10}"#
        ]
    );
}

#[test]
fn an_append_only_format_refuses_an_updating_query() {
    let mut session =
        runnel_sql::Session::new(std::sync::Arc::new(runnel_connectors::Connectors::default()));
    let error = session
        .submit_blocking(
            "CREATE TABLE lt (k BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
             CREATE TABLE out_table (k BIGINT, c BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/x', 'format' = 'csv');
             INSERT INTO out_table SELECT k, COUNT(*) FROM lt GROUP BY k;",
        )
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("is append-only ('filesystem')"), "{error}");
}

/// With a PRIMARY KEY, the sink holds one row per key: replayed in order,
/// each part file never has two rows of a key. Being a changelog format,
/// debezium-json still gets each update's old row (as Flink writes it), so
/// what it writes reads back as the same table.
#[test]
fn a_primary_key_keeps_one_row_per_key() {
    let dir = tempfile::tempdir().unwrap();
    // Three groups per key: the upsert keeps one, the least row.
    let rows: Vec<Row> = (0..40).map(|i| (i % 4, i, i * 10)).collect();
    write_jsonl(&dir.path().join("lt.jsonl"), &rows);
    let out = dir.path().join("out");
    let script = format!(
        "CREATE TABLE lt (k BIGINT, v BIGINT, ts TIMESTAMP(3)) \
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         CREATE TABLE best (k BIGINT, top BIGINT, PRIMARY KEY (k) NOT ENFORCED) \
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         INSERT INTO best SELECT k, MAX(v) FROM lt GROUP BY k, v % 3;",
        dir.path().join("lt.jsonl").display(),
        out.display()
    );
    crate::support::run_script(&script, 3);
    let mut by_key = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        for line in std::fs::read_to_string(entry.unwrap().path())
            .unwrap()
            .lines()
        {
            let key = |row: &str| row.split(',').next().unwrap().to_string();
            if let Some(row) = line
                .strip_prefix(r#"{"before":null,"after":"#)
                .and_then(|l| l.strip_suffix(r#","op":"c"}"#))
            {
                let held = by_key.insert(key(row), row.to_string());
                assert!(
                    held.is_none(),
                    "a second row for a key: {line}, holding {held:?}"
                );
            } else {
                let row = line
                    .strip_prefix(r#"{"before":"#)
                    .and_then(|l| l.strip_suffix(r#","after":null,"op":"d"}"#))
                    .unwrap_or_else(|| panic!("not an envelope: {line}"));
                assert_eq!(by_key.remove(&key(row)).as_deref(), Some(row), "{line}");
            }
        }
    }
    let rows: Vec<String> = by_key.into_values().collect();
    assert_eq!(
        rows,
        [
            r#"{"k":0,"top":28}"#,
            r#"{"k":1,"top":29}"#,
            r#"{"k":2,"top":30}"#,
            r#"{"k":3,"top":31}"#
        ]
    );
}
