//! Row formats: bytes to Arrow batches and back, with Flink's options.

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use runnel_engine::connector::{KeepOnly, UnusedFields};

use crate::ConnectorError;
use crate::json_lines::JsonLines;
use crate::options::Options;

pub const BATCH_ROWS: usize = 8192;

const GIVE_BACKS_BEFORE_ARROW_ONLY: u32 = 4;

/// Flink's `json.timestamp-format.standard`: `SQL` (the default) and `ISO-8601`.
const SQL_TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S%.3f";
const ISO_TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.3f";

#[derive(Debug, Clone)]
pub enum Format {
    Json {
        ignore_parse_errors: bool,
        fail_on_missing_field: bool,
        timestamp_format: &'static str,
    },
    Csv {
        delimiter: u8,
        ignore_parse_errors: bool,
        allow_comments: bool,
    },
}

impl Format {
    /// The JSON of a changelog format's rows (`debezium-json.*` options).
    pub fn json_for_changelogs(options: &Options) -> Result<Self, ConnectorError> {
        let standard = options
            .get("debezium-json.timestamp-format.standard")
            .unwrap_or("SQL");
        Ok(Format::Json {
            ignore_parse_errors: false,
            fail_on_missing_field: false,
            timestamp_format: match standard {
                "SQL" => SQL_TIMESTAMP,
                "ISO-8601" => ISO_TIMESTAMP,
                other => {
                    return Err(ConnectorError::Option(format!(
                        "debezium-json.timestamp-format.standard must be SQL or ISO-8601, got '{other}'"
                    )));
                }
            },
        })
    }

    pub fn from_options(options: &Options) -> Result<Self, ConnectorError> {
        match options.required("format")? {
            "json" => {
                let standard = options
                    .get("json.timestamp-format.standard")
                    .unwrap_or("SQL");
                if !matches!(standard, "SQL" | "ISO-8601") {
                    return Err(ConnectorError::Option(format!(
                        "json.timestamp-format.standard must be SQL or ISO-8601, got '{standard}'"
                    )));
                }
                Ok(Format::Json {
                    ignore_parse_errors: options.bool("json.ignore-parse-errors", false)?,
                    fail_on_missing_field: options.bool("json.fail-on-missing-field", false)?,
                    timestamp_format: if standard == "SQL" {
                        SQL_TIMESTAMP
                    } else {
                        ISO_TIMESTAMP
                    },
                })
            }
            "csv" => {
                let delimiter = options.get("csv.field-delimiter").unwrap_or(",");
                let delimiter = match delimiter.as_bytes() {
                    [byte] => *byte,
                    _ if delimiter == "\\t" => b'\t',
                    _ => {
                        return Err(ConnectorError::Option(format!(
                            "csv.field-delimiter must be one character, got '{delimiter}'"
                        )));
                    }
                };
                Ok(Format::Csv {
                    delimiter,
                    ignore_parse_errors: options.bool("csv.ignore-parse-errors", false)?,
                    allow_comments: options.bool("csv.allow-comments", false)?,
                })
            }
            other => Err(ConnectorError::Option(format!(
                "unsupported format '{other}'; available: json, csv, debezium-json, and, for filesystem sinks, parquet"
            ))),
        }
    }

    pub fn decoder(&self, schema: SchemaRef) -> Result<Decoder, ConnectorError> {
        match self {
            Format::Json {
                ignore_parse_errors,
                fail_on_missing_field,
                ..
            } => {
                let fast_schema = schema.clone();
                let build = move || {
                    datafusion::arrow::json::ReaderBuilder::new(schema.clone())
                        .with_batch_size(BATCH_ROWS)
                        .with_strict_mode(*fail_on_missing_field)
                        .build_decoder()
                };
                let decoder = build()?;
                // Strict mode's errors for unknown fields are arrow-json's to give.
                let fast = if *fail_on_missing_field {
                    None
                } else {
                    JsonLines::new(fast_schema, BATCH_ROWS).map(Box::new)
                };
                Ok(Decoder::Json {
                    decoder,
                    line_by_line: ignore_parse_errors.then_some(Box::new(build()?)),
                    fast,
                    given_back: 0,
                })
            }
            Format::Csv {
                delimiter,
                ignore_parse_errors,
                allow_comments,
            } => {
                let mut builder = datafusion::arrow::csv::ReaderBuilder::new(schema)
                    .with_batch_size(BATCH_ROWS)
                    .with_header(false)
                    .with_delimiter(*delimiter);
                if *allow_comments {
                    builder = builder.with_comment(b'#');
                }
                Ok(Decoder::Csv {
                    decoder: Box::new(builder.build_decoder()),
                    ignore_parse_errors: *ignore_parse_errors,
                })
            }
        }
    }
}

