//! `'format' = 'json'`: one JSON object per message, as Flink's json format
//! reads and writes it. Lines go first to Runnel's own decoder (`lines`:
//! its `scanner`, `columns` builders and `timestamp` parsing), which gives
//! back any chunk it does not read exactly as arrow-json would; arrow-json
//! decodes those, so values and error messages are arrow-json's.

mod columns;
mod lines;
mod scanner;
#[cfg(test)]
mod tests;
mod timestamp;

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::connector::{KeepOnly, UnusedFields};

use super::{BATCH_ROWS, feed};
use crate::ConnectorError;
use crate::options::Options;

pub(crate) use lines::JsonLines;

const GIVE_BACKS_BEFORE_ARROW_ONLY: u32 = 4;

/// Flink's `json.timestamp-format.standard`: `SQL` (the default) and `ISO-8601`.
const SQL_TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S%.3f";
const ISO_TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.3f";

#[derive(Debug, Clone)]
pub struct JsonFormat {
    pub ignore_parse_errors: bool,
    pub fail_on_missing_field: bool,
    pub timestamp_format: &'static str,
    /// `json.encode.ignore-null-fields`: leave NULL fields out of written
    /// objects; by default they are written as `null`, as Flink writes them.
    pub ignore_null_fields: bool,
}

impl JsonFormat {
    /// The `json.*` options.
    pub fn from_options(options: &Options) -> Result<Self, ConnectorError> {
        Ok(JsonFormat {
            ignore_parse_errors: options.bool("json.ignore-parse-errors", false)?,
            fail_on_missing_field: options.bool("json.fail-on-missing-field", false)?,
            timestamp_format: timestamp_standard(options, "json.timestamp-format.standard")?,
            ignore_null_fields: options.bool("json.encode.ignore-null-fields", false)?,
        })
    }

    /// The JSON of a changelog format's rows (`debezium-json.*` options).
    pub fn for_changelogs(options: &Options) -> Result<Self, ConnectorError> {
        Ok(JsonFormat {
            ignore_parse_errors: false,
            fail_on_missing_field: false,
            timestamp_format: timestamp_standard(
                options,
                "debezium-json.timestamp-format.standard",
            )?,
            ignore_null_fields: false,
        })
    }

    pub fn decoder(&self, schema: SchemaRef) -> Result<Decoder, ConnectorError> {
        // TIME columns are read as text first, then as Flink reads a TIME.
        let times = super::time_text::has_time(&schema).then(|| schema.clone());
        let schema = match &times {
            Some(target) => super::time_text::text_schema(target),
            None => schema,
        };
        let fail_on_missing_field = self.fail_on_missing_field;
        let arrow_schema = schema.clone();
        let build: Arc<BuildDecoder> = Arc::new(move || {
            datafusion::arrow::json::ReaderBuilder::new(arrow_schema.clone())
                .with_batch_size(BATCH_ROWS)
                .with_strict_mode(fail_on_missing_field)
                .build_decoder()
        });
        let decoder = build()?;
        // Strict mode's errors for unknown fields are arrow-json's to give.
        let fast = if fail_on_missing_field || times.is_some() {
            None
        } else {
            JsonLines::new(schema, BATCH_ROWS).map(Box::new)
        };
        Ok(Decoder {
            decoder,
            line_by_line: self.ignore_parse_errors.then_some(build),
            fast,
            given_back: 0,
            times,
            skip_bad_times: self.ignore_parse_errors,
        })
    }

    /// Writes rows as JSON lines, timestamps in the format's standard.
    pub fn encode(&self, batch: &RecordBatch, out: &mut impl Write) -> Result<(), ConnectorError> {
        let batch =
            super::time_text::times_as_text(&timestamps_as_text(batch, self.timestamp_format)?)?;
        let mut writer = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(!self.ignore_null_fields)
            .build::<_, datafusion::arrow::json::writer::LineDelimited>(out);
        writer.write(&batch)?;
        writer.finish()?;
        Ok(())
    }
}

