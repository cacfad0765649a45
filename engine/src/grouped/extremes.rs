//! MIN and MAX per group over an append-only input, for integers, dates,
//! times and strings (floats, with NaN's order, stay with DataFusion's).

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, PrimitiveArray, StringArray, StringViewArray,
};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType};

use super::{GroupedAccumulator, Rows, gather, retain_vec, scatter};
use crate::checkpoint::codec::{columns_from_bytes, columns_to_bytes, corrupt, options, padded};
use crate::error::EngineError;

pub(super) fn for_type(data_type: &DataType, max: bool) -> Option<Box<dyn GroupedAccumulator>> {
    use datafusion::arrow::datatypes::*;
    let wanted = if max {
        Ordering::Greater
    } else {
        Ordering::Less
    };
    macro_rules! primitive {
        ($t:ty) => {
            Some(Box::new(PrimitiveExtreme::<$t> {
                wanted,
                data_type: data_type.clone(),
                values: Vec::new(),
            }))
        };
    }
    match data_type {
        DataType::Int8 => primitive!(Int8Type),
        DataType::Int16 => primitive!(Int16Type),
        DataType::Int32 => primitive!(Int32Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::UInt64 => primitive!(UInt64Type),
        DataType::Date32 => primitive!(Date32Type),
        DataType::Date64 => primitive!(Date64Type),
        DataType::Timestamp(TimeUnit::Second, _) => primitive!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => primitive!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => primitive!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => primitive!(TimestampNanosecondType),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Box::new(TextExtreme {
            wanted,
            data_type: data_type.clone(),
            values: Vec::new(),
        })),
        _ => None,
    }
}

struct PrimitiveExtreme<T: ArrowPrimitiveType> {
    wanted: Ordering,
    /// The argument's type, time zone included.
    data_type: DataType,
    values: Vec<Option<T::Native>>,
}

impl<T: ArrowPrimitiveType> GroupedAccumulator for PrimitiveExtreme<T>
where
    T::Native: Ord,
{
    fn update(&mut self, arguments: &[ArrayRef], rows: &Rows<'_>) -> Result<(), EngineError> {
        if self.values.len() < rows.group_count {
            self.values.resize(rows.group_count, None);
        }
        let input = arguments[0].as_primitive::<T>();
        let (values, wanted) = (&mut self.values, self.wanted);
        rows.each(|row, group, _| {
            if input.is_valid(row) {
                let value = input.value(row);
                let kept = &mut values[group];
                if kept.is_none_or(|k| value.cmp(&k) == wanted) {
                    *kept = Some(value);
                }
            }
        });
        Ok(())
    }

    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError> {
        let array: PrimitiveArray<T> = groups
            .iter()
            .map(|&g| self.values.get(g as usize).copied().flatten())
            .collect();
        Ok(vec![Arc::new(array.with_data_type(self.data_type.clone()))])
    }

    fn retain(&mut self, keep: &[bool]) {
        retain_vec(&mut self.values, keep);
    }

    fn snapshot(&mut self, groups: usize) -> Result<Vec<u8>, EngineError> {
        let array: PrimitiveArray<T> = padded(&self.values, groups, None).collect();
        columns_to_bytes(vec![Arc::new(array.with_data_type(self.data_type.clone()))])
    }

    fn restore(&mut self, bytes: &[u8], groups: usize) -> Result<(), EngineError> {
        let columns =
            columns_from_bytes(bytes, Some(groups), std::slice::from_ref(&self.data_type))?;
        self.values = options::<T>(&columns[0])?;
        Ok(())
    }

    fn incremental(&self) -> bool {
        true
    }

    fn snapshot_groups(&mut self, groups: &[u32]) -> Result<Vec<u8>, EngineError> {
        let array: PrimitiveArray<T> = gather(&self.values, groups, None).collect();
        columns_to_bytes(vec![Arc::new(array.with_data_type(self.data_type.clone()))])
    }

    fn restore_groups(
        &mut self,
        bytes: &[u8],
        groups: &[u32],
        group_count: usize,
    ) -> Result<(), EngineError> {
        let types = std::slice::from_ref(&self.data_type);
        let columns = columns_from_bytes(bytes, Some(groups.len()), types)?;
        let values = options::<T>(&columns[0])?;
        scatter(&mut self.values, groups, values, group_count, None);
        Ok(())
    }
}

