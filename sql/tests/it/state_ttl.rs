//! `SET 'table.exec.state.ttl'`: a long-running regular join keeps only
//! recent rows, so its state stays flat while its input grows.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use runnel_connectors::Connectors;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_sql::Session;

use std::sync::Mutex;

use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;

use crate::support::Collected;

/// Runs an unbounded script for `run_for`, sampling what its operators hold
/// (`JobContext::state_rows`) every 200 ms after a one-second warm-up of
/// several TTLs, then stops it; the samples and the rows read.
fn held_while_running(script: &str, run_for: Duration) -> (Vec<u64>, u64) {
    let mut session = Session::new(Arc::new(Connectors::default()));
    let submitted = session.submit_blocking(script).unwrap();
    let context = Arc::new(JobContext::default());
    let job_context = context.clone();
    let job = std::thread::spawn(move || {
        submitted.job.run(
            &Cluster::local(1),
            job_context,
            Arc::new(Collected::default()),
        )
    });
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < run_for {
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > Duration::from_secs(1) {
            samples.push(context.state_rows.load(Ordering::Relaxed));
        }
    }
    context.stop();
    job.join().unwrap().unwrap();
    (samples, context.records_in.load(Ordering::Relaxed))
}

#[test]
fn a_join_with_a_ttl_keeps_its_state_flat() {
    let script = "
        SET 'table.exec.state.ttl' = '300 ms';
        CREATE TABLE a (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '3000',
          'fields.k.min' = '0', 'fields.k.max' = '999');
        CREATE TABLE b (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '3000',
          'fields.k.min' = '0', 'fields.k.max' = '999');
        CREATE TABLE joined (k BIGINT, v BIGINT, w BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO joined SELECT a.k, a.v, b.v FROM a JOIN b ON a.k = b.k;";
    let (samples, read) = held_while_running(script, Duration::from_secs(4));
    let most = samples.iter().copied().max().unwrap_or(0);
    // 3,000 rows/s a side for 300 ms is about 1,800 rows; a join that kept
    // everything would hold all `read` rows.
    assert!(read > 10_000, "the sources read only {read} rows");
    // The join does hold the recent rows (it is the TTL join that runs).
    assert!(most > 500, "no join state seen: {samples:?}");
    assert!(
        most < read / 3,
        "state grew with the input: {samples:?} rows held of {read} read"
    );
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    assert!(
        last <= first.max(1_000) * 3,
        "state grew over time: {samples:?}"
    );
}

/// A GROUP BY over ever new keys forgets the idle ones under a TTL.
#[test]
fn a_group_by_with_a_ttl_keeps_its_keys_flat() {
    let script = "
        SET 'table.exec.state.ttl' = '300 ms';
        CREATE TABLE a (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '3000',
          'fields.k.kind' = 'sequence', 'fields.k.start' = '0', 'fields.k.end' = '100000000');
        CREATE TABLE counts (k BIGINT, c BIGINT, s BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO counts SELECT k, COUNT(*), SUM(v) FROM a GROUP BY k;";
    let (samples, read) = held_while_running(script, Duration::from_secs(3));
    let most = samples.iter().copied().max().unwrap_or(0);
    // Every row is a new key: without the TTL the keys held would be `read`.
    assert!(read > 5_000, "the source read only {read} rows");
    assert!(most > 200, "no keys held: {samples:?}");
    assert!(
        most < read / 3,
        "keys grew with the input: {samples:?} held of {read} read"
    );
}

/// The changelog a script's SELECT emits, row kinds kept, as printed.
#[derive(Clone, Default)]
struct Changelog(Arc<Mutex<Vec<String>>>);

impl SinkProvider for Changelog {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(self.clone()))
    }
}

impl BatchSink for Changelog {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        let text = runnel_connectors::print::render_rows("", &batch);
        self.0
            .lock()
            .unwrap()
            .extend(text.lines().map(str::to_string));
        Ok(())
    }
}

fn changelog_of(script: &str) -> (Arc<JobContext>, Vec<String>) {
    let submitted = Session::new(Arc::new(Connectors::default()))
        .submit_blocking(script)
        .unwrap();
    let rows = Changelog::default();
    let context = Arc::new(JobContext::default());
    submitted
        .job
        .run(&Cluster::local(1), context.clone(), Arc::new(rows.clone()))
        .unwrap();
    let rows = rows.0.lock().unwrap().clone();
    (context, rows)
}

