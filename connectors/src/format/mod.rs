//! Formats: how a message's bytes become rows and rows become bytes,
//! whatever carries the messages (a file's lines, a stream's records).
//! Each format reads its own options (`json.*`, `csv.*`, ...), so a
//! transport passes the table's options through and the format takes
//! what is its.

pub mod avro;
pub mod csv;
pub mod debezium;
pub mod json;
pub mod parquet;
pub mod raw;
pub mod time_text;

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::connector::{KeepOnly, UnusedFields};

use crate::ConnectorError;
use crate::options::Options;

pub const BATCH_ROWS: usize = 8192;

#[derive(Debug, Clone)]
pub enum Format {
    Json(json::JsonFormat),
    Csv(csv::CsvFormat),
    /// A changelog: rows with a trailing `__op`.
    DebeziumJson(debezium::DebeziumFormat),
    Raw(raw::RawFormat),
    /// Binary records; object container files in a filesystem sink.
    Avro(avro::AvroFormat),
    /// Columnar files; a filesystem sink only.
    Parquet,
}

/// Which formats a transport can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// Files read and written whole by the transport: every format.
    Files,
    /// Messages one at a time (a stream's records): not parquet.
    Messages,
}

impl Format {
    /// The table's `'format'` and that format's options. `schema` is the
    /// table's physical columns (the raw format takes exactly one).
    pub fn from_options(
        options: &Options,
        schema: &SchemaRef,
        carrier: Carrier,
    ) -> Result<Self, ConnectorError> {
        time_text::check(schema, options.required("format")?)?;
        Ok(match options.required("format")? {
            "json" => Format::Json(json::JsonFormat::from_options(options)?),
            "csv" => Format::Csv(csv::CsvFormat::from_options(options)?),
            "debezium-json" => {
                Format::DebeziumJson(debezium::DebeziumFormat::from_options(options)?)
            }
            "raw" => Format::Raw(raw::RawFormat::from_options(options, schema)?),
            "avro" => Format::Avro(avro::AvroFormat::from_options(options, schema)?),
            "parquet" if carrier == Carrier::Files => Format::Parquet,
            other => {
                let files = if carrier == Carrier::Files {
                    ", and, for filesystem sinks, parquet"
                } else {
                    ""
                };
                return Err(ConnectorError::Option(format!(
                    "unsupported format '{other}'; available: json, csv, debezium-json, raw, avro{files}"
                )));
            }
        })
    }

    /// The format as a table's `'format'` option names it.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Json(_) => "json",
            Format::Csv(_) => "csv",
            Format::DebeziumJson(_) => "debezium-json",
            Format::Raw(_) => "raw",
            Format::Avro(_) => "avro",
            Format::Parquet => "parquet",
        }
    }

    /// Whether decoded batches are a changelog (a trailing `__op`).
    pub fn is_changelog(&self) -> bool {
        matches!(self, Format::DebeziumJson(_))
    }

    /// The extension of files written in this format.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Json(_) | Format::DebeziumJson(_) => "json",
            Format::Csv(_) => "csv",
            Format::Raw(_) => "txt",
            Format::Avro(_) => "avro",
            Format::Parquet => "parquet",
        }
    }

    pub fn decoder(&self, schema: SchemaRef) -> Result<Decoder, ConnectorError> {
        Ok(match self {
            Format::Json(json) => Decoder::Json(json.decoder(schema)?),
            Format::Csv(csv) => Decoder::Csv(csv.decoder(schema)),
            Format::DebeziumJson(debezium) => Decoder::Debezium(debezium.decoder(schema)?),
            Format::Raw(raw) => Decoder::Raw(raw.decoder(schema)),
            Format::Avro(avro) => Decoder::Avro(avro.decoder(schema)),
            Format::Parquet => {
                return Err(ConnectorError::Option(
                    "unsupported format 'parquet' for a source; parquet is written by filesystem sinks, not read".into(),
                ));
            }
        })
    }

    /// Each row as one message (a stream record): a line of the format
    /// without its line end. A changelog's rows become envelopes.
    pub fn encode_messages(&self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>, ConnectorError> {
        if let Format::Avro(avro) = self {
            return avro.encode_messages(batch);
        }
        let mut text = Vec::with_capacity(batch.num_rows() * 64);
        self.encode(batch, &mut text)?;
        let text = text.strip_suffix(b"\n").unwrap_or(&text);
        if text.is_empty() && batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let messages: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        // A raw value or a quoted CSV field may hold a line end itself:
        // then the lines are not the rows, and each row is encoded alone.
        if messages.len() == batch.num_rows() {
            return Ok(messages);
        }
        (0..batch.num_rows())
            .map(|row| {
                let mut one = Vec::new();
                self.encode(&batch.slice(row, 1), &mut one)?;
                one.pop_if(|b| *b == b'\n');
                Ok(one)
            })
            .collect()
    }

    /// Writes rows as lines (envelopes, for debezium-json).
    pub fn encode(&self, batch: &RecordBatch, out: &mut impl Write) -> Result<(), ConnectorError> {
        match self {
            Format::Json(json) => json.encode(batch, out),
            Format::Csv(csv) => csv.encode(batch, out),
            Format::DebeziumJson(debezium) => debezium.encode(batch, out),
            Format::Raw(raw) => raw.encode(batch, out),
            Format::Avro(_) | Format::Parquet => Err(ConnectorError::Option(format!(
                "{} is written as whole files or records, not lines",
                self.name()
            ))),
        }
    }
}

