//! Runs `tests/slt/*.slt`. Statements accumulate into a script; each
//! `query` submits the script so far plus the query, runs it to the end of
//! its bounded input, and compares the rows printed the way Flink's
//! `print` connector prints them (without the `+I[...]` wrapper).
//!
//! A changelog (`+I`, `-U`, `+U`, `-D`) is applied as it arrives, so a
//! query's rows are the table it describes at the end.
//!
//! `SET 'slt.emit-watermark' = 'true'` (read by this runner, not Runnel)
//! puts first in every row the watermark it was emitted at: the time its
//! batch travelled at, after which the row is final (`window_end - 1` for
//! a window's rows).

use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use runnel_connectors::Connectors;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;
use runnel_sql::Session;
use sqllogictest::{DBOutput, DefaultColumnType};

struct Runnel {
    session: Session,
    workers: usize,
    emit_watermark: bool,
}

const EMIT_WATERMARK: &str = "SET 'slt.emit-watermark' = ";

#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

#[derive(Clone, Default)]
struct Rows {
    rows: Arc<Mutex<Vec<Vec<String>>>>,
    emit_watermark: bool,
}

impl SinkProvider for Rows {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(self.clone()))
    }
}

impl BatchSink for Rows {
    fn write(&mut self, batch: RecordBatch, time: Watermark) -> Result<(), EngineError> {
        let text = runnel_connectors::print::render_rows("", &batch);
        let mut rows = self
            .rows
            .lock()
            .map_err(|_| EngineError::Runtime("poisoned".into()))?;
        let changelog = runnel_engine::changelog::is_changelog(&batch.schema());
        for line in text.lines() {
            let (kind, inner) = line.split_at(2);
            let inner = inner.trim_start_matches('[').trim_end_matches(']');
            let mut row: Vec<String> = Vec::new();
            if self.emit_watermark {
                row.push(render_time(time));
            }
            row.extend(inner.split(", ").map(str::to_string));
            if !changelog || matches!(kind, "+I" | "+U") {
                rows.push(row);
            } else if let Some(at) = rows.iter().position(|r| *r == row) {
                // A retraction takes away one equal row: the result is
                // the table the changelog describes.
                rows.swap_remove(at);
            } else {
                return Err(EngineError::Runtime(format!(
                    "{kind} of a row that is not there: {row:?}"
                )));
            }
        }
        Ok(())
    }
}

impl sqllogictest::DB for Runnel {
    type Error = Failure;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Failure> {
        if let Some(value) = sql.trim().strip_prefix(EMIT_WATERMARK) {
            self.emit_watermark = value.trim().trim_end_matches(';') == "'true'";
            return Ok(DBOutput::StatementComplete(0));
        }
        let submitted = self
            .session
            .submit_blocking(sql)
            .map_err(|e| Failure(e.to_string()))?;
        if let Some(text) = submitted.explained.last() {
            return Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Text],
                rows: text.lines().map(|l| vec![l.to_string()]).collect(),
            });
        }
        if submitted.job.is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let rows = Rows {
            emit_watermark: self.emit_watermark,
            ..Rows::default()
        };
        let context = Arc::new(JobContext::default());
        submitted
            .job
            .run(
                &Cluster::local(self.workers),
                context,
                Arc::new(rows.clone()),
            )
            .map_err(|e| Failure(e.to_string()))?;
        let rows = rows
            .rows
            .lock()
            .map_err(|_| Failure("poisoned".into()))?
            .clone();
        let width = rows.first().map_or(1, Vec::len);
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }
}

fn run_file(path: &std::path::Path, workers: usize) {
    let mut runner = sqllogictest::Runner::new(|| async move {
        Ok(Runnel {
            session: Session::new(Arc::new(Connectors::default())),
            workers,
            emit_watermark: false,
        })
    });
    runner.with_hash_threshold(0);
    if let Err(error) = runner.run_file(path) {
        panic!("{} with {workers} worker(s):\n{error}", path.display());
    }
}

#[test]
fn slt_files_pass_with_one_and_with_three_workers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    // Paths in the files are relative to the crate.
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).expect("cd");
    for file in &files {
        run_file(file, 1);
        run_file(file, 3);
    }
}

fn render_time(time: Watermark) -> String {
    chrono::DateTime::from_timestamp_millis(time)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| time.to_string())
}