/// Strings compare by their bytes, as DataFusion's MIN and MAX do.
struct TextExtreme {
    wanted: Ordering,
    data_type: DataType,
    values: Vec<Option<Box<str>>>,
}

impl TextExtreme {
    fn absorb<'a>(&mut self, rows: &Rows<'_>, value: impl Fn(usize) -> Option<&'a str>) {
        let (values, wanted) = (&mut self.values, self.wanted);
        rows.each(|row, group, _| {
            if let Some(value) = value(row) {
                let kept = &mut values[group];
                if kept.as_deref().is_none_or(|k| value.cmp(k) == wanted) {
                    *kept = Some(value.into());
                }
            }
        });
    }
}

impl GroupedAccumulator for TextExtreme {
    fn update(&mut self, arguments: &[ArrayRef], rows: &Rows<'_>) -> Result<(), EngineError> {
        if self.values.len() < rows.group_count {
            self.values.resize(rows.group_count, None);
        }
        let input = &arguments[0];
        match input.data_type() {
            DataType::Utf8 => {
                let strings = input.as_string::<i32>();
                self.absorb(rows, |row| {
                    strings.is_valid(row).then(|| strings.value(row))
                });
            }
            DataType::LargeUtf8 => {
                let strings = input.as_string::<i64>();
                self.absorb(rows, |row| {
                    strings.is_valid(row).then(|| strings.value(row))
                });
            }
            DataType::Utf8View => {
                let strings = input.as_string_view();
                self.absorb(rows, |row| {
                    strings.is_valid(row).then(|| strings.value(row))
                });
            }
            other => {
                return Err(EngineError::Plan(format!(
                    "MIN/MAX of strings was given {other}"
                )));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError> {
        let values = groups
            .iter()
            .map(|&g| self.values.get(g as usize).and_then(|v| v.as_deref()));
        let array: ArrayRef = match self.data_type {
            DataType::LargeUtf8 => Arc::new(values.collect::<LargeStringArray>()),
            DataType::Utf8View => Arc::new(values.collect::<StringViewArray>()),
            _ => Arc::new(values.collect::<StringArray>()),
        };
        Ok(vec![array])
    }

    fn retain(&mut self, keep: &[bool]) {
        retain_vec(&mut self.values, keep);
    }

    /// Kept as UTF-8 whatever the argument's string type.
    fn snapshot(&mut self, groups: usize) -> Result<Vec<u8>, EngineError> {
        let array: StringArray = padded(&self.values, groups, None).collect();
        columns_to_bytes(vec![Arc::new(array)])
    }

    fn restore(&mut self, bytes: &[u8], groups: usize) -> Result<(), EngineError> {
        self.values = text_values(bytes, groups)?;
        Ok(())
    }

    fn incremental(&self) -> bool {
        true
    }

    fn snapshot_groups(&mut self, groups: &[u32]) -> Result<Vec<u8>, EngineError> {
        let array: StringArray = gather(&self.values, groups, None).collect();
        columns_to_bytes(vec![Arc::new(array)])
    }

    fn restore_groups(
        &mut self,
        bytes: &[u8],
        groups: &[u32],
        group_count: usize,
    ) -> Result<(), EngineError> {
        let values = text_values(bytes, groups.len())?;
        scatter(&mut self.values, groups, values, group_count, None);
        Ok(())
    }
}

/// What a MIN/MAX of strings' snapshot of `groups` groups holds.
fn text_values(bytes: &[u8], groups: usize) -> Result<Vec<Option<Box<str>>>, EngineError> {
    let columns = columns_from_bytes(bytes, Some(groups), &[DataType::Utf8])?;
    let strings = columns[0]
        .as_string_opt::<i32>()
        .ok_or_else(|| corrupt("a MIN/MAX state is not UTF-8"))?;
    Ok(strings.iter().map(|v| v.map(Box::from)).collect())
}
