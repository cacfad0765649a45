//! Oracle tests for joins: over random bounded inputs, arriving out of
//! order within the watermark bound and read by any number of workers,
//! Runnel's streaming window and interval joins give DataFusion's batch
//! answer for the same SQL over the same rows.

use proptest::prelude::*;

use crate::support::{Row, arrival_order, oracle, runnel, write_jsonl};

/// Runnel's query and the batch query that means the same; `{L}`/`{R}` are
/// the two tables. Window joins are written for DataFusion with `date_bin`.
const QUERIES: &[(&str, &str)] = &[
    (
        "SELECT l.k, l.v, r.v, l.window_start FROM (SELECT * FROM TABLE(TUMBLE(TABLE lt, DESCRIPTOR(ts), INTERVAL '1' SECOND))) l \
         JOIN (SELECT * FROM TABLE(TUMBLE(TABLE rt, DESCRIPTOR(ts), INTERVAL '1' SECOND))) r \
         ON l.k = r.k AND l.window_start = r.window_start AND l.window_end = r.window_end",
        "SELECT l.k, l.v, r.v, l.ws FROM (SELECT *, date_bin(INTERVAL '1' SECOND, ts) AS ws FROM lt) l \
         JOIN (SELECT *, date_bin(INTERVAL '1' SECOND, ts) AS ws FROM rt) r ON l.k = r.k AND l.ws = r.ws",
    ),
    (
        "SELECT l.k, l.v, r.v, COALESCE(l.window_start, r.window_start) FROM (SELECT * FROM TABLE(TUMBLE(TABLE lt, DESCRIPTOR(ts), INTERVAL '1' SECOND))) l \
         FULL JOIN (SELECT * FROM TABLE(TUMBLE(TABLE rt, DESCRIPTOR(ts), INTERVAL '1' SECOND))) r \
         ON l.k = r.k AND l.window_start = r.window_start AND l.window_end = r.window_end AND l.v < r.v",
        "SELECT l.k, l.v, r.v, COALESCE(l.ws, r.ws) FROM (SELECT *, date_bin(INTERVAL '1' SECOND, ts) AS ws FROM lt) l \
         FULL JOIN (SELECT *, date_bin(INTERVAL '1' SECOND, ts) AS ws FROM rt) r ON l.k = r.k AND l.ws = r.ws AND l.v < r.v",
    ),
    (
        "SELECT l.k, l.v, r.v FROM lt l JOIN rt r ON l.k = r.k \
         AND l.ts BETWEEN r.ts - INTERVAL '1' SECOND AND r.ts + INTERVAL '2' SECOND",
        "SELECT l.k, l.v, r.v FROM lt l JOIN rt r ON l.k = r.k \
         AND l.ts BETWEEN r.ts - INTERVAL '1' SECOND AND r.ts + INTERVAL '2' SECOND",
    ),
    (
        "SELECT l.k, l.v, r.v FROM lt l LEFT JOIN rt r ON l.k = r.k \
         AND r.ts >= l.ts AND r.ts < l.ts + INTERVAL '1' SECOND AND l.v > r.v",
        "SELECT l.k, l.v, r.v FROM lt l LEFT JOIN rt r ON l.k = r.k \
         AND r.ts >= l.ts AND r.ts < l.ts + INTERVAL '1' SECOND AND l.v > r.v",
    ),
    (
        "SELECT l.k, l.v, r.v FROM lt l FULL JOIN rt r ON l.k = r.k \
         AND r.ts > l.ts - INTERVAL '1' SECOND AND r.ts <= l.ts",
        "SELECT l.k, l.v, r.v FROM lt l FULL JOIN rt r ON l.k = r.k \
         AND r.ts > l.ts - INTERVAL '1' SECOND AND r.ts <= l.ts",
    ),
    (
        "SELECT l.k, l.v FROM lt l WHERE EXISTS (SELECT 1 FROM rt r WHERE r.k = l.k \
         AND r.ts BETWEEN l.ts AND l.ts + INTERVAL '1' SECOND)",
        "SELECT l.k, l.v FROM lt l WHERE EXISTS (SELECT 1 FROM rt r WHERE r.k = l.k \
         AND r.ts BETWEEN l.ts AND l.ts + INTERVAL '1' SECOND)",
    ),
];

fn side() -> impl Strategy<Value = (Vec<Row>, Vec<i64>)> {
    prop::collection::vec((0i64..4, 0i64..50, 0i64..6000), 0..40).prop_flat_map(|rows| {
        let n = rows.len();
        (Just(rows), prop::collection::vec(0i64..1000, n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn joins_match_batch_for_any_workers_and_arrival_order(
        (left, left_jitter) in side(),
        (right, right_jitter) in side(),
        query in 0..QUERIES.len(),
        workers in 1usize..4,
    ) {
        let base = 1_600_000_000_000;
        let shift = |rows: Vec<Row>| rows.into_iter().map(|(k, v, t)| (k, v, t + base)).collect::<Vec<_>>();
        let (left, right) = (shift(left), shift(right));
        let dir = tempfile::tempdir().unwrap();
        write_jsonl(&dir.path().join("lt.jsonl"), &arrival_order(&left, &left_jitter));
        write_jsonl(&dir.path().join("rt.jsonl"), &arrival_order(&right, &right_jitter));
        let (streaming, batch) = QUERIES[query];
        prop_assert_eq!(runnel(dir.path(), streaming, workers, true), oracle(&left, &right, batch), "query {}", query);
    }
}
