//! The column builders: each JSON value appended straight to its Arrow
//! column, and the columns finished into arrays.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, PrimitiveArray, StringArray, StructArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array, new_null_array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{
    DataType, Field, Fields, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};

use super::lines::{GiveBack, Step};

pub(super) fn names(fields: &Fields) -> Vec<Name> {
    fields.iter().map(|f| Name::new(f.name())).collect()
}

/// A field name, and its quoted form as a 16-byte pattern: most keys are
/// matched by one load, mask and compare.
pub(super) struct Name {
    pub(super) bytes: Box<[u8]>,
    /// `(pattern, mask)` of `"name"`, little-endian, when it fits in 16
    /// bytes and needs no escape.
    pub(super) quoted: Option<(u128, u128)>,
}

impl Name {
    pub(super) fn new(name: &str) -> Self {
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

pub(super) struct Column {
    pub(super) kind: Kind,
    pub(super) valid: Vec<bool>,
    pub(super) nullable: bool,
}

pub(super) enum Kind {
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
    pub(super) fn new(field: &Field) -> Option<Self> {
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

    pub(super) fn len(&self) -> usize {
        self.valid.len()
    }

    pub(super) fn push_null(&mut self) -> Step {
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
    pub(super) fn pad_to(&mut self, rows: usize) {
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
    pub(super) fn holds_last(&self, wanted: &[i64]) -> bool {
        match (&self.kind, self.valid.last()) {
            (Kind::Int { values, .. }, Some(true)) => {
                values.last().is_some_and(|v| wanted.contains(v))
            }
            _ => false,
        }
    }

    /// Back to `rows` rows (a dropped line's values undone).
    pub(super) fn truncate(&mut self, rows: usize) {
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

    pub(super) fn clear(&mut self) {
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

    pub(super) fn finish(&mut self, field: &Field) -> Step<ArrayRef> {
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

pub(super) fn offset(data: &[u8]) -> Step<i32> {
    i32::try_from(data.len()).map_err(|_| GiveBack)
}

pub(super) fn narrow(
    values: Vec<i64>,
    nulls: Option<NullBuffer>,
    data_type: &DataType,
) -> Step<ArrayRef> {
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
