//! OVER aggregations: for any worker count and any arrival order within
//! the watermark's bound, every row comes out once with the aggregates of
//! its frame, as a direct computation over the rows in time order gives.

use proptest::prelude::*;

use crate::support::{run_script_none_late, timestamp};

#[derive(Debug, Clone, Copy)]
enum Frame {
    RangeMillis(i64),
    Rows(usize),
    Unbounded,
}

impl Frame {
    fn sql(self) -> String {
        match self {
            Frame::RangeMillis(ms) => {
                format!("RANGE BETWEEN INTERVAL '0.{ms:03}' SECOND PRECEDING AND CURRENT ROW")
            }
            Frame::Rows(n) => format!("ROWS BETWEEN {n} PRECEDING AND CURRENT ROW"),
            Frame::Unbounded => "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW".into(),
        }
    }
}

/// (id, key, value, time in ms): ids in time order; times are unique,
/// so that a ROWS frame does not depend on arrival order.
type Reading = (i64, i64, i64, i64);

fn run(rows: &[Reading], frame: Frame, workers: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.jsonl");
    let text: String = rows
        .iter()
        .map(|(id, k, v, ts)| {
            format!(
                "{{\"id\": {id}, \"k\": {k}, \"v\": {v}, \"ts\": \"{}\"}}\n",
                timestamp(*ts)
            )
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    let script = format!(
        "CREATE TABLE t (id BIGINT, k BIGINT, v BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         SELECT id, SUM(v) OVER w, COUNT(v) OVER w, MIN(v) OVER w, MAX(v) OVER w FROM t \
         WINDOW w AS (PARTITION BY k ORDER BY ts {})",
        path.display(),
        frame.sql()
    );
    run_script_none_late(&script, workers)
}

/// Each row's aggregates over its frame, computed directly.
fn expected(rows: &[Reading], frame: Frame) -> Vec<String> {
    let mut by_time: Vec<Reading> = rows.to_vec();
    by_time.sort_by_key(|r| r.3);
    let mut out: Vec<String> = by_time
        .iter()
        .enumerate()
        .map(|(at, &(id, k, _, ts))| {
            let earlier: Vec<&Reading> = by_time[..=at].iter().filter(|r| r.1 == k).collect();
            let in_frame: Vec<i64> = match frame {
                Frame::RangeMillis(ms) => earlier
                    .iter()
                    .filter(|r| r.3 >= ts - ms)
                    .map(|r| r.2)
                    .collect(),
                Frame::Rows(n) => earlier.iter().rev().take(n + 1).map(|r| r.2).collect(),
                Frame::Unbounded => earlier.iter().map(|r| r.2).collect(),
            };
            format!(
                "[{id}, {}, {}, {}, {}]",
                in_frame.iter().sum::<i64>(),
                in_frame.len(),
                in_frame.iter().min().unwrap(),
                in_frame.iter().max().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

fn frames() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (1i64..400).prop_map(Frame::RangeMillis),
        (0usize..6).prop_map(Frame::Rows),
        Just(Frame::Unbounded),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    #[test]
    fn each_row_gets_the_aggregates_of_its_frame(
        readings in proptest::collection::vec((0i64..7, -50i64..50, 0i64..900), 200..1500),
        frame in frames(),
        workers in 1usize..=3,
    ) {
        // Row i is at time base + 2i ms and arrives at its place in the
        // order of i + jitter: out of order by under the 1 s bound.
        let base = 1_586_937_600_000;
        let mut rows: Vec<(i64, Reading)> = readings
            .iter()
            .enumerate()
            .map(|(i, &(k, v, jitter))| {
                let i = i as i64;
                (2 * i + jitter, (i, k, v, base + 2 * i))
            })
            .collect();
        rows.sort_by_key(|r| r.0);
        let rows: Vec<Reading> = rows.into_iter().map(|r| r.1).collect();
        let got = run(&rows, frame, workers);
        let want = expected(&rows, frame);
        let difference = crate::support::difference(&got, &want);
        prop_assert!(difference.is_none(), "{}", difference.unwrap_or_default());
    }
}
