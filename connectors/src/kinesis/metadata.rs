//! A kinesis table's metadata columns, as Flink's connector declares them
//! (`arrival TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL`): values
//! of each record rather than fields of its payload. The payload is decoded
//! without them and they are put in their declared places after.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;

use crate::ConnectorError;
use crate::options::Options;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// When the stream accepted the record (ApproximateArrivalTimestamp).
    Timestamp,
    ShardId,
    SequenceNumber,
    /// A user record's place in the Kinesis Producer Library's aggregated
    /// record it came in; 0 for a record that was not aggregated, as the
    /// Kinesis Client Library numbers it.
    SubSequenceNumber,
}

const KEYS: &str = "timestamp, shard-id, sequence-number, sub-sequence-number";

impl Key {
    fn parse(key: &str) -> Option<Key> {
        Some(match key {
            "timestamp" => Key::Timestamp,
            "shard-id" => Key::ShardId,
            "sequence-number" => Key::SequenceNumber,
            "sub-sequence-number" => Key::SubSequenceNumber,
            _ => return None,
        })
    }
}

/// What is known of the record a row came from.
pub struct RowOrigin<'a> {
    pub arrival_ms: u64,
    pub shard: u32,
    pub sequence: &'a str,
    pub sub_sequence: u64,
}

#[derive(Debug, Clone)]
pub struct MetadataColumns {
    /// Place in the table's schema, key, and declared type.
    columns: Vec<(usize, Key, DataType)>,
    payload: SchemaRef,
    table: SchemaRef,
}

impl MetadataColumns {
    /// `None` when the table declares no metadata column.
    pub fn read(options: &Options, table: &SchemaRef) -> Result<Option<Self>, ConnectorError> {
        let Some(spec) = options.get(runnel_engine::connector::METADATA_COLUMNS) else {
            return Ok(None);
        };
        let mut columns = Vec::new();
        for line in spec.lines() {
            let (column, key) = line.split_once('\t').unwrap_or((line, line));
            let parsed = Key::parse(key).ok_or_else(|| {
                ConnectorError::Option(format!(
                    "column '{column}': the kinesis connector has no metadata key '{key}'; it has {KEYS}"
                ))
            })?;
            let index = table.index_of(column).map_err(|_| {
                ConnectorError::Option(format!("metadata column '{column}' is not a column"))
            })?;
            let declared = table.field(index).data_type().clone();
            let produced = produced_type(parsed);
            if !datafusion::arrow::compute::can_cast_types(&produced, &declared) {
                return Err(ConnectorError::Option(format!(
                    "column '{column}': metadata '{key}' is {produced}, which cannot be read as {declared}"
                )));
            }
            columns.push((index, parsed, declared));
        }
        let payload = Arc::new(Schema::new(
            table
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, _)| !columns.iter().any(|(c, _, _)| c == i))
                .map(|(_, f)| f.as_ref().clone())
                .collect::<Vec<_>>(),
        ));
        Ok(Some(MetadataColumns {
            columns,
            payload,
            table: table.clone(),
        }))
    }

    /// The columns the format decodes from each payload.
    pub fn payload_schema(&self) -> SchemaRef {
        self.payload.clone()
    }

    /// The table's rows: `payload` (rows from several records, in order,
    /// concatenated) with each row's metadata from `origins`, one per row.
    pub fn attach(
        &self,
        payload: &[RecordBatch],
        origins: &[RowOrigin<'_>],
    ) -> Result<RecordBatch, EngineError> {
        let payload = concat_batches(&self.payload, payload)?;
        if payload.num_rows() != origins.len() {
            return Err(EngineError::Connector {
                connector: "kinesis",
                message: format!(
                    "{} rows decoded but {} records' metadata (a bug)",
                    payload.num_rows(),
                    origins.len()
                ),
            });
        }
        let mut decoded = payload.columns().iter();
        let mut out: Vec<ArrayRef> = Vec::with_capacity(self.table.fields().len());
        for index in 0..self.table.fields().len() {
            match self.columns.iter().find(|(c, _, _)| *c == index) {
                Some((_, key, declared)) => out.push(cast(&values(*key, origins), declared)?),
                None => match decoded.next() {
                    Some(column) => out.push(column.clone()),
                    None => {
                        return Err(EngineError::Connector {
                            connector: "kinesis",
                            message: "a decoded batch lacks a column (a bug)".into(),
                        });
                    }
                },
            }
        }
        Ok(RecordBatch::try_new(self.table.clone(), out)?)
    }
}

fn produced_type(key: Key) -> DataType {
    match key {
        Key::Timestamp => DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Millisecond,
            Some("UTC".into()),
        ),
        Key::ShardId | Key::SequenceNumber => DataType::Utf8,
        Key::SubSequenceNumber => DataType::Int64,
    }
}

fn values(key: Key, origins: &[RowOrigin<'_>]) -> ArrayRef {
    match key {
        Key::Timestamp => Arc::new(
            origins
                .iter()
                .map(|o| Some(i64::try_from(o.arrival_ms).unwrap_or(i64::MAX)))
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        Key::ShardId => Arc::new(
            origins
                .iter()
                .map(|o| Some(runnel_streams::model::shard_id(o.shard)))
                .collect::<StringArray>(),
        ),
        Key::SequenceNumber => Arc::new(
            origins
                .iter()
                .map(|o| Some(o.sequence))
                .collect::<StringArray>(),
        ),
        Key::SubSequenceNumber => Arc::new(
            origins
                .iter()
                .map(|o| Some(i64::try_from(o.sub_sequence).unwrap_or(i64::MAX)))
                .collect::<Int64Array>(),
        ),
    }
}
