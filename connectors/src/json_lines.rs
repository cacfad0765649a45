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

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, PrimitiveArray, StringArray, StructArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array, new_null_array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{
    DataType, Field, Fields, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::connector::{KeepOnly, UnusedFields};

/// Something this decoder leaves to arrow-json.
#[derive(Debug)]
struct GiveBack;

type Step<T = ()> = Result<T, GiveBack>;

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

fn names(fields: &Fields) -> Vec<Name> {
    fields.iter().map(|f| Name::new(f.name())).collect()
}

/// A field name, and its quoted form as a 16-byte pattern: most keys are
/// matched by one load, mask and compare.
struct Name {
    bytes: Box<[u8]>,
    /// `(pattern, mask)` of `"name"`, little-endian, when it fits in 16
    /// bytes and needs no escape.
    quoted: Option<(u128, u128)>,
}

impl Name {
    fn new(name: &str) -> Self {
        let bytes: Box<[u8]> = name.as_bytes().into();
        let plain = !bytes.iter().any(|&b| b == b'"' || b == b'\\');
        let quoted = (plain && bytes.len() + 2 <= 16).then(|| {
            let mut window = [0u8; 16];
            window[0] = b'"';
            window[1..=bytes.len()].copy_from_slice(&bytes);
            window[bytes.len() + 1] = b'"';
            let width = 8 * (bytes.len() as u32 + 2);
            let mask = u128::MAX.checked_shr(128 - width).unwrap_or(0);
            (u128::from_le_bytes(window), mask)
        });
        Name { bytes, quoted }
    }
}

struct Column {
    kind: Kind,
    valid: Vec<bool>,
    nullable: bool,
}

enum Kind {
    /// A field no query reads: its values are skipped, and it is all NULL.
    Skipped,
    Int {
        values: Vec<i64>,
        min: i64,
        max: i64,
    },
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    Bool(Vec<bool>),
    Utf8 {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    Timestamp {
        values: Vec<i64>,
        unit: TimeUnit,
    },
    Struct {
        names: Vec<Name>,
        children: Vec<Column>,
    },
}

impl Column {
    fn new(field: &Field) -> Option<Self> {
        let int = |min: i64, max: i64| Kind::Int {
            values: Vec::new(),
            min,
            max,
        };
        let kind = match field.data_type() {
            DataType::Int8 => int(i8::MIN.into(), i8::MAX.into()),
            DataType::Int16 => int(i16::MIN.into(), i16::MAX.into()),
            DataType::Int32 => int(i32::MIN.into(), i32::MAX.into()),
            DataType::Int64 => int(i64::MIN, i64::MAX),
            DataType::UInt8 => int(0, u8::MAX.into()),
            DataType::UInt16 => int(0, u16::MAX.into()),
            DataType::UInt32 => int(0, u32::MAX.into()),
            // Above i64::MAX a value is given back to arrow-json.
            DataType::UInt64 => int(0, i64::MAX),
            DataType::Float32 => Kind::Float32(Vec::new()),
            DataType::Float64 => Kind::Float64(Vec::new()),
            DataType::Boolean => Kind::Bool(Vec::new()),
            DataType::Utf8 => Kind::Utf8 {
                offsets: vec![0],
                data: Vec::new(),
            },
            // A zone changes how a naive string reads; arrow-json knows how.
            DataType::Timestamp(unit, None) => Kind::Timestamp {
                values: Vec::new(),
                unit: *unit,
            },
            DataType::Struct(fields) => Kind::Struct {
                names: names(fields),
                children: fields
                    .iter()
                    .map(|f| Column::new(f))
                    .collect::<Option<Vec<_>>>()?,
            },
            _ => return None,
        };
        Some(Column {
            kind,
            valid: Vec::new(),
            nullable: field.is_nullable(),
        })
    }

    fn len(&self) -> usize {
        self.valid.len()
    }

    fn push_null(&mut self) -> Step {
        if !self.nullable {
            return Err(GiveBack);
        }
        self.valid.push(false);
        match &mut self.kind {
            Kind::Int { values, .. } | Kind::Timestamp { values, .. } => values.push(0),
            Kind::Float32(values) => values.push(0.0),
            Kind::Float64(values) => values.push(0.0),
            Kind::Bool(values) => values.push(false),
            Kind::Skipped => {}
            Kind::Utf8 { offsets, data } => offsets.push(offset(data)?),
            // Children catch up in bulk when next needed (`pad_to`).
            Kind::Struct { .. } => {}
        }
        Ok(())
    }

    /// Masked nulls up to `rows`: a struct's children lag behind it while
    /// it is null (most events carry only one of several nested rows).
    fn pad_to(&mut self, rows: usize) {
        if self.valid.len() >= rows {
            return;
        }
        self.valid.resize(rows, false);
        match &mut self.kind {
            Kind::Int { values, .. } | Kind::Timestamp { values, .. } => values.resize(rows, 0),
            Kind::Float32(values) => values.resize(rows, 0.0),
            Kind::Float64(values) => values.resize(rows, 0.0),
            Kind::Bool(values) => values.resize(rows, false),
            Kind::Skipped => {}
            Kind::Utf8 { offsets, .. } => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.resize(rows + 1, last);
            }
            Kind::Struct { .. } => {}
        }
    }

    /// Whether the last value is one of the integers `wanted`.
    fn holds_last(&self, wanted: &[i64]) -> bool {
        match (&self.kind, self.valid.last()) {
            (Kind::Int { values, .. }, Some(true)) => {
                values.last().is_some_and(|v| wanted.contains(v))
            }
            _ => false,
        }
    }

    /// Back to `rows` rows (a dropped line's values undone).
    fn truncate(&mut self, rows: usize) {
        self.valid.truncate(rows);
        match &mut self.kind {
            Kind::Int { values, .. } | Kind::Timestamp { values, .. } => values.truncate(rows),
            Kind::Float32(values) => values.truncate(rows),
            Kind::Float64(values) => values.truncate(rows),
            Kind::Bool(values) => values.truncate(rows),
            Kind::Skipped => {}
            Kind::Utf8 { offsets, data } => {
                offsets.truncate(rows + 1);
                let end = offsets.last().copied().unwrap_or(0);
                data.truncate(usize::try_from(end).unwrap_or(0));
            }
            Kind::Struct { children, .. } => {
                children.iter_mut().for_each(|child| child.truncate(rows))
            }
        }
    }

    fn clear(&mut self) {
        self.valid.clear();
        match &mut self.kind {
            Kind::Int { values, .. } | Kind::Timestamp { values, .. } => values.clear(),
            Kind::Float32(values) => values.clear(),
            Kind::Float64(values) => values.clear(),
            Kind::Bool(values) => values.clear(),
            Kind::Skipped => {}
            Kind::Utf8 { offsets, data } => {
                offsets.truncate(1);
                data.clear();
            }
            Kind::Struct { children, .. } => children.iter_mut().for_each(Column::clear),
        }
    }

    fn finish(&mut self, field: &Field) -> Step<ArrayRef> {
        let rows = self.len();
        let valid = std::mem::replace(&mut self.valid, Vec::with_capacity(rows));
        let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
        let array: ArrayRef = match (&mut self.kind, field.data_type()) {
            (Kind::Int { values, .. }, data_type) => {
                let values = std::mem::replace(values, Vec::with_capacity(rows));
                narrow(values, nulls, data_type)?
            }
            (Kind::Float32(values), _) => Arc::new(Float32Array::new(
                std::mem::replace(values, Vec::with_capacity(rows)).into(),
                nulls,
            )),
            (Kind::Float64(values), _) => Arc::new(Float64Array::new(
                std::mem::replace(values, Vec::with_capacity(rows)).into(),
                nulls,
            )),
            (Kind::Skipped, data_type) => new_null_array(data_type, rows),
            (Kind::Bool(values), _) => {
                Arc::new(BooleanArray::new(std::mem::take(values).into(), nulls))
            }
            (Kind::Utf8 { offsets, data }, _) => {
                let mut fresh = Vec::with_capacity(rows + 1);
                fresh.push(0);
                let offsets = std::mem::replace(offsets, fresh);
                let data = std::mem::replace(data, Vec::with_capacity(data.len()));
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                Arc::new(StringArray::try_new(offsets, data.into(), nulls).map_err(|_| GiveBack)?)
            }
            (Kind::Timestamp { values, unit }, _) => {
                let values: ScalarBuffer<i64> =
                    std::mem::replace(values, Vec::with_capacity(rows)).into();
                match unit {
                    TimeUnit::Second => {
                        Arc::new(PrimitiveArray::<TimestampSecondType>::new(values, nulls))
                    }
                    TimeUnit::Millisecond => Arc::new(
                        PrimitiveArray::<TimestampMillisecondType>::new(values, nulls),
                    ),
                    TimeUnit::Microsecond => Arc::new(
                        PrimitiveArray::<TimestampMicrosecondType>::new(values, nulls),
                    ),
                    TimeUnit::Nanosecond => Arc::new(
                        PrimitiveArray::<TimestampNanosecondType>::new(values, nulls),
                    ),
                }
            }
            (Kind::Struct { children, .. }, DataType::Struct(fields)) => {
                children.iter_mut().for_each(|child| child.pad_to(rows));
                let arrays = children
                    .iter_mut()
                    .zip(fields.iter())
                    .map(|(child, field)| child.finish(field))
                    .collect::<Step<Vec<_>>>()?;
                if arrays.is_empty() {
                    Arc::new(StructArray::new_empty_fields(rows, nulls))
                } else {
                    Arc::new(
                        StructArray::try_new(fields.clone(), arrays, nulls)
                            .map_err(|_| GiveBack)?,
                    )
                }
            }
            (Kind::Struct { .. }, _) => return Err(GiveBack),
        };
        Ok(array)
    }
}

fn offset(data: &[u8]) -> Step<i32> {
    i32::try_from(data.len()).map_err(|_| GiveBack)
}

fn narrow(values: Vec<i64>, nulls: Option<NullBuffer>, data_type: &DataType) -> Step<ArrayRef> {
    // Values were range-checked as they were read.
    macro_rules! to {
        ($array:ty, $t:ty) => {
            Arc::new(<$array>::new(
                values.into_iter().map(|v| v as $t).collect(),
                nulls,
            )) as ArrayRef
        };
    }
    Ok(match data_type {
        DataType::Int64 => Arc::new(Int64Array::new(values.into(), nulls)),
        DataType::Int32 => to!(Int32Array, i32),
        DataType::Int16 => to!(Int16Array, i16),
        DataType::Int8 => to!(Int8Array, i8),
        DataType::UInt64 => to!(UInt64Array, u64),
        DataType::UInt32 => to!(UInt32Array, u32),
        DataType::UInt16 => to!(UInt16Array, u16),
        DataType::UInt8 => to!(UInt8Array, u8),
        _ => return Err(GiveBack),
    })
}

struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.at += 1;
        }
    }

    /// Spaces, then the end of the line: one object per line.
    fn end_of_line(&mut self) -> Step {
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b'\r' => self.at += 1,
                b'\n' => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(GiveBack),
            }
        }
        Ok(())
    }

    fn expect(&mut self, byte: u8) -> Step {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(GiveBack)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Step {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(GiveBack)
        }
    }

    /// Steps over `"name"` if that is what comes next: the field expected
    /// next is matched in place, without searching for the closing quote.
    /// A name with a quote or backslash is never matched this way (its key
    /// would be escaped in the JSON).
    fn quoted_is(&mut self, name: Option<&Name>) -> bool {
        let Some(name) = name else {
            return false;
        };
        let rest = &self.bytes[self.at..];
        let width = name.bytes.len() + 2;
        let matched = match (name.quoted, rest.first_chunk::<16>()) {
            (Some((pattern, mask)), Some(window)) => u128::from_le_bytes(*window) & mask == pattern,
            _ => {
                rest.len() > width - 1
                    && rest[0] == b'"'
                    && rest[1..width - 1] == *name.bytes
                    && rest[width - 1] == b'"'
                    && !name.bytes.iter().any(|&b| b == b'"' || b == b'\\')
            }
        };
        if matched {
            self.at += width;
        }
        matched
    }

    /// A key's bytes; keys with escapes are given back.
    fn key(&mut self) -> Step<&[u8]> {
        self.expect(b'"')?;
        let start = self.at;
        let end = start + memchr::memchr2(b'"', b'\\', &self.bytes[start..]).ok_or(GiveBack)?;
        if self.bytes[end] != b'"' {
            return Err(GiveBack);
        }
        self.at = end + 1;
        Ok(&self.bytes[start..end])
    }

    /// A string's contents appended to `out`, escapes decoded.
    fn string_into(&mut self, out: &mut Vec<u8>) -> Step {
        self.expect(b'"')?;
        loop {
            let rest = &self.bytes[self.at..];
            let stop = memchr::memchr2(b'"', b'\\', rest).ok_or(GiveBack)?;
            // Raw control characters pass, as arrow-json lets them.
            out.extend_from_slice(&rest[..stop]);
            self.at += stop + 1;
            if rest[stop] == b'"' {
                return Ok(());
            }
            self.escape_into(out)?;
        }
    }

    fn escape_into(&mut self, out: &mut Vec<u8>) -> Step {
        let byte = self.peek().ok_or(GiveBack)?;
        self.at += 1;
        let simple = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let high = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    self.literal(b"\\u")?;
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(GiveBack);
                    }
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                let c = char::from_u32(code).ok_or(GiveBack)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            _ => return Err(GiveBack),
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Step<u32> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or(GiveBack)?;
        let text = std::str::from_utf8(digits).map_err(|_| GiveBack)?;
        let value = u32::from_str_radix(text, 16).map_err(|_| GiveBack)?;
        self.at += 4;
        Ok(value)
    }

    /// An integer without fraction or exponent (those are given back).
    fn integer(&mut self) -> Step<i64> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let mut value: i64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            let digit = i64::from(digit - b'0');
            value = value
                .checked_mul(10)
                .and_then(|v| {
                    if negative {
                        v.checked_sub(digit)
                    } else {
                        v.checked_add(digit)
                    }
                })
                .ok_or(GiveBack)?;
            self.at += 1;
        }
        let digits = self.at - start;
        // JSON has no leading zeros.
        if digits == 0 || (digits > 1 && self.bytes[start] == b'0') {
            return Err(GiveBack);
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return Err(GiveBack);
        }
        Ok(value)
    }

    fn number_text(&mut self) -> Step<&str> {
        let start = self.at;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
            self.at += 1;
        }
        let text = &self.bytes[start..self.at];
        if !valid_json_number(text) {
            return Err(GiveBack);
        }
        std::str::from_utf8(text).map_err(|_| GiveBack)
    }

    /// A value of a field the schema does not have.
    fn skip_value(&mut self) -> Step {
        match self.peek().ok_or(GiveBack)? {
            b'"' => {
                let mut sink = Vec::new();
                self.string_into(&mut sink)
            }
            b'{' => {
                self.at += 1;
                self.skip_space();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.skip_space();
                    self.key()?;
                    self.skip_space();
                    self.expect(b':')?;
                    self.skip_space();
                    self.skip_value()?;
                    self.skip_space();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return Err(GiveBack),
                    }
                }
            }
            b'[' => {
                self.at += 1;
                self.skip_space();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.skip_space();
                    self.skip_value()?;
                    self.skip_space();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return Err(GiveBack),
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number_text().map(|_| ()),
        }
    }
}

/// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn valid_json_number(text: &[u8]) -> bool {
    let mut at = 0;
    let digits = |at: &mut usize| {
        let start = *at;
        while text.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - start
    };
    if text.first() == Some(&b'-') {
        at += 1;
    }
    let whole_start = at;
    let whole = digits(&mut at);
    if whole == 0 || (whole > 1 && text[whole_start] == b'0') {
        return false;
    }
    if text.get(at) == Some(&b'.') {
        at += 1;
        if digits(&mut at) == 0 {
            return false;
        }
    }
    if let Some(b'e' | b'E') = text.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = text.get(at) {
            at += 1;
        }
        if digits(&mut at) == 0 {
            return false;
        }
    }
    at == text.len()
}

/// One object's fields into `columns`, nulls where a field is absent;
/// `false` as soon as the object turns out not to be one `keep` keeps.
fn parse_object(
    input: &mut Input<'_>,
    names: &[Name],
    columns: &mut [Column],
    keep: Option<&KeepOnly>,
) -> Step<bool> {
    let row = columns.first().map_or(0, Column::len);
    input.expect(b'{')?;
    input.skip_space();
    if input.peek() == Some(b'}') {
        input.at += 1;
    } else {
        let mut expected = 0;
        loop {
            input.skip_space();
            let position = if input.quoted_is(names.get(expected)) {
                Some(expected)
            } else {
                let key = input.key()?;
                names.iter().position(|n| *n.bytes == *key)
            };
            input.skip_space();
            input.expect(b':')?;
            input.skip_space();
            match position {
                Some(i) => {
                    // A key given twice: arrow-json decides which wins.
                    if columns[i].len() != row {
                        return Err(GiveBack);
                    }
                    parse_value(input, &mut columns[i])?;
                    if keep.is_some_and(|k| k.column == i && !columns[i].holds_last(&k.values)) {
                        return Ok(false);
                    }
                    expected = i + 1;
                }
                None => input.skip_value()?,
            }
            input.skip_space();
            match input.peek() {
                Some(b',') => input.at += 1,
                Some(b'}') => {
                    input.at += 1;
                    break;
                }
                _ => return Err(GiveBack),
            }
        }
    }
    for column in columns.iter_mut() {
        if column.len() == row {
            column.push_null()?;
        }
    }
    // An absent (NULL) column equals nothing.
    Ok(keep.is_none_or(|k| columns[k.column].holds_last(&k.values)))
}

