//! `'format' = 'debezium-json'`, as Flink reads and writes it: each message
//! is an envelope `{"before": {...} | null, "after": {...} | null, "op": ...}`
//! (inside `{"schema": ..., "payload": {...}}` with
//! `'debezium-json.schema-include' = 'true'`) and becomes changelog rows:
//! `c`/`r` an insert of `after`, `u` an update-before of `before` then an
//! update-after of `after`, `d` a delete of `before`.
//!
//! Envelopes are decoded by the json format over a schema whose `before`
//! and `after` are structs of the table's columns, so row images take
//! exactly the types and parsing of `'format' = 'json'` and unknown
//! envelope fields (`source`, `ts_ms`, ...) are ignored.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::changelog::{RowKind, kinds, op_array, with_op};

use super::json::{self, JsonFormat};
use crate::ConnectorError;
use crate::options::Options;

#[derive(Debug, Clone)]
pub struct DebeziumFormat {
    /// How row images read and write (`debezium-json.timestamp-format.standard`).
    json: JsonFormat,
    schema_include: bool,
    ignore_parse_errors: bool,
}

impl DebeziumFormat {
    pub fn from_options(options: &Options) -> Result<Self, ConnectorError> {
        Ok(DebeziumFormat {
            json: JsonFormat::for_changelogs(options)?,
            schema_include: options.bool("debezium-json.schema-include", false)?,
            ignore_parse_errors: options.bool("debezium-json.ignore-parse-errors", false)?,
        })
    }

    pub fn decoder(&self, schema: SchemaRef) -> Result<Decoder, ConnectorError> {
        let envelopes = JsonFormat {
            ignore_parse_errors: self.ignore_parse_errors,
            ..self.json.clone()
        }
        .decoder(envelope_schema(&schema, self.schema_include))?;
        Ok(Decoder {
            envelopes,
            layout: Layout {
                schema_include: self.schema_include,
                ignore_parse_errors: self.ignore_parse_errors,
                output: with_op(&schema),
            },
        })
    }

