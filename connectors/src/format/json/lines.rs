//! JSON lines straight into Arrow columns: one pass over the bytes, each
//! string copied once, fields found by their expected position first.
//!
//! arrow-json first writes every line onto a tape (copying its strings),
//! then builds each column from the tape (copying them again); on Nexmark's
//! events that was most of a simple query's CPU. This decoder covers the
//! shapes streaming sources carry (objects of integers, floats, booleans,
//! strings, timestamps and nested objects of those) and gives a chunk back
//! (`None`) at anything it does not treat exactly as arrow-json would:
//! escaped keys, a key given twice, numbers for strings or strings for
//! numbers, timestamps not spelled `YYYY-MM-DD[ T]HH:MM:SS[.fff]`, invalid
//! JSON. The caller then decodes that chunk with arrow-json, so values and
//! error messages stay arrow-json's.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::connector::{KeepOnly, UnusedFields};

use super::columns::*;
use super::scanner::*;

/// Something this decoder leaves to arrow-json.
#[derive(Debug)]
pub(crate) struct GiveBack;

pub(crate) type Step<T = ()> = Result<T, GiveBack>;

pub struct JsonLines {
    schema: SchemaRef,
    names: Vec<Name>,
    columns: Vec<Column>,
    batch_rows: usize,
    /// Lines whose top-level integer column is not this value are dropped
    /// as soon as it is read; the rest of such a line is not parsed.
    keep: Option<KeepOnly>,
}

impl JsonLines {
    /// `None` when a column's type is one this decoder does not build.
    pub fn new(schema: SchemaRef, batch_rows: usize) -> Option<Self> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| Column::new(f))
            .collect::<Option<Vec<_>>>()?;
        Some(JsonLines {
            names: names(schema.fields()),
            schema,
            columns,
            batch_rows,
            keep: None,
        })
    }

    /// Leaves the nested fields `unused` names (by top-level column, then
    /// child) unread: they come out NULL. Only nullable fields are left.
    pub fn skip_fields(&mut self, unused: &UnusedFields) {
        for (column, children) in unused {
            let Some(Column {
                kind: Kind::Struct { children: kept, .. },
                ..
            }) = self.columns.get_mut(*column)
            else {
                continue;
            };
            for &child in children {
                if let Some(child) = kept.get_mut(child).filter(|c| c.nullable) {
                    child.kind = Kind::Skipped;
                }
            }
        }
    }

    pub fn keep_only(&mut self, keep: KeepOnly) {
        if let Some(Column {
            kind: Kind::Int { .. },
            ..
        }) = self.columns.get(keep.column)
        {
            self.keep = Some(keep);
        }
    }

    /// The batches of `lines` (whole lines), or `None` to have arrow-json
    /// decode them instead.
    pub fn decode(&mut self, lines: &[u8]) -> Option<Vec<RecordBatch>> {
        let result = self.decode_all(lines);
        if result.is_err() {
            for column in &mut self.columns {
                column.clear();
            }
        }
        result.ok()
    }

    fn decode_all(&mut self, lines: &[u8]) -> Step<Vec<RecordBatch>> {
        // Invalid UTF-8 anywhere, even in a skipped field, is arrow-json's error.
        simdutf8::basic::from_utf8(lines).map_err(|_| GiveBack)?;
        let mut input = Input {
            bytes: lines,
            at: 0,
        };
        let mut batches = Vec::new();
        let mut rows = 0;
        loop {
            input.skip_space();
            if input.at >= input.bytes.len() {
                break;
            }
            let row = self.columns.first().map_or(0, Column::len);
            if !parse_object(
                &mut input,
                &self.names,
                &mut self.columns,
                self.keep.as_ref(),
            )? {
                // Usually only the filtered column was written: the others
                // need no visit.
                self.columns
                    .iter_mut()
                    .filter(|c| c.len() > row)
                    .for_each(|c| c.truncate(row));
                input.at = memchr::memchr(b'\n', &input.bytes[input.at..])
                    .map_or(input.bytes.len(), |i| input.at + i + 1);
                continue;
            }
            input.end_of_line()?;
            rows += 1;
            if rows == self.batch_rows {
                batches.push(self.finish(rows)?);
                rows = 0;
            }
        }
        if rows > 0 {
            batches.push(self.finish(rows)?);
        }
        Ok(batches)
    }

    fn finish(&mut self, rows: usize) -> Step<RecordBatch> {
        let columns = self
            .columns
            .iter_mut()
            .zip(self.schema.fields())
            .map(|(column, field)| column.finish(field))
            .collect::<Step<Vec<_>>>()?;
        let options =
            datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|_| GiveBack)
    }
}
