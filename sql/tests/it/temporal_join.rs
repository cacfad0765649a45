//! Event-time temporal joins: for any worker count and any arrival order
//! of both sides within the watermark's bound, each probe row meets its
//! key's latest version at or before its time, as a direct lookup finds it
//! (LEFT: NULL where there is none).

use proptest::prelude::*;

use crate::support::{Row, run_script_none_late, write_jsonl};

fn write(dir: &std::path::Path, name: &str, rows: &[Row]) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.jsonl"));
    write_jsonl(&path, rows);
    path
}

fn run(probes: &[Row], versions: &[Row], workers: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "probes", probes);
    let v = write(dir.path(), "versions", versions);
    let script = format!(
        "CREATE TABLE p (k BIGINT, v BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         CREATE TABLE r (k BIGINT, v BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND, PRIMARY KEY (k) NOT ENFORCED) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         SELECT p.k, p.v, x.v FROM p LEFT JOIN r FOR SYSTEM_TIME AS OF p.ts AS x \
         ON p.k = x.k",
        p.display(),
        v.display()
    );
    run_script_none_late(&script, workers)
}

fn expected(probes: &[Row], versions: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = probes
        .iter()
        .map(|&(k, v, ts)| {
            // Versions at one time are unique here: times are distinct.
            let version = versions
                .iter()
                .filter(|r| r.0 == k && r.2 <= ts)
                .max_by_key(|r| r.2);
            match version {
                Some(&(_, rv, _)) => format!("[{k}, {v}, {rv}]"),
                None => format!("[{k}, {v}, null]"),
            }
        })
        .collect();
    out.sort();
    out
}

/// Rows at distinct times (3 ms apart, offset by `phase`), each its own
/// value, arriving out of order by under a second.
fn side(phase: i64) -> impl Strategy<Value = Vec<Row>> {
    proptest::collection::vec((0i64..6, 0i64..900), 50..600).prop_map(move |rows| {
        let base = 1_586_937_600_000;
        let mut arriving: Vec<(i64, Row)> = rows
            .iter()
            .enumerate()
            .map(|(i, &(k, jitter))| {
                let ts = base + 3 * i as i64 + phase;
                (ts + jitter, (k, i as i64, ts))
            })
            .collect();
        arriving.sort_by_key(|r| r.0);
        arriving.into_iter().map(|r| r.1).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn each_probe_meets_the_version_valid_at_its_time(
        probes in side(1),
        versions in side(0),
        workers in 1usize..=3,
    ) {
        let got = run(&probes, &versions, workers);
        let want = expected(&probes, &versions);
        let difference = crate::support::difference(&got, &want);
        prop_assert!(difference.is_none(), "{}", difference.unwrap_or_default());
    }
}
