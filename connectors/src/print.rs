//! The `print` connector: one line per row, `+I[v1, v2, ...]`, prefixed
//! `<identifier>> ` and, with several workers, `<task>> ` as Flink does.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;

use crate::ConnectorError;
use crate::display;
use crate::options::Options;

pub struct PrintSink {
    identifier: Option<String>,
    standard_error: bool,
}

impl PrintSink {
    pub fn new(options: &Options) -> Result<Self, ConnectorError> {
        Ok(PrintSink {
            identifier: options.get("print-identifier").map(str::to_string),
            standard_error: options.bool("standard-error", false)?,
        })
    }
}

impl SinkProvider for PrintSink {
    fn sink(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        let prefix = match (&self.identifier, peers > 1) {
            (Some(id), true) => format!("{id}:{}> ", worker + 1),
            (Some(id), false) => format!("{id}> "),
            (None, true) => format!("{}> ", worker + 1),
            (None, false) => String::new(),
        };
        Ok(Box::new(PrintWriter {
            prefix,
            standard_error: self.standard_error,
        }))
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    /// Its output is for watching: a restored job prints (or drops) the
    /// rows since the last checkpoint again, and nothing is to commit.
    fn checkpointable(&self) -> bool {
        true
    }
}

struct PrintWriter {
    prefix: String,
    standard_error: bool,
}

impl BatchSink for PrintWriter {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        let text = render_rows(&self.prefix, &batch);
        let result = if self.standard_error {
            std::io::stderr().lock().write_all(text.as_bytes())
        } else {
            std::io::stdout().lock().write_all(text.as_bytes())
        };
        result.map_err(|e| EngineError::Connector {
            connector: "print",
            message: e.to_string(),
        })
    }
}

/// Rows as Flink prints them: `+I[...]`, or a changelog's `-U[...]`,
/// `+U[...]`, `-D[...]` (its `__op` column gives the kind).
pub fn render_rows(prefix: &str, batch: &RecordBatch) -> String {
    let kinds = runnel_engine::changelog::kinds(batch);
    let width = batch.num_columns() - usize::from(kinds.is_some());
    let mut text = String::new();
    for row in 0..batch.num_rows() {
        let values: Vec<String> = batch.columns()[..width]
            .iter()
            .map(|c| display::value(c.as_ref(), row))
            .collect();
        let kind = kinds.as_ref().map_or("+I", |k| k[row].short());
        text.push_str(prefix);
        text.push_str(kind);
        text.push('[');
        text.push_str(&values.join(", "));
        text.push_str("]\n");
    }
    text
}

pub fn sink(options: &Options) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
    Ok(Arc::new(PrintSink::new(options)?))
}