    /// Writes a changelog as envelopes: inserts and updates-after as
    /// `{"before":null,"after":{...},"op":"c"}`, deletes and updates-before
    /// as `{"before":{...},"after":null,"op":"d"}`, as Flink's sink does.
    pub fn encode(&self, batch: &RecordBatch, out: &mut impl Write) -> Result<(), ConnectorError> {
        let kinds = kinds(batch);
        let width = batch.num_columns() - usize::from(kinds.is_some());
        let data = batch.project(&(0..width).collect::<Vec<_>>())?;
        let mut lines = Vec::new();
        self.json.encode(&data, &mut lines)?;
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
}

/// Envelopes in, changelog batches (the table's columns and `__op`) out.
pub struct Decoder {
    envelopes: json::Decoder,
    layout: Layout,
}

impl Decoder {
    pub fn decode_lines(&mut self, lines: &[u8]) -> Result<Vec<RecordBatch>, ConnectorError> {
        let mut out = Vec::new();
        for envelopes in self.envelopes.decode_lines(lines)? {
            let changes = self.layout.changes(&envelopes)?;
            if changes.num_rows() > 0 {
                out.push(changes);
            }
        }
        Ok(out)
    }
}

/// Why an envelope cannot be read as a change.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("unknown \"op\" value '{0}' (expected c, r, u or d)")]
    UnknownOp(String),
    #[error("no \"op\" field{0}")]
    MissingOp(&'static str),
    #[error("\"{field}\" is null or missing in a message with op '{op}'")]
    MissingImage { op: String, field: &'static str },
    #[error("column '{column}' is NOT NULL but null in \"{field}\"")]
    NullInNotNull { column: String, field: &'static str },
}

/// A message without `op` that has a `payload` is most likely written with
/// its schema, which the table was not told about.
const SCHEMA_HINT: &str = " (if the messages carry a \"schema\" and a \"payload\", set 'debezium-json.schema-include' = 'true')";

/// How envelopes of one table become changelog batches.
struct Layout {
    schema_include: bool,
    ignore_parse_errors: bool,
    /// The table's columns and `__op`.
    output: SchemaRef,
}

/// `before` and `after` as structs of the table's columns, all nullable
/// in there: a NOT NULL column is checked once the image is taken out.
fn envelope_schema(table: &Schema, schema_include: bool) -> SchemaRef {
    let columns: Fields = table
        .fields()
        .iter()
        .map(|f| Arc::new(f.as_ref().clone().with_nullable(true)))
        .collect();
    let image = DataType::Struct(columns);
    let fields = vec![
        Field::new("before", image.clone(), true),
        Field::new("after", image, true),
        Field::new("op", DataType::Utf8, true),
    ];
    if schema_include {
        Arc::new(Schema::new(vec![Field::new(
            "payload",
            DataType::Struct(fields.into()),
            true,
        )]))
    } else {
        Arc::new(Schema::new(fields))
    }
}

/// One envelope's columns.
struct Envelopes<'a> {
    before: &'a StructArray,
    after: &'a StructArray,
    op: &'a StringArray,
    /// The `payload` validity, with `schema-include`.
    payload: Option<&'a NullBuffer>,
}

impl Layout {
    /// The changelog rows of a batch of envelopes. A bad envelope is
    /// skipped with `debezium-json.ignore-parse-errors`, else it fails the
    /// read, quoting the message.
    fn changes(&self, batch: &RecordBatch) -> Result<RecordBatch, ConnectorError> {
        let columns = if self.schema_include {
            batch.column(0).as_struct().columns()
        } else {
            batch.columns()
        };
        let envelopes = Envelopes {
            before: columns[0].as_struct(),
            after: columns[1].as_struct(),
            op: columns[2].as_string::<i32>(),
            payload: if self.schema_include {
                batch.column(0).nulls()
            } else {
                None
            },
        };
        // (0 = before, 1 = after, row) of each output row, and its kind.
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(batch.num_rows());
        let mut kinds = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            match self.change(&envelopes, row) {
                Ok(change) => {
                    for (pick, kind) in change.into_iter().flatten() {
                        picks.push(pick);
                        kinds.push(kind);
                    }
                }
                Err(_) if self.ignore_parse_errors => {}
                Err(problem) => {
                    return Err(ConnectorError::Envelope {
                        message: message_text(batch, row),
                        problem,
                    });
                }
            }
        }
        let mut out = Vec::with_capacity(self.output.fields().len());
        for c in 0..self.output.fields().len() - 1 {
            out.push(interleave(
                &[
                    envelopes.before.column(c).as_ref(),
                    envelopes.after.column(c).as_ref(),
                ],
                &picks,
            )?);
        }
        out.push(op_array(&kinds));
        let options = datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(kinds.len()));
        Ok(RecordBatch::try_new_with_options(
            self.output.clone(),
            out,
            &options,
        )?)
    }

    /// The rows one envelope adds or takes away: at most two (an update).
    fn change(&self, envelopes: &Envelopes<'_>, row: usize) -> Result<Change, EnvelopeError> {
        let op = (envelopes.payload.is_none_or(|p| p.is_valid(row)) && envelopes.op.is_valid(row))
            .then(|| envelopes.op.value(row));
        let image = |which: usize, field: &'static str| {
            let image = if which == 0 {
                envelopes.before
            } else {
                envelopes.after
            };
            if image.is_null(row) {
                return Err(EnvelopeError::MissingImage {
                    op: op.unwrap_or_default().to_string(),
                    field,
                });
            }
            // NOT NULL columns are nullable inside the envelope's structs.
            let null = self.output.fields()[..self.output.fields().len() - 1]
                .iter()
                .enumerate()
                .find(|(c, f)| !f.is_nullable() && image.column(*c).is_null(row));
            match null {
                Some((_, f)) => Err(EnvelopeError::NullInNotNull {
                    column: f.name().clone(),
                    field,
                }),
                None => Ok((which, row)),
            }
        };
        Ok(match op {
            Some("c" | "r") => [Some((image(1, "after")?, RowKind::Insert)), None],
            Some("u") => {
                let before = image(0, "before")?;
                let after = image(1, "after")?;
                [
                    Some((before, RowKind::UpdateBefore)),
                    Some((after, RowKind::UpdateAfter)),
                ]
            }
            Some("d") => [Some((image(0, "before")?, RowKind::Delete)), None],
            Some(other) => return Err(EnvelopeError::UnknownOp(other.to_string())),
            None if self.schema_include => return Err(EnvelopeError::MissingOp("")),
            None => return Err(EnvelopeError::MissingOp(SCHEMA_HINT)),
        })
    }
}

