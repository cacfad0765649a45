//! MATCH_RECOGNIZE: for any worker count and any arrival order within the
//! watermark's bound, a V shape (`S D+ U`, greedy, SKIP PAST LAST ROW)
//! gives the matches a direct leftmost scan of each key's rows in time
//! order finds, and a pattern with aggregates, a reluctant quantifier,
//! WITHIN and SKIP TO NEXT ROW gives what it gives on one worker with the
//! rows in order.

use proptest::prelude::*;

use crate::support::{run_script_none_late, timestamp};

/// (id, key, price, time in ms): ids in time order, times unique.
type Tick = (i64, i64, i64, i64);

fn script(rows: &[Tick], query: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks.jsonl");
    let text: String = rows
        .iter()
        .map(|(id, k, price, ts)| {
            format!(
                "{{\"id\": {id}, \"k\": {k}, \"price\": {price}, \"ts\": \"{}\"}}\n",
                timestamp(*ts)
            )
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    let script = format!(
        "CREATE TABLE t (id BIGINT, k BIGINT, price BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         {query}",
        path.display()
    );
    (dir, script)
}

const V_SHAPE: &str = "SELECT k, first_id, bottom_id, last_id FROM t MATCH_RECOGNIZE (\
    PARTITION BY k ORDER BY ts \
    MEASURES FIRST(S.id) AS first_id, LAST(D.id) AS bottom_id, U.id AS last_id \
    AFTER MATCH SKIP PAST LAST ROW PATTERN (S D+ U) \
    DEFINE D AS price < PREV(price), U AS price > PREV(price))";

const RUNS: &str = "SELECT * FROM t MATCH_RECOGNIZE (\
    PARTITION BY k ORDER BY ts \
    MEASURES FIRST(A.id) AS first_id, LAST(A.id) AS last_a, B.id AS b_id, \
    SUM(A.price) AS total, COUNT(*) AS n \
    AFTER MATCH SKIP TO NEXT ROW PATTERN (A+? B) WITHIN INTERVAL '0.05' SECOND \
    DEFINE A AS SUM(A.price) < 9, B AS B.price > LAST(A.price))";

/// The V shapes of each key, found directly: from each row, left to
/// right, a run of falls taken greedily then one rise; after a match the
/// next starts past its last row.
fn v_shapes(rows: &[Tick]) -> Vec<String> {
    let mut out = Vec::new();
    let mut keys: Vec<i64> = rows.iter().map(|r| r.1).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let mut ticks: Vec<&Tick> = rows.iter().filter(|r| r.1 == k).collect();
        ticks.sort_by_key(|r| r.3);
        let mut s = 0;
        while s < ticks.len() {
            let mut j = s + 1;
            while j < ticks.len() && ticks[j].2 < ticks[j - 1].2 {
                j += 1;
            }
            let fell = j > s + 1;
            if fell && j < ticks.len() && ticks[j].2 > ticks[j - 1].2 {
                out.push(format!(
                    "[{k}, {}, {}, {}]",
                    ticks[s].0,
                    ticks[j - 1].0,
                    ticks[j].0
                ));
                s = j + 1;
            } else {
                s += 1;
            }
        }
    }
    out.sort();
    out
}

fn arrivals() -> impl Strategy<Value = Vec<(i64, Tick)>> {
    proptest::collection::vec((0i64..4, 0i64..6, 0i64..900), 100..800).prop_map(|ticks| {
        let base = 1_586_937_600_000;
        ticks
            .iter()
            .enumerate()
            .map(|(i, &(k, price, jitter))| {
                let i = i as i64;
                (2 * i + jitter, (i, k, price, base + 2 * i))
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn matches_do_not_depend_on_workers_or_arrival_order(
        ticks in arrivals(),
        workers in 1usize..=3,
    ) {
        let in_order: Vec<Tick> = ticks.iter().map(|t| t.1).collect();
        let mut arriving = ticks.clone();
        // Row i arrives at its place in the order of i + jitter: out of
        // order by under the 1 s bound.
        arriving.sort_by_key(|t| t.0);
        let arriving: Vec<Tick> = arriving.into_iter().map(|t| t.1).collect();

        let (_dir, v_script) = script(&arriving, V_SHAPE);
        let got = run_script_none_late(&v_script, workers);
        let want = v_shapes(&in_order);
        prop_assert_eq!(&got, &want, "V shapes on {} workers", workers);
        prop_assert!(!want.is_empty(), "the input has no V shape to find");

        let (_dir_a, ordered) = script(&in_order, RUNS);
        let (_dir_b, shuffled) = script(&arriving, RUNS);
        let baseline = run_script_none_late(&ordered, 1);
        prop_assert!(!baseline.is_empty());
        prop_assert_eq!(run_script_none_late(&shuffled, workers), baseline);
    }
}