/// Streaming decoder over whole lines. `decode` takes complete lines only,
/// so a bad line can be skipped without losing its neighbours.
pub enum Decoder {
    Json {
        decoder: datafusion::arrow::json::reader::Decoder,
        /// With `json.ignore-parse-errors`, a second decoder that retries a
        /// failed chunk a line at a time.
        line_by_line: Option<Box<datafusion::arrow::json::reader::Decoder>>,
        /// Tried first; a chunk it gives back goes to `decoder`.
        fast: Option<Box<JsonLines>>,
        given_back: u32,
    },
    Csv {
        decoder: Box<datafusion::arrow::csv::reader::Decoder>,
        ignore_parse_errors: bool,
    },
}

impl Decoder {
    /// Lines outside `keep` may be dropped before they are decoded (JSON's
    /// own decoder does; arrow-json and CSV leave it to the query's filter).
    pub fn keeping_only(mut self, keep: Option<KeepOnly>) -> Self {
        if let (
            Decoder::Json {
                fast: Some(fast), ..
            },
            Some(keep),
        ) = (&mut self, keep)
        {
            fast.keep_only(keep);
        }
        self
    }

    /// Nested fields no query reads may be left unread (JSON's own decoder
    /// does; arrow-json and CSV read them).
    pub fn skipping(mut self, unused: &UnusedFields) -> Self {
        if let Decoder::Json {
            fast: Some(fast), ..
        } = &mut self
        {
            fast.skip_fields(unused);
        }
        self
    }

