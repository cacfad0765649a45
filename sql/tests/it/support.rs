//! Running a script over two JSON-lines tables `lt` and `rt` (columns `k`,
//! `v`, `ts`), and DataFusion's batch answer over the same rows.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Int64Array, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use runnel_connectors::Connectors;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;
use runnel_sql::Session;

/// (key, value, event time in ms since the epoch)
pub type Row = (i64, i64, i64);

/// The table a job's output describes: inserts add a row, retractions
/// (`-U`, `-D`) take an equal row away.
#[derive(Clone, Default)]
pub struct Collected(pub Arc<Mutex<Vec<String>>>);

impl SinkProvider for Collected {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(self.clone()))
    }
}

impl BatchSink for Collected {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        let mut rows = self.0.lock().unwrap();
        // One row at a time: a value may hold a line break (PRINTF's %n).
        for at in 0..batch.num_rows() {
            let text = runnel_connectors::print::render_rows("", &batch.slice(at, 1));
            let line = text.strip_suffix('\n').unwrap_or(&text);
            let (kind, row) = line.split_at(2);
            let row = row.to_string();
            if matches!(kind, "+I" | "+U") {
                rows.push(row);
            } else {
                let at = rows
                    .iter()
                    .position(|r| *r == row)
                    .unwrap_or_else(|| panic!("{kind} of a row that is not there: {row}"));
                rows.swap_remove(at);
            }
        }
        Ok(())
    }
}

pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

pub fn write_jsonl(path: &std::path::Path, rows: &[Row]) {
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

/// Runs `query` over `lt` and `rt` in `dir`, with a one-second watermark
/// bound or none, and returns the rows its output describes, sorted.
pub fn runnel(dir: &std::path::Path, query: &str, workers: usize, watermark: bool) -> Vec<String> {
    let table = |name: &str| {
        format!(
            "CREATE TABLE {name} (k BIGINT, v BIGINT, ts TIMESTAMP(3){}) \
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');",
            if watermark {
                ", WATERMARK FOR ts AS ts - INTERVAL '1' SECOND"
            } else {
                ""
            },
            dir.join(format!("{name}.jsonl")).display()
        )
    };
    let script = format!("{}\n{}\n{query}", table("lt"), table("rt"));
    run_script_none_late(&script, workers)
}

/// Runs a script to the end of its input into `sink`; its context.
pub fn run_into(script: &str, workers: usize, sink: Arc<dyn SinkProvider>) -> Arc<JobContext> {
    let mut session = Session::new(Arc::new(Connectors::default()));
    let submitted = session.submit_blocking(script).unwrap();
    let context = Arc::new(JobContext::default());
    submitted
        .job
        .run(&Cluster::local(workers), context.clone(), sink)
        .unwrap();
    context
}

/// Runs a script to the end of its input; its context, and the rows its
/// bare SELECT's output describes, sorted.
pub fn run_script(script: &str, workers: usize) -> (Arc<JobContext>, Vec<String>) {
    let rows = Collected::default();
    let context = run_into(script, workers, Arc::new(rows.clone()));
    let mut rows = rows.0.lock().unwrap().clone();
    rows.sort();
    (context, rows)
}

/// `run_script`'s rows, for an input no row of which may be late.
pub fn run_script_none_late(script: &str, workers: usize) -> Vec<String> {
    let (context, rows) = run_script(script, workers);
    assert_none_late(&context);
    rows
}

pub fn assert_none_late(context: &JobContext) {
    assert_eq!(
        context
            .late_records
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// Batches' rows as `print` shows them (without the kind), sorted.
pub fn rendered(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            runnel_connectors::print::render_rows("", b)
                .lines()
                .map(|line| line[2..].to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    rows
}

pub fn batch_of(rows: &[Row]) -> RecordBatch {
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

pub fn oracle(left: &[Row], right: &[Row], query: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let context = SessionContext::new();
        runnel_sql::register_flink_functions(&context).unwrap();
        for (name, rows) in [("lt", left), ("rt", right)] {
            let batch = batch_of(rows);
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
            context.register_table(name, Arc::new(table)).unwrap();
        }
        let batches = context.sql(query).await.unwrap().collect().await.unwrap();
        rendered(&batches)
    })
}

/// Rows in an order that is out of order by less than a second, the
/// watermark bound: each row arrives as if at `ts + jitter`.
pub fn arrival_order(rows: &[Row], jitters: &[i64]) -> Vec<Row> {
    let mut order: Vec<(i64, usize)> = rows
        .iter()
        .zip(jitters)
        .enumerate()
        .map(|(i, (r, j))| (r.2 + j, i))
        .collect();
    order.sort();
    order.into_iter().map(|(_, i)| rows[i]).collect()
}

/// How `got` differs from `want` (row counts, then the first differing
/// row), or `None` when they are equal: a failure message short enough to
/// read for inputs of thousands of rows.
pub fn difference(got: &[String], want: &[String]) -> Option<String> {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    (got.len() != want.len() || first.is_some()).then(|| {
        format!(
            "{} rows, {} expected; first difference at {:?}: {:?} vs {:?}",
            got.len(),
            want.len(),
            first,
            first.map(|i| &got[i]),
            first.map(|i| &want[i]),
        )
    })
}
