//! `'format' = 'csv'`: one row per line, as Flink's csv format reads and
//! writes it (no header; `csv.field-delimiter`, `csv.ignore-parse-errors`,
//! `csv.allow-comments`).

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::{BATCH_ROWS, feed};
use crate::ConnectorError;
use crate::options::Options;

#[derive(Debug, Clone)]
pub struct CsvFormat {
    pub delimiter: u8,
    pub ignore_parse_errors: bool,
    pub allow_comments: bool,
}

impl CsvFormat {
    pub fn from_options(options: &Options) -> Result<Self, ConnectorError> {
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
        Ok(CsvFormat {
            delimiter,
            ignore_parse_errors: options.bool("csv.ignore-parse-errors", false)?,
            allow_comments: options.bool("csv.allow-comments", false)?,
        })
    }

    pub fn decoder(&self, schema: SchemaRef) -> Decoder {
        // TIME columns are read as text first, then as Flink reads a TIME.
        let times = super::time_text::has_time(&schema).then(|| schema.clone());
        let schema = match &times {
            Some(target) => super::time_text::text_schema(target),
            None => schema,
        };
        let mut builder = datafusion::arrow::csv::ReaderBuilder::new(schema)
            .with_batch_size(BATCH_ROWS)
            .with_header(false)
            .with_delimiter(self.delimiter);
        if self.allow_comments {
            builder = builder.with_comment(b'#');
        }
        Decoder {
            decoder: Box::new(builder.build_decoder()),
            ignore_parse_errors: self.ignore_parse_errors,
            times,
        }
    }

    pub fn encode(&self, batch: &RecordBatch, out: &mut impl Write) -> Result<(), ConnectorError> {
        let mut writer = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(false)
            .with_delimiter(self.delimiter)
            .build(out);
        writer.write(&super::time_text::times_as_text(batch)?)?;
        Ok(())
    }
}

pub struct Decoder {
    decoder: Box<datafusion::arrow::csv::reader::Decoder>,
    ignore_parse_errors: bool,
    /// The schema with TIME columns, when the lines are read with them as text.
    times: Option<SchemaRef>,
}

impl Decoder {
    pub fn decode_lines(&mut self, lines: &[u8]) -> Result<Vec<RecordBatch>, ConnectorError> {
        let batches = self.decode_text_lines(lines)?;
        super::time_text::read_times(
            batches,
            self.times.as_ref(),
            super::time_text::Reading::Csv,
            self.ignore_parse_errors,
        )
    }

    fn decode_text_lines(&mut self, lines: &[u8]) -> Result<Vec<RecordBatch>, ConnectorError> {
        let mut out = Vec::new();
        if let Err(error) = feed(lines, &mut out, self.decoder.as_mut()) {
            if !self.ignore_parse_errors {
                return Err(error);
            }
            out.clear();
            for line in lines.split_inclusive(|&b| b == b'\n') {
                if self.decoder.decode(line).is_ok() {
                    match self.decoder.flush() {
                        Ok(Some(batch)) => out.push(batch),
                        _ => continue,
                    }
                }
            }
        }
        Ok(out)
    }
}