/// Which image (0 = before, 1 = after) of which row, as what kind.
type Change = [Option<((usize, usize), RowKind)>; 2];

/// An envelope as JSON again, cut short, for an error message.
fn message_text(envelopes: &RecordBatch, row: usize) -> String {
    const LIMIT: usize = 300;
    let mut text = Vec::new();
    let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(&mut text);
    let written = row < envelopes.num_rows()
        && writer.write(&envelopes.slice(row, 1)).is_ok()
        && writer.finish().is_ok();
    if !written {
        return "(not shown)".to_string();
    }
    let text = String::from_utf8_lossy(&text).trim_end().to_string();
    match text.char_indices().nth(LIMIT) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::TimeUnit;
    use std::path::Path;

    use runnel_engine::source::Poll;

    fn table(nullable_k: bool) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, nullable_k),
            Field::new("v", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]))
    }

    fn options(path: &Path, extra: &[(&str, &str)]) -> Options {
        let mut values: BTreeMap<String, String> = [
            ("connector", "filesystem".to_string()),
            ("path", path.display().to_string()),
            ("format", "debezium-json".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        values.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Options::new(values)
    }

    /// `(kind, k, v, ts)`
    type ReadRow = (&'static str, i64, Option<i64>, Option<i64>);

    /// Every batch `workers` readers of `lines` produce, as rows, or the
    /// first error.
    fn read(
        lines: &str,
        extra: &[(&str, &str)],
        schema: SchemaRef,
        workers: usize,
    ) -> Result<Vec<ReadRow>, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("changes.json");
        std::fs::write(&path, lines).map_err(|e| e.to_string())?;
        let source =
            crate::filesystem::source(&options(&path, extra), schema).map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for worker in 0..workers {
            let mut reader = source.reader(worker, workers).map_err(|e| e.to_string())?;
            while let Poll::Batch(batch) = reader.poll().map_err(|e| e.to_string())? {
                let k = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                let v = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                let ts = batch
                    .column(2)
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .unwrap();
                for (row, kind) in kinds(&batch).unwrap().into_iter().enumerate() {
                    rows.push((
                        kind.short(),
                        k.value(row),
                        v.is_valid(row).then(|| v.value(row)),
                        ts.is_valid(row).then(|| ts.value(row)),
                    ));
                }
            }
        }
        Ok(rows)
    }

    const HISTORY: &str = r#"{"before":null,"after":{"k":1,"v":10,"ts":"2020-04-15 08:00:01.500"},"op":"r","source":{"db":"x"},"ts_ms":1}
{"before":null,"after":{"k":2,"v":null},"op":"c"}

{"before":{"k":1,"v":10,"ts":"2020-04-15 08:00:01.500"},"after":{"k":1,"v":11,"ts":"2020-04-15 08:00:02.000"},"op":"u"}
{"before":{"k":2,"v":null},"after":null,"op":"d"}
"#;

    #[test]
    fn envelopes_become_inserts_updates_and_deletes() {
        let rows = read(HISTORY, &[], table(false), 1).unwrap();
        assert_eq!(
            rows,
            [
                ("+I", 1, Some(10), Some(1_586_937_601_500)),
                ("+I", 2, None, None),
                ("-U", 1, Some(10), Some(1_586_937_601_500)),
                ("+U", 1, Some(11), Some(1_586_937_602_000)),
                ("-D", 2, None, None),
            ]
        );
        // Split between workers, each change is read once.
        let mut split = read(HISTORY, &[], table(false), 3).unwrap();
        let mut whole = rows;
        split.sort();
        whole.sort();
        assert_eq!(split, whole);
    }

    #[test]
    fn with_schema_include_the_change_is_the_payload() {
        let wrapped: String = HISTORY
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| format!("{{\"schema\":{{\"type\":\"struct\"}},\"payload\":{l}}}\n"))
            .collect();
        let rows = read(
            &wrapped,
            &[("debezium-json.schema-include", "true")],
            table(false),
            1,
        )
        .unwrap();
        assert_eq!(rows, read(HISTORY, &[], table(false), 1).unwrap());
        // Without the option the envelope has no op, and the error says why.
        let error = read(&wrapped, &[], table(false), 1).unwrap_err();
        assert!(
            error.contains("'debezium-json.schema-include' = 'true'"),
            "{error}"
        );
    }

    #[test]
    fn iso_timestamps_are_read_with_their_standard() {
        let line = r#"{"before":null,"after":{"k":1,"ts":"2020-04-15T08:00:01.500"},"op":"c"}"#;
        let rows = read(
            line,
            &[("debezium-json.timestamp-format.standard", "ISO-8601")],
            table(false),
            1,
        )
        .unwrap();
        assert_eq!(rows, [("+I", 1, None, Some(1_586_937_601_500))]);
        let error = read(
            line,
            &[("debezium-json.timestamp-format.standard", "RFC")],
            table(false),
            1,
        )
        .unwrap_err();
        assert!(error.contains("SQL or ISO-8601"), "{error}");
    }

    #[test]
    fn a_bad_envelope_fails_naming_the_file_and_the_message() {
        for (line, problem) in [
            (
                r#"{"before":null,"after":{"k":1},"op":"x"}"#,
                "unknown \"op\" value 'x'",
            ),
            (
                r#"{"before":null,"after":{"k":1},"op":"d"}"#,
                "\"before\" is null or missing in a message with op 'd'",
            ),
            (
                r#"{"before":null,"after":{"k":1},"op":"u"}"#,
                "\"before\" is null or missing in a message with op 'u'",
            ),
            (
                r#"{"before":{"k":1},"after":null,"op":"c"}"#,
                "\"after\" is null or missing in a message with op 'c'",
            ),
            (r#"{"before":null,"after":{"k":1}}"#, "no \"op\" field"),
            (
                r#"{"before":null,"after":{"v":1},"op":"c"}"#,
                "column 'k' is NOT NULL but null in \"after\"",
            ),
        ] {
            let text = format!("{}{line}\n", HISTORY);
            let error = read(&text, &[], table(false), 1).unwrap_err();
            assert!(error.contains(problem), "{line}: {error}");
            assert!(error.contains("changes.json"), "{error}");
            assert!(error.contains("the message is '{"), "{error}");
        }
        let error = read("{\"before\": nul\n", &[], table(false), 1).unwrap_err();
        assert!(
            error.contains("debezium-json: ") && error.contains("changes.json"),
            "{error}"
        );
    }

    #[test]
    fn ignore_parse_errors_skips_bad_envelopes_and_lines() {
        let text = format!(
            "{}{}\n{}\nnot json\n",
            HISTORY,
            r#"{"before":null,"after":{"k":1},"op":"x"}"#,
            r#"{"before":null,"after":{"k":5},"op":"c"}"#,
        );
        let rows = read(
            &text,
            &[("debezium-json.ignore-parse-errors", "true")],
            table(false),
            1,
        )
        .unwrap();
        let mut expected = read(HISTORY, &[], table(false), 1).unwrap();
        expected.push(("+I", 5, None, None));
        assert_eq!(rows, expected);
    }

    /// What the debezium-json sink writes reads back as the same table.
    #[test]
    fn the_sinks_envelopes_read_back() {
        let schema = table(true);
        let data = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 1, 1, 2])),
                Arc::new(Int64Array::from(vec![Some(10), Some(10), Some(11), None])),
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(1_586_937_601_500),
                    Some(1_586_937_601_500),
                    None,
                    Some(7),
                ])),
            ],
        )
        .unwrap();
        let kinds = [
            RowKind::Insert,
            RowKind::UpdateBefore,
            RowKind::UpdateAfter,
            RowKind::Delete,
        ];
        let mut columns = data.columns().to_vec();
        columns.push(op_array(&kinds));
        let changelog = RecordBatch::try_new(with_op(&schema), columns).unwrap();
        let no_options = Options::new(BTreeMap::new());
        let mut text = Vec::new();
        DebeziumFormat::from_options(&no_options)
            .unwrap()
            .encode(&changelog, &mut text)
            .unwrap();
        let rows = read(&String::from_utf8(text).unwrap(), &[], schema, 1).unwrap();
        // Flink's sink writes -U as a delete and +U as an insert.
        assert_eq!(
            rows,
            [
                ("+I", 1, Some(10), Some(1_586_937_601_500)),
                ("-D", 1, Some(10), Some(1_586_937_601_500)),
                ("+I", 1, Some(11), None),
                ("-D", 2, None, Some(7)),
            ]
        );
    }
}
