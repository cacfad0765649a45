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
    // The JSON writer keys values by column name, and a query's columns
    // need not have distinct names (`SELECT a.n, b.n`): each is written
    // under its position instead.
    let positional = datafusion::arrow::datatypes::Schema::new(
        batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| f.as_ref().clone().with_name(i.to_string()))
            .collect::<Vec<_>>(),
    );
    let batch = RecordBatch::try_new(Arc::new(positional), batch.columns().to_vec())?;
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    writer.write(&batch)?;
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
    // The JSON writer leaves NULL columns out of an object.
    Ok(objects
        .into_iter()
        .map(|mut object| {
            (0..batch.num_columns())
                .map(|i| object.remove(&i.to_string()).unwrap_or(Value::Null))
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// `SELECT a.n, b.n, b.s`: two columns of one name, and a NULL.
    #[test]
    fn columns_of_the_same_name_keep_their_own_values() {
        let schema = Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 3])),
                Arc::new(Int64Array::from(vec![Some(2), None])),
                Arc::new(StringArray::from(vec![Some("x"), None])),
            ],
        )
        .expect("batch");
        assert_eq!(
            rows_as_json(&batch).expect("rows"),
            vec![
                vec![Value::from(1), Value::from(2), Value::from("x")],
                vec![Value::from(3), Value::Null, Value::Null],
            ]
        );
    }
}
