//! The columns of the fragments and frames tables, and which of them a
//! table declares.

use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use crate::ConnectorError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Fragments,
    Frames,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Stream,
    FragmentNumber,
    ProducerTimestamp,
    ServerTimestamp,
    DurationMs,
    Bytes,
    Frames,
    Keyframes,
    Width,
    Height,
    Codec,
    Ts,
    Keyframe,
    FrameBytes,
    Track,
    Payload,
    /// A keyframe's mean luma, decoded only when declared.
    MeanLuma,
}

fn millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// Each table's columns: name, column, SQL type as written, Arrow type.
fn known(kind: TableKind) -> Vec<(&'static str, Column, &'static str, DataType)> {
    match kind {
        TableKind::Fragments => vec![
            ("stream", Column::Stream, "STRING", DataType::Utf8),
            (
                "fragment_number",
                Column::FragmentNumber,
                "STRING",
                DataType::Utf8,
            ),
            (
                "producer_timestamp",
                Column::ProducerTimestamp,
                "TIMESTAMP(3)",
                millis(),
            ),
            (
                "server_timestamp",
                Column::ServerTimestamp,
                "TIMESTAMP(3)",
                millis(),
            ),
            ("duration_ms", Column::DurationMs, "BIGINT", DataType::Int64),
            ("bytes", Column::Bytes, "BIGINT", DataType::Int64),
            ("frames", Column::Frames, "INT", DataType::Int32),
            ("keyframes", Column::Keyframes, "INT", DataType::Int32),
            ("width", Column::Width, "INT", DataType::Int32),
            ("height", Column::Height, "INT", DataType::Int32),
            ("codec", Column::Codec, "STRING", DataType::Utf8),
        ],
        TableKind::Frames => vec![
            ("stream", Column::Stream, "STRING", DataType::Utf8),
            (
                "fragment_number",
                Column::FragmentNumber,
                "STRING",
                DataType::Utf8,
            ),
            ("ts", Column::Ts, "TIMESTAMP(3)", millis()),
            ("keyframe", Column::Keyframe, "BOOLEAN", DataType::Boolean),
            ("bytes", Column::FrameBytes, "INT", DataType::Int32),
            ("track", Column::Track, "INT", DataType::Int32),
            ("payload", Column::Payload, "BYTES", DataType::Binary),
            ("mean_luma", Column::MeanLuma, "DOUBLE", DataType::Float64),
        ],
    }
}

/// The table's declared columns, in its order.
#[derive(Debug)]
pub struct Columns {
    pub kind: TableKind,
    pub columns: Vec<Column>,
}

impl Columns {
    pub fn read(kind: TableKind, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let known = known(kind);
        let table = match kind {
            TableKind::Fragments => "fragments",
            TableKind::Frames => "frames",
        };
        let mut columns = Vec::new();
        for field in schema.fields() {
            let Some((_, column, sql_type, arrow_type)) =
                known.iter().find(|(name, ..)| name == field.name())
            else {
                let names: Vec<&str> = known.iter().map(|(name, ..)| *name).collect();
                return Err(ConnectorError::Option(format!(
                    "kinesis-video's {table} table has no column '{}'; its columns are {}",
                    field.name(),
                    names.join(", ")
                )));
            };
            if field.data_type() != arrow_type {
                return Err(ConnectorError::Option(format!(
                    "kinesis-video's column '{}' is {sql_type}, not {}",
                    field.name(),
                    field.data_type()
                )));
            }
            columns.push(*column);
        }
        Ok(Columns { kind, columns })
    }

    pub fn wants(&self, column: Column) -> bool {
        self.columns.contains(&column)
    }
}
