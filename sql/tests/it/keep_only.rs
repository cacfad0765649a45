//! The `event_type` pushdown (`KeepOnly`) changes nothing but speed: a
//! query that keeps one kind of a tagged union's rows, over rows of the
//! kinds out of order with each other, gives the same rows as the same
//! table read whole and filtered afterwards, with the same late count,
//! whether Runnel's JSON decoder or arrow-json (a chunk it gives back)
//! reads the lines.

use std::sync::atomic::Ordering;

use proptest::prelude::*;

use crate::support::{run_script, timestamp};

/// `(kind, key, event time in ms)`; kinds 0 and 1 carry their time in
/// different nested objects, as Nexmark's person and bid do.
type Event = (i64, i64, i64);

fn line((kind, key, ts): Event, arrow_only: bool) -> String {
    // A `T` spelling with a zone Runnel's decoder leaves to arrow-json.
    let time = if arrow_only {
        format!("{}Z", timestamp(ts).replace(' ', "T"))
    } else {
        timestamp(ts)
    };
    let image = format!("{{\"key\": {key}, \"at\": \"{time}\", \"note\": \"n{key}\"}}");
    match kind {
        0 => format!("{{\"kind\": 0, \"a\": {image}, \"b\": null}}\n"),
        _ => format!("{{\"kind\": 1, \"a\": null, \"b\": {image}}}\n"),
    }
}

fn script(path: &std::path::Path, filter: &str) -> String {
    format!(
        "CREATE TABLE events (
           kind INT,
           a ROW<key BIGINT, at TIMESTAMP(3), note STRING>,
           b ROW<key BIGINT, at TIMESTAMP(3), note STRING>,
           at AS CASE WHEN kind = 0 THEN a.at ELSE b.at END,
           WATERMARK FOR at AS at - INTERVAL '1' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         SELECT kind, b.key, b.note, at FROM events {filter};",
        path.display()
    )
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((0..2i64, 0..50i64, 0..20_000i64), 1..400)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn keeping_one_kind_early_changes_neither_rows_nor_late_counts(
        events in events(),
        workers in 1..3usize,
        arrow_only in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let text: String = events.iter().map(|e| line(*e, arrow_only)).collect();
        std::fs::write(&path, text).unwrap();

        let (whole, all_rows) = run_script(&script(&path, ""), workers);
        let (pushed, kept_rows) = run_script(&script(&path, "WHERE kind = 1"), workers);
        let expected: Vec<String> = all_rows
            .into_iter()
            .filter(|row| row.starts_with("[1,"))
            .collect();
        prop_assert_eq!(kept_rows, expected);
        prop_assert_eq!(
            pushed.late_records.load(Ordering::Relaxed),
            whole.late_records.load(Ordering::Relaxed)
        );
    }
}

/// The pushdown is in the plan, so the test above tests it.
#[test]
fn the_filter_reaches_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, line((1, 1, 0), false)).unwrap();
    let mut session =
        runnel_sql::Session::new(std::sync::Arc::new(runnel_connectors::Connectors::default()));
    let explained = session
        .submit_blocking(
            &script(&path, "WHERE kind = 1").replace("SELECT kind", "EXPLAIN SELECT kind"),
        )
        .unwrap()
        .explained
        .join("\n");
    assert!(explained.contains("keeps kind in [1]"), "{explained}");
}
