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
    run_script_none_late(&script(&p, &v, "json"), workers)
}

/// The LEFT temporal join of the probes at `probes` with the versioned
/// table at `versions`, read in `format`.
fn script(probes: &std::path::Path, versions: &std::path::Path, format: &str) -> String {
    format!(
        "CREATE TABLE p (k BIGINT, v BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         CREATE TABLE r (k BIGINT, v BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND, PRIMARY KEY (k) NOT ENFORCED) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = '{format}');
         SELECT p.k, p.v, x.v FROM p LEFT JOIN r FOR SYSTEM_TIME AS OF p.ts AS x \
         ON p.k = x.k",
        probes.display(),
        versions.display()
    )
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

/// A change of a Debezium changelog of `r`: a new version of `k` (an
/// insert, or an update of its last one) or the delete of its last one.
#[derive(Debug, Clone, Copy)]
enum Change {
    Version(i64, i64, i64),
    Delete(i64),
}

/// `changes` in log order as debezium-json lines, and what a probe sees:
/// per key, (time, Some(value) or None for a delete) in log order. A
/// delete's time is its before image's, the version it ends, as Flink
/// reads it. Only deletes of versions under half a second old (against the
/// newest change) are written: an older one would be late for the
/// watermark's one-second bound, and which probes it still reaches would
/// depend on when it is read.
fn changelog(changes: &[Change]) -> (String, Vec<(i64, i64, Option<i64>)>) {
    use crate::support::timestamp;
    let row = |k: i64, v: i64, ts: i64| {
        format!("{{\"k\": {k}, \"v\": {v}, \"ts\": \"{}\"}}", timestamp(ts))
    };
    let mut last: std::collections::HashMap<i64, (i64, i64)> = Default::default();
    let mut text = String::new();
    let mut entries = Vec::new();
    for change in changes {
        match *change {
            Change::Version(k, v, ts) => {
                let before = last
                    .get(&k)
                    .map_or("null".to_string(), |&(bv, bts)| row(k, bv, bts));
                let op = if last.contains_key(&k) { "u" } else { "c" };
                text.push_str(&format!(
                    "{{\"before\": {before}, \"after\": {}, \"op\": \"{op}\"}}\n",
                    row(k, v, ts)
                ));
                last.insert(k, (v, ts));
                entries.push((k, ts, Some(v)));
            }
            Change::Delete(k) => {
                let newest = entries.iter().map(|e: &(i64, i64, Option<i64>)| e.1).max();
                let recent = |bts: i64| newest.is_some_and(|n| n - bts < 500);
                let Some((bv, bts)) = last.get(&k).copied().filter(|&(_, bts)| recent(bts)) else {
                    continue;
                };
                last.remove(&k);
                text.push_str(&format!(
                    "{{\"before\": {}, \"after\": null, \"op\": \"d\"}}\n",
                    row(k, bv, bts)
                ));
                entries.push((k, bts, None));
            }
        }
    }
    (text, entries)
}

/// Changes in log order, their times rising by 3 ms (so a probe, offset
/// by 1 ms, never shares a time with one), about one in four a delete.
fn changes() -> impl Strategy<Value = Vec<Change>> {
    proptest::collection::vec((0i64..6, 0u8..4), 50..400).prop_map(|rows| {
        let base = 1_586_937_600_000;
        rows.iter()
            .enumerate()
            .map(|(i, &(k, kind))| match kind {
                0 => Change::Delete(k),
                _ => Change::Version(k, i as i64, base + 3 * i as i64),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// Against a changelog: the latest change of the probe's key at or
    /// before its time, by time then log order; a delete means no version.
    #[test]
    fn a_changelog_s_deletes_end_its_versions(
        probes in side(1),
        changes in changes(),
        workers in 1usize..=3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "probes", &probes);
        let (text, entries) = changelog(&changes);
        let r = dir.path().join("changes.jsonl");
        std::fs::write(&r, text).unwrap();
        let script = script(&p, &r, "debezium-json");
        let got = run_script_none_late(&script, workers);
        let mut want: Vec<String> = probes
            .iter()
            .map(|&(k, v, ts)| {
                let found = entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.0 == k && e.1 <= ts)
                    .max_by_key(|(i, e)| (e.1, *i))
                    .and_then(|(_, e)| e.2);
                match found {
                    Some(rv) => format!("[{k}, {v}, {rv}]"),
                    None => format!("[{k}, {v}, null]"),
                }
            })
            .collect();
        want.sort();
        let difference = crate::support::difference(&got, &want);
        prop_assert!(difference.is_none(), "{}", difference.unwrap_or_default());
    }
}
