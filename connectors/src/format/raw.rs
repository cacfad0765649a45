//! `'format' = 'raw'`: a message is one value of the table's single column,
//! as Flink's raw format reads and writes it: `BYTES` takes the bytes as
//! they are, `STRING` takes them as text in `raw.charset` (UTF-8, the only
//! charset Runnel has). A file holds one message per line.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BinaryBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::BATCH_ROWS;
use crate::ConnectorError;
use crate::options::Options;

#[derive(Debug, Clone)]
pub struct RawFormat {
    text: bool,
}

impl RawFormat {
    /// The table's one column decides what a message becomes.
    pub fn from_options(options: &Options, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let charset = options.get("raw.charset").unwrap_or("UTF-8");
        if !charset.eq_ignore_ascii_case("UTF-8") {
            return Err(ConnectorError::Option(format!(
                "raw.charset '{charset}' is not supported; Runnel reads and writes UTF-8"
            )));
        }
        if let Some(endianness) = options.get("raw.endianness")
            && !endianness.eq_ignore_ascii_case("big-endian")
        {
            return Err(ConnectorError::Option(format!(
                "raw.endianness '{endianness}' is not supported; the raw format here takes BYTES or STRING columns"
            )));
        }
        let [field] = schema.fields().iter().collect::<Vec<_>>()[..] else {
            return Err(ConnectorError::Option(format!(
                "the raw format needs a table of exactly one physical column, not {}",
                schema.fields().len()
            )));
        };
        let text = match field.data_type() {
            DataType::Utf8 => true,
            DataType::Binary => false,
            other => {
                return Err(ConnectorError::Option(format!(
                    "the raw format reads a BYTES or STRING column, not {other}"
                )));
            }
        };
        Ok(RawFormat { text })
    }

    pub fn decoder(&self, schema: SchemaRef) -> Decoder {
        Decoder {
            schema,
            text: self.text,
        }
    }

    /// Each row's value as one message; a file gets them one a line.
    pub fn encode(&self, batch: &RecordBatch, out: &mut impl Write) -> Result<(), ConnectorError> {
        let io = |e: std::io::Error| ConnectorError::Option(format!("raw: {e}"));
        let column = batch.column(0);
        for row in 0..batch.num_rows() {
            if column.is_valid(row) {
                let bytes: &[u8] = if self.text {
                    column.as_string::<i32>().value(row).as_bytes()
                } else {
                    column.as_binary::<i32>().value(row)
                };
                out.write_all(bytes).map_err(io)?;
            }
            out.write_all(b"\n").map_err(io)?;
        }
        Ok(())
    }
}

pub struct Decoder {
    schema: SchemaRef,
    text: bool,
}

impl Decoder {
    /// One row per message.
    pub fn decode_messages<'a>(
        &mut self,
        messages: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Vec<RecordBatch>, ConnectorError> {
        let mut out = Vec::new();
        let mut messages = messages.peekable();
        while messages.peek().is_some() {
            let chunk = messages.by_ref().take(BATCH_ROWS);
            let column: Arc<dyn Array> = if self.text {
                let mut builder = StringBuilder::new();
                for message in chunk {
                    let text = std::str::from_utf8(message).map_err(|e| {
                        ConnectorError::Option(format!("raw: a message is not UTF-8 text: {e}"))
                    })?;
                    builder.append_value(text);
                }
                Arc::new(builder.finish())
            } else {
                let mut builder = BinaryBuilder::new();
                for message in chunk {
                    builder.append_value(message);
                }
                Arc::new(builder.finish())
            };
            out.push(RecordBatch::try_new(self.schema.clone(), vec![column])?);
        }
        Ok(out)
    }

    pub fn decode_lines(&mut self, lines: &[u8]) -> Result<Vec<RecordBatch>, ConnectorError> {
        let lines = lines.strip_suffix(b"\n").unwrap_or(lines);
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        self.decode_messages(lines.split(|&b| b == b'\n'))
    }
}