    /// Decodes `lines` (whole lines) and returns the finished batches.
    pub fn decode_lines(&mut self, lines: &[u8]) -> Result<Vec<RecordBatch>, ConnectorError> {
        let mut out = Vec::new();
        match self {
            Decoder::Json {
                decoder,
                line_by_line,
                fast,
                given_back,
            } => {
                if let Some(fast_decoder) = fast {
                    if let Some(batches) = fast_decoder.decode(lines) {
                        return Ok(batches);
                    }
                    // Data whose shape keeps being given back would be
                    // scanned twice; leave it to arrow-json from then on.
                    *given_back += 1;
                    if *given_back >= GIVE_BACKS_BEFORE_ARROW_ONLY {
                        *fast = None;
                    }
                }
                if let Err(error) = feed(lines, &mut out, decoder) {
                    let Some(retry) = line_by_line else {
                        return Err(error);
                    };
                    // The failed chunk may have left rows buffered; drop them
                    // and decode the chunk again line by line.
                    let _ = decoder.flush();
                    out.clear();
                    for line in lines.split(|&b| b == b'\n') {
                        if retry
                            .decode(line)
                            .and_then(|_| retry.decode(b"\n"))
                            .is_err()
                        {
                            let _ = retry.flush();
                            continue;
                        }
                        if let Ok(Some(batch)) = retry.flush() {
                            out.push(batch);
                        }
                    }
                }
            }
            Decoder::Csv {
                decoder,
                ignore_parse_errors,
            } => {
                let result = feed(lines, &mut out, decoder.as_mut());
                if let Err(error) = result {
                    if !*ignore_parse_errors {
                        return Err(error);
                    }
                    out.clear();
                    for line in lines.split_inclusive(|&b| b == b'\n') {
                        if decoder.decode(line).is_ok() {
                            match decoder.flush() {
                                Ok(Some(batch)) => out.push(batch),
                                _ => continue,
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The two arrow decoders' shared shape.
trait StreamDecoder {
    fn decode(&mut self, bytes: &[u8]) -> Result<usize, datafusion::arrow::error::ArrowError>;
    fn flush(&mut self) -> Result<Option<RecordBatch>, datafusion::arrow::error::ArrowError>;
}

impl StreamDecoder for datafusion::arrow::json::reader::Decoder {
    fn decode(&mut self, bytes: &[u8]) -> Result<usize, datafusion::arrow::error::ArrowError> {
        datafusion::arrow::json::reader::Decoder::decode(self, bytes)
    }
    fn flush(&mut self) -> Result<Option<RecordBatch>, datafusion::arrow::error::ArrowError> {
        datafusion::arrow::json::reader::Decoder::flush(self)
    }
}

impl StreamDecoder for datafusion::arrow::csv::reader::Decoder {
    fn decode(&mut self, bytes: &[u8]) -> Result<usize, datafusion::arrow::error::ArrowError> {
        datafusion::arrow::csv::reader::Decoder::decode(self, bytes)
    }
    fn flush(&mut self) -> Result<Option<RecordBatch>, datafusion::arrow::error::ArrowError> {
        datafusion::arrow::csv::reader::Decoder::flush(self)
    }
}

fn feed(
    mut bytes: &[u8],
    out: &mut Vec<RecordBatch>,
    decoder: &mut impl StreamDecoder,
) -> Result<(), ConnectorError> {
    while !bytes.is_empty() {
        let consumed = decoder.decode(bytes)?;
        bytes = &bytes[consumed..];
        if let Some(batch) = decoder.flush()? {
            out.push(batch);
        }
        if consumed == 0 && !bytes.is_empty() {
            return Err(ConnectorError::Option("decoder made no progress".into()));
        }
    }
    if let Some(batch) = decoder.flush()? {
        out.push(batch);
    }
    Ok(())
}

/// Writes batches as lines of the format.
pub fn encode(
    format: &Format,
    batch: &RecordBatch,
    out: &mut impl Write,
) -> Result<(), ConnectorError> {
    match format {
        Format::Json {
            timestamp_format, ..
        } => {
            let batch = timestamps_as_text(batch, timestamp_format)?;
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(out);
            writer.write(&batch)?;
            writer.finish()?;
        }
        Format::Csv { delimiter, .. } => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(false)
                .with_delimiter(*delimiter)
                .build(out);
            writer.write(batch)?;
        }
    }
    Ok(())
}

/// Writes a changelog as Debezium envelopes: inserts and updates-after as
/// `{"before":null,"after":{...},"op":"c"}`, deletes and updates-before as
/// `{"before":{...},"after":null,"op":"d"}` (Flink's debezium-json).
pub fn encode_debezium(
    format: &Format,
    batch: &RecordBatch,
    out: &mut impl Write,
) -> Result<(), ConnectorError> {
    use runnel_engine::updating::changelog::{RowKind, kinds};
    let kinds = kinds(batch);
    let width = batch.num_columns() - usize::from(kinds.is_some());
    let data = batch.project(&(0..width).collect::<Vec<_>>())?;
    let mut lines = Vec::new();
    encode(format, &data, &mut lines)?;
    let io = |e: std::io::Error| ConnectorError::Option(format!("debezium-json: {e}"));
    for (row, line) in String::from_utf8_lossy(&lines).lines().enumerate() {
        let kind = kinds.as_ref().map_or(RowKind::Insert, |k| k[row]);
        let envelope = match kind {
            RowKind::Insert | RowKind::UpdateAfter => {
                format!("{{\"before\":null,\"after\":{line},\"op\":\"c\"}}\n")
            }
            RowKind::UpdateBefore | RowKind::Delete => {
                format!("{{\"before\":{line},\"after\":null,\"op\":\"d\"}}\n")
            }
        };
        out.write_all(envelope.as_bytes()).map_err(io)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn json(standard: &str) -> Format {
        let options: BTreeMap<String, String> = [
            ("format", "json"),
            ("json.timestamp-format.standard", standard),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Format::from_options(&Options::new(options)).unwrap()
    }

    #[test]
    fn json_round_trips_with_flink_sql_timestamps() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(1_586_937_601_500),
                    None,
                ])),
            ],
        )
        .unwrap();
        let mut text = Vec::new();
        encode(&json("SQL"), &batch, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            "{\"k\":1,\"ts\":\"2020-04-15 08:00:01.500\"}\n{\"k\":2}\n"
        );
        let decoded = json("SQL")
            .decoder(schema)
            .unwrap()
            .decode_lines(text.as_bytes())
            .unwrap();
        assert_eq!(decoded, vec![batch.clone()]);

        let mut iso = Vec::new();
        encode(&json("ISO-8601"), &batch, &mut iso).unwrap();
        assert!(
            String::from_utf8(iso)
                .unwrap()
                .contains("2020-04-15T08:00:01.500")
        );
    }
}