fn timestamp_standard(options: &Options, key: &str) -> Result<&'static str, ConnectorError> {
    match options.get(key).unwrap_or("SQL") {
        "SQL" => Ok(SQL_TIMESTAMP),
        "ISO-8601" => Ok(ISO_TIMESTAMP),
        other => Err(ConnectorError::Option(format!(
            "{key} must be SQL or ISO-8601, got '{other}'"
        ))),
    }
}

type BuildDecoder = dyn Fn() -> Result<datafusion::arrow::json::reader::Decoder, datafusion::arrow::error::ArrowError>
    + Send
    + Sync;

/// JSON lines in, batches out.
pub struct Decoder {
    decoder: datafusion::arrow::json::reader::Decoder,
    /// With `json.ignore-parse-errors`, how to make fresh decoders: a
    /// failed chunk is decoded again a line at a time, and arrow-json's
    /// decoder keeps a half-read value after an error, so every failure
    /// needs a new one.
    line_by_line: Option<Arc<BuildDecoder>>,
    /// Tried first; a chunk it gives back goes to `decoder`.
    fast: Option<Box<JsonLines>>,
    given_back: u32,
    /// The schema with TIME columns, when the lines are read with them as text.
    times: Option<SchemaRef>,
    skip_bad_times: bool,
}

impl Decoder {
    pub fn keep_only(&mut self, keep: KeepOnly) {
        if let Some(fast) = &mut self.fast {
            fast.keep_only(keep);
        }
    }

    pub fn skip_fields(&mut self, unused: &UnusedFields) {
        if let Some(fast) = &mut self.fast {
            fast.skip_fields(unused);
        }
    }

    pub fn decode_lines(&mut self, lines: &[u8]) -> Result<Vec<RecordBatch>, ConnectorError> {
        let batches = self.decode_text_lines(lines)?;
        super::time_text::read_times(
            batches,
            self.times.as_ref(),
            super::time_text::Reading::Json,
            self.skip_bad_times,
        )
    }

    fn decode_text_lines(&mut self, lines: &[u8]) -> Result<Vec<RecordBatch>, ConnectorError> {
        if let Some(fast) = &mut self.fast {
            if let Some(batches) = fast.decode(lines) {
                return Ok(batches);
            }
            // Data whose shape keeps being given back would be scanned
            // twice; leave it to arrow-json from then on.
            self.given_back += 1;
            if self.given_back >= GIVE_BACKS_BEFORE_ARROW_ONLY {
                self.fast = None;
            }
        }
        let mut out = Vec::new();
        if let Err(error) = feed(lines, &mut out, &mut self.decoder) {
            let Some(build) = &self.line_by_line else {
                return Err(error);
            };
            // The failed chunk may have left rows buffered: start afresh
            // and decode it again line by line.
            self.decoder = build()?;
            out.clear();
            let mut retry = build()?;
            for line in lines.split(|&b| b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let decoded = retry
                    .decode(line)
                    .and_then(|_| retry.decode(b"\n"))
                    .and_then(|_| retry.flush());
                match decoded {
                    Ok(Some(batch)) => out.push(batch),
                    Ok(None) => {}
                    Err(_) => retry = build()?,
                }
            }
        }
        Ok(out)
    }
}

/// Timestamp columns rendered in the format's text form; arrow-json would
/// write ISO-8601 without milliseconds, which Flink's SQL standard is not.
fn timestamps_as_text(batch: &RecordBatch, format: &str) -> Result<RecordBatch, ConnectorError> {
    use datafusion::arrow::compute::{CastOptions, cast_with_options};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::display::FormatOptions;
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Timestamp(_, _)))
    {
        return Ok(batch.clone());
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::new().with_timestamp_format(Some(format)),
    };
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(field.data_type(), DataType::Timestamp(_, _)) {
            fields.push(Field::new(
                field.name(),
                DataType::Utf8,
                field.is_nullable(),
            ));
            columns.push(cast_with_options(column, &DataType::Utf8, &options)?);
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        columns,
    )?)
}