/// Over an updating input (a GROUP BY of a GROUP BY), a key idle for the
/// TTL is forgotten as Flink forgets it: nothing is emitted when it goes,
/// and when it comes back it starts afresh with an insert.
#[test]
fn an_updating_group_by_forgets_idle_keys_without_retracting() {
    // Ten rows a second: keys (k / 10) % 2 take turns, a second each, so
    // each is idle for a second between its turns.
    let script = |ttl: &str| {
        format!(
            "{ttl}
        CREATE TABLE a (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10',
          'fields.k.kind' = 'sequence', 'fields.k.start' = '0', 'fields.k.end' = '39');
        SELECT (k / 10) % 2 AS g, COUNT(*) AS c
        FROM (SELECT k, MAX(v) AS m FROM a GROUP BY k) t GROUP BY (k / 10) % 2;"
        )
    };
    let final_counts = |rows: &[String]| {
        let mut table = std::collections::BTreeMap::new();
        for row in rows {
            let (kind, values) = row.split_at(2);
            let values = values.trim_matches(['[', ']']).to_string();
            let (g, c) = values.split_once(", ").unwrap();
            match kind {
                "+I" | "+U" => table.insert(g.to_string(), c.to_string()),
                _ => table.remove(g),
            };
        }
        table
    };
    let (_, kept) = changelog_of(&script(""));
    assert_eq!(
        final_counts(&kept).into_iter().collect::<Vec<_>>(),
        [("0".into(), "20".into()), ("1".into(), "20".into())],
        "{kept:?}"
    );
    let (_, forgot) = changelog_of(&script("SET 'table.exec.state.ttl' = '300 ms';"));
    assert!(
        forgot.iter().all(|r| !r.starts_with("-D")),
        "an expiry was emitted: {forgot:?}"
    );
    let inserts = forgot.iter().filter(|r| r.starts_with("+I[0,")).count();
    assert_eq!(inserts, 2, "key 0 did not start afresh: {forgot:?}");
    assert_eq!(
        final_counts(&forgot).into_iter().collect::<Vec<_>>(),
        [("0".into(), "10".into()), ("1".into(), "10".into())],
        "{forgot:?}"
    );
}

/// An outer join (differential) under a TTL holds a flat number of rows.
#[test]
fn an_outer_join_with_a_ttl_keeps_its_state_flat() {
    let script = "
        SET 'table.exec.state.ttl' = '300 ms';
        CREATE TABLE a (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '2000',
          'fields.k.kind' = 'sequence', 'fields.k.start' = '0', 'fields.k.end' = '100000000');
        CREATE TABLE b (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '2000',
          'fields.k.kind' = 'sequence', 'fields.k.start' = '0', 'fields.k.end' = '100000000');
        CREATE TABLE joined (k BIGINT, v BIGINT, w BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO joined SELECT a.k, a.v, b.v FROM a LEFT JOIN b ON a.k = b.k;";
    let (samples, read) = held_while_running(script, Duration::from_secs(4));
    let most = samples.iter().copied().max().unwrap_or(0);
    assert!(read > 8_000, "the sources read only {read} rows");
    assert!(most > 200, "no join state seen: {samples:?}");
    assert!(
        most < read / 3,
        "state grew with the input: {samples:?} rows held of {read} read"
    );
}

/// An OVER aggregation over ever new keys forgets the idle partitions
/// under a TTL, counted in wall-clock time as Flink counts it.
#[test]
fn an_over_aggregation_with_a_ttl_keeps_its_partitions_flat() {
    let script = "
        SET 'table.exec.state.ttl' = '300 ms';
        CREATE TABLE a (k BIGINT, v BIGINT, pt AS PROCTIME()) WITH ('connector' = 'datagen',
          'rows-per-second' = '3000', 'fields.k.kind' = 'sequence', 'fields.k.start' = '0',
          'fields.k.end' = '100000000');
        CREATE TABLE totals (k BIGINT, s BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO totals SELECT k, SUM(v) OVER (PARTITION BY k ORDER BY pt
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM a;";
    let (samples, read) = held_while_running(script, Duration::from_secs(3));
    let most = samples.iter().copied().max().unwrap_or(0);
    // Every row is a new partition: without the TTL all `read` would stay.
    assert!(read > 5_000, "the source read only {read} rows");
    assert!(most > 100, "no OVER state seen: {samples:?}");
    assert!(
        most < read / 2,
        "partitions grew with the input: {samples:?} held of {read} read"
    );
}