/// Streaming decoder over whole lines. `decode_lines` takes complete lines
/// only, so a bad line can be skipped without losing its neighbours.
pub enum Decoder {
    Json(json::Decoder),
    Csv(csv::Decoder),
    Debezium(debezium::Decoder),
    Raw(raw::Decoder),
    Avro(avro::Decoder),
}

impl Decoder {
    /// Lines outside `keep` may be dropped before they are decoded (JSON's
    /// own decoder does; arrow-json and CSV leave it to the query's filter).
    pub fn keeping_only(mut self, keep: Option<KeepOnly>) -> Self {
        if let (Decoder::Json(json), Some(keep)) = (&mut self, keep) {
            json.keep_only(keep);
        }
        self
    }

    /// Nested fields no query reads may be left unread (JSON's own decoder
    /// does; arrow-json and CSV read them).
    pub fn skipping(mut self, unused: &UnusedFields) -> Self {
        if let Decoder::Json(json) = &mut self {
            json.skip_fields(unused);
        }
        self
    }

    /// Decodes messages (stream records), one or more rows each: a JSON
    /// message's line ends are whitespace, a raw message is one value.
    pub fn decode_messages<'a>(
        &mut self,
        messages: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Vec<RecordBatch>, ConnectorError> {
        let Some(framing) = self.line_framing() else {
            return match self {
                Decoder::Raw(raw) => raw.decode_messages(messages),
                Decoder::Avro(avro) => avro.decode_messages(messages),
                _ => Ok(Vec::new()),
            };
        };
        let mut lines = Vec::new();
        let mut ends = Vec::new();
        for message in messages {
            framing.append(&mut lines, &mut ends, message);
        }
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        framing.seal(&mut lines, &ends);
        self.decode_lines(&lines)
    }

    /// How messages become the lines `decode_lines` takes, so a reader can
    /// frame them as it reads them; `None` for raw and avro, whose
    /// messages are values of their own.
    pub fn line_framing(&self) -> Option<LineFraming> {
        match self {
            Decoder::Raw(_) | Decoder::Avro(_) => None,
            Decoder::Json(_) | Decoder::Debezium(_) => Some(LineFraming { json: true }),
            Decoder::Csv(_) => Some(LineFraming { json: false }),
        }
    }

    /// Decodes `lines` (whole lines) and returns the finished batches.
    pub fn decode_lines(&mut self, lines: &[u8]) -> Result<Vec<RecordBatch>, ConnectorError> {
        match self {
            Decoder::Json(json) => json.decode_lines(lines),
            Decoder::Csv(csv) => csv.decode_lines(lines),
            Decoder::Debezium(debezium) => debezium.decode_lines(lines),
            Decoder::Raw(raw) => raw.decode_lines(lines),
            Decoder::Avro(_) => Err(ConnectorError::Option(
                "avro files are written by filesystem sinks, not read yet; a stream's avro records are read".into(),
            )),
        }
    }
}

#[derive(Clone, Copy)]
pub struct LineFraming {
    /// A JSON message's line ends are whitespace inside it.
    json: bool,
}

impl LineFraming {
    /// Appends `message` as one line; `ends` gets the place of its line end.
    #[inline]
    pub fn append(self, lines: &mut Vec<u8>, ends: &mut Vec<usize>, message: &[u8]) {
        lines.extend_from_slice(message.strip_suffix(b"\n").unwrap_or(message));
        ends.push(lines.len());
        lines.push(b'\n');
    }