fn parse_value(input: &mut Input<'_>, column: &mut Column) -> Step {
    if input.peek() == Some(b'n') {
        input.literal(b"null")?;
        return column.push_null();
    }
    match &mut column.kind {
        Kind::Skipped => {
            input.skip_value()?;
            column.valid.push(false);
            return Ok(());
        }
        Kind::Int { values, min, max } => {
            let value = input.integer()?;
            if value < *min || value > *max {
                return Err(GiveBack);
            }
            values.push(value);
        }
        Kind::Float32(values) => {
            let value = input.number_text()?.parse().map_err(|_| GiveBack)?;
            values.push(value);
        }
        Kind::Float64(values) => {
            let value = input.number_text()?.parse().map_err(|_| GiveBack)?;
            values.push(value);
        }
        Kind::Bool(values) => match input.peek() {
            Some(b't') => {
                input.literal(b"true")?;
                values.push(true);
            }
            _ => {
                input.literal(b"false")?;
                values.push(false);
            }
        },
        Kind::Utf8 { offsets, data } => {
            input.string_into(data)?;
            offsets.push(offset(data)?);
        }
        Kind::Timestamp { values, unit } => {
            let value = if input.peek() == Some(b'"') {
                input.at += 1;
                let end =
                    input.at + memchr::memchr(b'"', &input.bytes[input.at..]).ok_or(GiveBack)?;
                let value = timestamp(&input.bytes[input.at..end], *unit)?;
                input.at = end + 1;
                value
            } else {
                input.integer()?
            };
            values.push(value);
        }
        Kind::Struct { names, children } => {
            let row = column.valid.len();
            children.iter_mut().for_each(|child| child.pad_to(row));
            parse_object(input, names, children, None)?;
        }
    }
    column.valid.push(true);
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS[.f{1,9}]` (or with `T`) as a naive time in `unit`.
fn timestamp(text: &[u8], unit: TimeUnit) -> Step<i64> {
    let number = |range: std::ops::Range<usize>| -> Step<i64> {
        let digits = text.get(range).ok_or(GiveBack)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            if d.is_ascii_digit() {
                Ok(acc * 10 + i64::from(d - b'0'))
            } else {
                Err(GiveBack)
            }
        })
    };
    if text.len() < 19
        || text[4] != b'-'
        || text[7] != b'-'
        || !matches!(text[10], b' ' | b'T')
        || text[13] != b':'
        || text[16] != b':'
    {
        return Err(GiveBack);
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(GiveBack);
    }
    let mut nanos = 0i64;
    if text.len() > 19 {
        let fraction = text.get(20..).ok_or(GiveBack)?;
        if text[19] != b'.' || fraction.is_empty() || fraction.len() > 9 {
            return Err(GiveBack);
        }
        nanos = number(20..text.len())? * 10i64.pow(9 - fraction.len() as u32);
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(match unit {
        TimeUnit::Second => seconds,
        TimeUnit::Millisecond => seconds * 1_000 + nanos / 1_000_000,
        TimeUnit::Microsecond => seconds * 1_000_000 + nanos / 1_000,
        TimeUnit::Nanosecond => seconds
            .checked_mul(1_000_000_000)
            .and_then(|s| s.checked_add(nanos))
            .ok_or(GiveBack)?,
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::Schema;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    fn schema() -> SchemaRef {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("small", DataType::Int8, true),
            Field::new("u", DataType::UInt32, true),
            Field::new("f", DataType::Float64, true),
            Field::new("g", DataType::Float32, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("ts", ts.clone(), true),
            Field::new("us", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new(
                "r",
                DataType::Struct(Fields::from(vec![
                    Field::new("id", DataType::Int64, false),
                    Field::new("name", DataType::Utf8, true),
                    Field::new("at", ts, true),
                ])),
                true,
            ),
            Field::new("required", DataType::Int32, false),
        ]))
    }

    /// arrow-json's answer: the batches concatenated, or `None` for an error.
    fn arrow(schema: &SchemaRef, lines: &[u8]) -> Option<RecordBatch> {
        let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(8192)
            .build_decoder()
            .ok()?;
        let mut batches = Vec::new();
        let mut rest = lines;
        while !rest.is_empty() {
            let used = decoder.decode(rest).ok()?;
            if used == 0 {
                return None;
            }
            rest = &rest[used..];
        }
        batches.extend(decoder.flush().ok()?);
        concat_batches(schema, &batches).ok()
    }

    /// Whenever the fast decoder answers, arrow-json gives the same rows.
    fn agrees(lines: &[u8]) -> Result<bool, TestCaseError> {
        let schema = schema();
        let mut fast = JsonLines::new(schema.clone(), 3).expect("supported schema");
        let Some(batches) = fast.decode(lines) else {
            return Ok(false);
        };
        let fast = concat_batches(&schema, &batches).expect("same schema");
        let slow = arrow(&schema, lines);
        prop_assert_eq!(
            Some(&fast),
            slow.as_ref(),
            "input: {}",
            String::from_utf8_lossy(lines)
        );
        Ok(true)
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_string()),
            any::<i64>().prop_map(|v| v.to_string()),
            (-300i64..300).prop_map(|v| v.to_string()),
            any::<u32>().prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| format!("{v:?}")),
            (-1e6f64..1e6).prop_map(|v| format!("{v:e}")),
            Just("01".to_string()),
            Just("-0".to_string()),
            Just("1.".to_string()),
            any::<bool>().prop_map(|v| v.to_string()),
            "[a-z \\\\\"/é\u{1F600}\t]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("\"a\\u00e9\\ud83d\\ude00\\n\"".to_string()),
            Just("\"\\ud800\"".to_string()),
            (
                1969i64..2100,
                1i64..13,
                1i64..32,
                0i64..24,
                0i64..60,
                0i64..61,
                0u32..4
            )
                .prop_map(|(y, mo, d, h, mi, s, frac)| {
                    let fraction = ["", ".5", ".123", ".123456789"][frac as usize];
                    format!("\"{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{fraction}\"")
                }),
            Just("\"2020-01-01T10:00:00.250\"".to_string()),
            Just("\"2020-01-01T10:00:00Z\"".to_string()),
            Just("\"2020-01-01\"".to_string()),
            Just("[1, {\"x\": [true]}]".to_string()),
            Just("{}".to_string()),
        ]
    }

    /// A value of the field's type most of the time, anything else sometimes.
    fn value_for(name: &'static str) -> BoxedStrategy<String> {
        let typed: BoxedStrategy<String> = match name {
            "i" | "id" => any::<i64>().prop_map(|v| v.to_string()).boxed(),
            "small" => (-128i64..128).prop_map(|v| v.to_string()).boxed(),
            "u" => any::<u32>().prop_map(|v| v.to_string()).boxed(),
            "f" | "g" => prop_oneof![
                any::<f64>().prop_map(|v| format!("{v:?}")),
                (-1e6f64..1e6).prop_map(|v| format!("{v:e}")),
                any::<i32>().prop_map(|v| v.to_string()),
            ]
            .boxed(),
            "b" => any::<bool>().prop_map(|v| v.to_string()).boxed(),
            "s" | "name" => "[a-z \\\\\"/é\u{1F600}\t]{0,12}"
                .prop_map(|s| serde_json::to_string(&s).unwrap())
                .boxed(),
            "ts" | "us" | "at" => (
                1969i64..2100,
                1i64..13,
                1i64..29,
                0i64..24,
                0i64..60,
                0i64..60,
                0usize..4,
            )
                .prop_map(|(y, mo, d, h, mi, s, frac)| {
                    let fraction = ["", ".5", ".123", ".123456789"][frac];
                    let sep = if frac == 1 { 'T' } else { ' ' };
                    format!("\"{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{fraction}\"")
                })
                .boxed(),
            _ => value().boxed(),
        };
        prop_oneof![8 => typed, 1 => Just("null".to_string()), 1 => value()].boxed()
    }

    fn object(names: &'static [&'static str]) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(names), 0..names.len() + 2)
            .prop_flat_map(|keys| {
                keys.into_iter()
                    .map(|k| (Just(k), value_for(k)))
                    .collect::<Vec<_>>()
            })
            .prop_map(|fields| {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("\"{k}\": {v}"))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            })
    }

    fn record() -> impl Strategy<Value = String> {
        const TOP: &[&str] = &["i", "small", "u", "f", "g", "b", "s", "ts", "us", "other"];
        const NESTED: &[&str] = &["id", "name", "at", "x"];
        (object(TOP), prop::option::of(object(NESTED)), any::<i32>()).prop_map(
            |(top, nested, required)| {
                let mut text = top.trim_end_matches('}').to_string();
                if text.len() > 1 {
                    text.push(',');
                }
                if let Some(nested) = nested {
                    text.push_str(&format!("\"r\":{nested},"));
                }
                text.push_str(&format!("\"required\":{required}}}"));
                text
            },
        )
    }

    /// arrow-json's rows with the nested `name` and `at` of `r` made NULL.
    fn without_nested_name_and_at(batch: &RecordBatch) -> RecordBatch {
        let r_index = batch.schema().index_of("r").expect("r");
        let r = batch.column(r_index).as_struct();
        let DataType::Struct(fields) = batch.schema().field(r_index).data_type().clone() else {
            unreachable!("r is a struct")
        };
        let children = vec![
            r.column(0).clone(),
            new_null_array(fields[1].data_type(), r.len()),
            new_null_array(fields[2].data_type(), r.len()),
        ];
        let r = StructArray::try_new(fields, children, r.nulls().cloned()).expect("same fields");
        let mut columns = batch.columns().to_vec();
        columns[r_index] = Arc::new(r);
        RecordBatch::try_new(batch.schema(), columns).expect("same schema")
    }

    #[test]
    fn unread_fields_take_the_fast_path() {
        let schema = schema();
        let lines = br#"{"i":1,"r":{"id":7,"name":"x","at":"2020-01-01 00:00:00"},"required":1}
{"i":2,"r":null,"required":2}
{"i":3,"r":{"id":8,"name":12,"at":"garbage"},"required":3}"#;
        let mut fast = JsonLines::new(schema.clone(), 8).expect("supported schema");
        let r_index = schema.index_of("r").expect("r");
        fast.skip_fields(&vec![(r_index, vec![0, 1, 2])]);
        let batch =
            concat_batches(&schema, &fast.decode(lines).expect("fast path")).expect("one schema");
        let r = batch.column(r_index).as_struct();
        assert_eq!(
            r.column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .values(),
            &[7, 0, 8]
        );
        assert_eq!(r.column(1).null_count(), 3);
        assert_eq!(r.column(2).null_count(), 3);
        assert!(r.is_null(1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Fields left unread come out NULL; everything else as arrow-json
        /// reads it. `r.id` is not nullable, so it is read anyway. (A value
        /// of the wrong type in an unread field is not an error here, while
        /// arrow-json, which reads everything, refuses it.)
        #[test]
        fn skipped_fields_are_null_and_the_rest_as_arrow_json(
            lines in prop::collection::vec(record(), 1..8),
        ) {
            let schema = schema();
            let lines = lines.join("\n");
            let mut fast = JsonLines::new(schema.clone(), 3).expect("supported schema");
            let r_index = schema.index_of("r").expect("r");
            fast.skip_fields(&vec![(r_index, vec![0, 1, 2])]);
            if let (Some(batches), Some(slow)) =
                (fast.decode(lines.as_bytes()), arrow(&schema, lines.as_bytes()))
            {
                let fast = concat_batches(&schema, &batches).expect("same schema");
                prop_assert_eq!(fast, without_nested_name_and_at(&slow), "input: {}", lines);
            }
        }

        #[test]
        fn gives_arrow_jsons_rows_or_gives_back(lines in prop::collection::vec(record(), 1..8)) {
            agrees(lines.join("\n").as_bytes())?;
        }

        #[test]
        fn damaged_input_never_panics_and_never_disagrees(
            lines in prop::collection::vec(record(), 1..4),
            cut in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = lines.join("\n").into_bytes();
            let at = cut.index(bytes.len());
            bytes[at] = byte;
            agrees(&bytes)?;
        }
    }

    /// The property above would hold vacuously if everything were given back.
    #[test]
    fn typed_random_records_mostly_take_the_fast_path() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut fast = 0;
        for _ in 0..300 {
            let line = record().new_tree(&mut runner).unwrap().current();
            let schema = schema();
            if let Some(batches) = JsonLines::new(schema.clone(), 8)
                .unwrap()
                .decode(line.as_bytes())
            {
                let fast_rows = concat_batches(&schema, &batches).unwrap();
                assert_eq!(Some(fast_rows), arrow(&schema, line.as_bytes()), "{line}");
                fast += 1;
            }
        }
        assert!(
            fast > 30,
            "only {fast} of 300 records decoded on the fast path"
        );
    }

    #[test]
    fn nexmark_shaped_lines_take_the_fast_path() {
        let lines = br#"{"i":1,"small":-3,"u":7,"f":1.5,"g":2,"b":true,"s":"a \"q\" \u00e9","ts":"2020-01-01 00:00:00.000","us":"2020-01-01T00:00:00.123456","r":{"id":5,"name":null,"at":"1999-12-31 23:59:59.999"},"required":0}
{"i":null,"r":null,"required":-1,"unknown":{"a":[1,2,{"b":null}]}}

{"required":2}
"#;
        assert!(agrees(lines).unwrap());
        let rows: usize = JsonLines::new(schema(), 2)
            .unwrap()
            .decode(lines)
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 3);
    }

    /// Dropping lines early leaves exactly the rows the filter would keep.
    #[test]
    fn kept_lines_are_the_rows_a_filter_keeps() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("event_type", DataType::Int32, true),
            Field::new(
                "bid",
                DataType::Struct(Fields::from(vec![
                    Field::new("price", DataType::Int64, true),
                    Field::new("url", DataType::Utf8, true),
                ])),
                true,
            ),
            Field::new("note", DataType::Utf8, true),
        ]));
        let lines = br#"{"event_type":0,"bid":null,"note":"person"}
{"event_type":2,"bid":{"price":5,"url":"a"},"note":"first"}
{"bid":{"price":6,"url":"b"},"event_type":1,"note":"late key"}
{"note":"no type","bid":{"price":7,"url":"c"}}
{"event_type":2,"bid":null,"note":"second"}
{"event_type":1,"bid":{"price":8,"url":"d"},"note":"auction"}
{"note":"type last","bid":{"price":9,"url":"e"},"event_type":2}
"#;
        let mut fast = JsonLines::new(schema.clone(), 2).unwrap();
        fast.keep_only(KeepOnly {
            column: 0,
            values: vec![2],
        });
        let kept = concat_batches(&schema, &fast.decode(lines).unwrap()).unwrap();
        let all = arrow(&schema, lines).unwrap();
        let mask =
            datafusion::arrow::compute::kernels::cmp::eq(all.column(0), &Int32Array::new_scalar(2))
                .unwrap();
        let expected = datafusion::arrow::compute::filter_record_batch(&all, &mask).unwrap();
        assert_eq!(kept, expected);
        assert_eq!(kept.num_rows(), 3);
    }

    #[test]
    fn timestamps_match_chrono_across_eras() {
        for (text, millis) in [
            ("1970-01-01 00:00:00", 0),
            ("1969-12-31 23:59:59.999", -1),
            ("2000-02-29 12:00:00.5", 951_825_600_500),
            ("2020-01-01 00:00:00.000", 1_577_836_800_000),
        ] {
            assert_eq!(
                timestamp(text.as_bytes(), TimeUnit::Millisecond).unwrap(),
                millis,
                "{text}"
            );
        }
        assert!(timestamp(b"2021-02-29 00:00:00", TimeUnit::Millisecond).is_err());
    }
}
