//! A bare SELECT's rows, handed to whoever follows the job's results: a
//! broadcast that never waits for a follower (one that falls behind is
//! told how many rows it missed).

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::changelog::{OP_COLUMN, kinds};
use runnel_engine::connector::SinkProvider;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;
use serde_json::Value;
use tokio::sync::broadcast;

/// One changelog row: its kind (`+I`, `-U`, `+U`, `-D`) and its values
/// in the SELECT's column order.
#[derive(Debug, serde::Serialize)]
pub struct ResultRow {
    pub op: &'static str,
    pub row: Vec<Value>,
}

pub struct ResultsSink {
    rows: broadcast::Sender<Arc<ResultRow>>,
}

impl ResultsSink {
    pub fn new(rows: broadcast::Sender<Arc<ResultRow>>) -> Self {
        ResultsSink { rows }
    }
}

impl SinkProvider for ResultsSink {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(Broadcaster {
            rows: self.rows.clone(),
        }))
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    fn wants_update_before(&self) -> bool {
        true
    }
}

struct Broadcaster {
    rows: broadcast::Sender<Arc<ResultRow>>,
}

impl BatchSink for Broadcaster {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        // Nobody follows: the rows are not even rendered.
        if self.rows.receiver_count() == 0 {
            return Ok(());
        }
        let row_kinds = kinds(&batch);
        let columns = match batch.schema().index_of(OP_COLUMN) {
            Ok(op) => {
                let mut batch = batch.clone();
                batch.remove_column(op);
                batch
            }
            Err(_) => batch.clone(),
        };
        for (index, row) in rows_as_json(&columns)?.into_iter().enumerate() {
            let op = row_kinds.as_ref().map_or("+I", |k| k[index].short());
            // An error means no follower right now: the row is not kept.
            let _ = self.rows.send(Arc::new(ResultRow { op, row }));
        }
        Ok(())
    }
}

fn rows_as_json(batch: &RecordBatch) -> Result<Vec<Vec<Value>>, EngineError> {
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    writer.write(batch)?;
    writer.finish()?;
    let text = writer.into_inner();
    let objects: Vec<serde_json::Map<String, Value>> = if text.is_empty() {
        vec![serde_json::Map::new(); batch.num_rows()]
    } else {
        serde_json::from_slice(&text).map_err(|e| EngineError::Connector {
            connector: "results",
            message: format!("rows could not be rendered as JSON: {e}"),
        })?
    };
    let schema = batch.schema();
    // The JSON writer leaves NULL columns out of an object.
    Ok(objects
        .into_iter()
        .map(|mut object| {
            schema
                .fields()
                .iter()
                .map(|f| object.remove(f.name()).unwrap_or(Value::Null))
                .collect()
        })
        .collect())
}