    /// After the appends: a JSON message's own line ends become spaces
    /// (a `\r` is whitespace to both JSON decoders, and only `\n` ends a
    /// line). Almost no message has one: a count of the `\n`s, which the
    /// compiler vectorizes, finds that in one pass without stopping at each
    /// of the millions of line ends.
    pub fn seal(self, lines: &mut [u8], ends: &[usize]) {
        if !self.json || count_newlines(lines) == ends.len() {
            return;
        }
        let mut ends = ends.iter().peekable();
        let inside: Vec<usize> = memchr::memchr_iter(b'\n', lines)
            .filter(|at| {
                if ends.peek() == Some(&at) {
                    ends.next();
                    false
                } else {
                    true
                }
            })
            .collect();
        for at in inside {
            lines[at] = b' ';
        }
    }
}

/// The `\n`s in `bytes`, counted in byte lanes a chunk of 255 at a time:
/// a form the compiler turns into SIMD compares and adds (a `usize` count
/// per byte is not vectorized, and memchr stops at every match).
fn count_newlines(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|chunk| {
            usize::from(
                chunk
                    .iter()
                    .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'\n'))),
            )
        })
        .sum()
}

/// The two arrow decoders' shared shape.
pub(crate) trait StreamDecoder {
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

pub(crate) fn feed(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    #[test]
    fn newlines_are_counted_across_chunks_and_sealed_inside_messages() {
        let mut text = vec![b'x'; 1000];
        for at in [0, 254, 255, 256, 510, 999] {
            text[at] = b'\n';
        }
        assert_eq!(count_newlines(&text), 6);
        assert_eq!(count_newlines(&vec![b'\n'; 600]), 600);

        let framing = LineFraming { json: true };
        let (mut lines, mut ends) = (Vec::new(), Vec::new());
        framing.append(&mut lines, &mut ends, b"{\"a\":\n1}\n");
        framing.append(&mut lines, &mut ends, b"{\"a\":2}");
        framing.seal(&mut lines, &ends);
        assert_eq!(lines, b"{\"a\": 1}\n{\"a\":2}\n");
    }

    fn json(standard: &str) -> Format {
        let options: BTreeMap<String, String> = [
            ("format", "json"),
            ("json.timestamp-format.standard", standard),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let schema = Arc::new(Schema::empty());
        Format::from_options(&Options::new(options), &schema, Carrier::Files).unwrap()
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
        json("SQL").encode(&batch, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            "{\"k\":1,\"ts\":\"2020-04-15 08:00:01.500\"}\n{\"k\":2,\"ts\":null}\n"
        );
        // Flink's json.encode.ignore-null-fields leaves NULL fields out.
        let options: BTreeMap<String, String> = [
            ("format", "json"),
            ("json.encode.ignore-null-fields", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let no_columns = Arc::new(Schema::empty());
        let mut without_nulls = Vec::new();
        Format::from_options(&Options::new(options), &no_columns, Carrier::Files)
            .unwrap()
            .encode(&batch, &mut without_nulls)
            .unwrap();
        assert_eq!(
            String::from_utf8(without_nulls).unwrap(),
            "{\"k\":1,\"ts\":\"2020-04-15 08:00:01.500\"}\n{\"k\":2}\n"
        );
        let decoded = json("SQL")
            .decoder(schema)
            .unwrap()
            .decode_lines(text.as_bytes())
            .unwrap();
        assert_eq!(decoded, vec![batch.clone()]);

        let mut iso = Vec::new();
        json("ISO-8601").encode(&batch, &mut iso).unwrap();
        assert!(
            String::from_utf8(iso)
                .unwrap()
                .contains("2020-04-15T08:00:01.500")
        );
    }

    /// A stream record may hold a pretty-printed JSON object, or end in a
    /// line end: each is still one message, its line ends whitespace.
    #[test]
    fn json_messages_with_line_ends_are_one_row_each() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let messages: [&[u8]; 4] = [
            b"{\"k\": 1}",
            b"{\n  \"k\": 2\r\n}",
            b"{\"k\": 3}\n",
            b"{\"k\":\n4}",
        ];
        let batches = json("SQL")
            .decoder(schema)
            .unwrap()
            .decode_messages(messages.into_iter())
            .unwrap();
        let keys: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(keys, [1, 2, 3, 4]);
    }
}
