//! Oracle tests for joins: over random bounded inputs, arriving out of
//! order within the watermark bound and read by any number of workers,
//! Runnel's streaming window and interval joins give DataFusion's batch
//! answer for the same SQL over the same rows.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Int64Array, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use runnel_connectors::Connectors;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;
use runnel_sql::Session;

/// (key, value, event time in ms since the epoch)
type Row = (i64, i64, i64);

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

#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<String>>>);

impl SinkProvider for Collected {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(self.clone()))
    }
}

impl BatchSink for Collected {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        let text = runnel_connectors::print::render_rows("", &batch);
        self.0
            .lock()
            .unwrap()
            .extend(text.lines().map(str::to_string));
        Ok(())
    }
}

fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

fn write_jsonl(path: &std::path::Path, rows: &[Row]) {
    let text: String = rows
        .iter()
        .map(|(k, v, ts)| {
            format!(
                "{{\"k\": {k}, \"v\": {v}, \"ts\": \"{}\"}}\n",
                timestamp(*ts)
            )
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

fn runnel(dir: &std::path::Path, query: &str, workers: usize) -> Vec<String> {
    let table = |name: &str| {
        format!(
            "CREATE TABLE {name} (k BIGINT, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');",
            dir.join(format!("{name}.jsonl")).display()
        )
    };
    let script = format!("{}\n{}\n{query}", table("lt"), table("rt"));
    let mut session = Session::new(Arc::new(Connectors));
    let submitted = session.submit(&script).unwrap();
    let rows = Collected::default();
    let context = Arc::new(JobContext::default());
    submitted
        .job
        .run(
            &Cluster::local(workers),
            context.clone(),
            Arc::new(rows.clone()),
        )
        .unwrap();
    assert_eq!(
        context
            .late_records
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let mut rows = rows.0.lock().unwrap().clone();
    rows.sort();
    rows
}

fn batch_of(rows: &[Row]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.2),
            )),
        ],
    )
    .unwrap()
}

fn oracle(left: &[Row], right: &[Row], query: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let context = SessionContext::new();
        for (name, rows) in [("lt", left), ("rt", right)] {
            let batch = batch_of(rows);
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
            context.register_table(name, Arc::new(table)).unwrap();
        }
        let batches = context.sql(query).await.unwrap().collect().await.unwrap();
        let mut rows: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                runnel_connectors::print::render_rows("", b)
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        rows.sort();
        rows
    })
}

/// Rows in an order that is out of order by less than a second, the
/// watermark bound: each row arrives as if at `ts + jitter`.
fn arrival_order(rows: &[Row], jitters: &[i64]) -> Vec<Row> {
    let mut order: Vec<(i64, usize)> = rows
        .iter()
        .zip(jitters)
        .enumerate()
        .map(|(i, (r, j))| (r.2 + j, i))
        .collect();
    order.sort();
    order.into_iter().map(|(_, i)| rows[i]).collect()
}

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
        prop_assert_eq!(runnel(dir.path(), streaming, workers), oracle(&left, &right, batch), "query {}", query);
    }
}
