//! COUNT, SUM and AVG per group: each takes rows back by subtracting, so
//! they serve changelog inputs as well.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, PrimitiveArray,
};
use datafusion::arrow::datatypes::{
    ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Float64Type, Int64Type,
};

use super::{GroupedAccumulator, Rows, gather, retain_vec, scatter};
use crate::checkpoint::codec::{columns_from_bytes, columns_to_bytes, padded, values};
use crate::error::EngineError;

fn grow<T: Default + Clone>(values: &mut Vec<T>, groups: usize) {
    if values.len() < groups {
        values.resize(groups, T::default());
    }
}

/// COUNT(x): the rows whose `x` is not NULL (COUNT(*) counts a literal).
#[derive(Default)]
pub(super) struct Count {
    counts: Vec<i64>,
}

impl GroupedAccumulator for Count {
    fn update(&mut self, arguments: &[ArrayRef], rows: &Rows<'_>) -> Result<(), EngineError> {
        grow(&mut self.counts, rows.group_count);
        let counts = &mut self.counts;
        match arguments[0].logical_nulls() {
            None => rows.each(|_, group, diff| counts[group] += diff as i64),
            Some(nulls) => rows.each(|row, group, diff| {
                if nulls.is_valid(row) {
                    counts[group] += diff as i64;
                }
            }),
        }
        Ok(())
    }

    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError> {
        Ok(vec![Arc::new(Int64Array::from_iter_values(
            groups
                .iter()
                .map(|&g| self.counts.get(g as usize).copied().unwrap_or(0)),
        ))])
    }

    fn retain(&mut self, keep: &[bool]) {
        retain_vec(&mut self.counts, keep);
    }

    fn snapshot(&mut self, groups: usize) -> Result<Vec<u8>, EngineError> {
        let counts = Int64Array::from_iter_values(padded(&self.counts, groups, 0));
        columns_to_bytes(vec![Arc::new(counts)])
    }

    fn restore(&mut self, bytes: &[u8], groups: usize) -> Result<(), EngineError> {
        let columns = columns_from_bytes(bytes, Some(groups), &[DataType::Int64])?;
        self.counts = values::<Int64Type>(&columns[0])?;
        Ok(())
    }

    fn incremental(&self) -> bool {
        true
    }

    fn snapshot_groups(&mut self, groups: &[u32]) -> Result<Vec<u8>, EngineError> {
        let counts = Int64Array::from_iter_values(gather(&self.counts, groups, 0));
        columns_to_bytes(vec![Arc::new(counts)])
    }

    fn restore_groups(
        &mut self,
        bytes: &[u8],
        groups: &[u32],
        group_count: usize,
    ) -> Result<(), EngineError> {
        let columns = columns_from_bytes(bytes, Some(groups.len()), &[DataType::Int64])?;
        let counts = values::<Int64Type>(&columns[0])?;
        scatter(&mut self.counts, groups, counts, group_count, 0);
        Ok(())
    }
}

/// SUM(x) in x's own type (wrapping on overflow, as DataFusion's sum);
/// NULL while a group has no non-NULL value.
pub(super) struct Sum<T: ArrowPrimitiveType> {
    sums: Vec<T::Native>,
    values: Vec<i64>,
}

impl<T: ArrowPrimitiveType> Default for Sum<T> {
    fn default() -> Self {
        Self {
            sums: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<T: ArrowPrimitiveType> GroupedAccumulator for Sum<T> {
    fn update(&mut self, arguments: &[ArrayRef], rows: &Rows<'_>) -> Result<(), EngineError> {
        grow(&mut self.sums, rows.group_count);
        grow(&mut self.values, rows.group_count);
        let input = arguments[0].as_primitive::<T>();
        let (sums, values) = (&mut self.sums, &mut self.values);
        rows.each(|row, group, diff| {
            if input.is_valid(row) {
                let value = input.value(row);
                sums[group] = if diff > 0 {
                    sums[group].add_wrapping(value)
                } else {
                    sums[group].sub_wrapping(value)
                };
                values[group] += diff as i64;
            }
        });
        Ok(())
    }

    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError> {
        let array: PrimitiveArray<T> = groups
            .iter()
            .map(|&g| {
                let g = g as usize;
                (self.values.get(g).copied().unwrap_or(0) > 0).then(|| self.sums[g])
            })
            .collect();
        Ok(vec![Arc::new(array)])
    }

    fn retain(&mut self, keep: &[bool]) {
        retain_vec(&mut self.sums, keep);
        retain_vec(&mut self.values, keep);
    }

    /// Each group's sum and how many values it has.
    fn snapshot(&mut self, groups: usize) -> Result<Vec<u8>, EngineError> {
        let zero = T::Native::default();
        let sums = PrimitiveArray::<T>::from_iter_values(padded(&self.sums, groups, zero));
        let counts = Int64Array::from_iter_values(padded(&self.values, groups, 0));
        columns_to_bytes(vec![Arc::new(sums), Arc::new(counts)])
    }

    fn restore(&mut self, bytes: &[u8], groups: usize) -> Result<(), EngineError> {
        let types = [T::DATA_TYPE, DataType::Int64];
        let columns = columns_from_bytes(bytes, Some(groups), &types)?;
        self.sums = values::<T>(&columns[0])?;
        self.values = values::<Int64Type>(&columns[1])?;
        Ok(())
    }

    fn incremental(&self) -> bool {
        true
    }

    fn snapshot_groups(&mut self, groups: &[u32]) -> Result<Vec<u8>, EngineError> {
        let zero = T::Native::default();
        let sums = PrimitiveArray::<T>::from_iter_values(gather(&self.sums, groups, zero));
        let counts = Int64Array::from_iter_values(gather(&self.values, groups, 0));
        columns_to_bytes(vec![Arc::new(sums), Arc::new(counts)])
    }

    fn restore_groups(
        &mut self,
        bytes: &[u8],
        groups: &[u32],
        group_count: usize,
    ) -> Result<(), EngineError> {
        let types = [T::DATA_TYPE, DataType::Int64];
        let columns = columns_from_bytes(bytes, Some(groups.len()), &types)?;
        let zero = T::Native::default();
        scatter(
            &mut self.sums,
            groups,
            values::<T>(&columns[0])?,
            group_count,
            zero,
        );
        let counts = values::<Int64Type>(&columns[1])?;
        scatter(&mut self.values, groups, counts, group_count, 0);
        Ok(())
    }
}

/// AVG(x) of a DOUBLE (DataFusion casts other numbers to it first): the
/// sum over the count, NULL for a group without values.
#[derive(Default)]
pub(super) struct Average {
    sums: Sum<Float64Type>,
}

impl GroupedAccumulator for Average {
    fn update(&mut self, arguments: &[ArrayRef], rows: &Rows<'_>) -> Result<(), EngineError> {
        self.sums.update(arguments, rows)
    }

    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError> {
        let sums = &self.sums;
        let array: Float64Array = groups
            .iter()
            .map(|&g| {
                let g = g as usize;
                let count = sums.values.get(g).copied().unwrap_or(0);
                (count > 0).then(|| sums.sums[g] / count as f64)
            })
            .collect();
        Ok(vec![Arc::new(array)])
    }

    fn retain(&mut self, keep: &[bool]) {
        self.sums.retain(keep);
    }

    fn snapshot(&mut self, groups: usize) -> Result<Vec<u8>, EngineError> {
        self.sums.snapshot(groups)
    }

    fn restore(&mut self, bytes: &[u8], groups: usize) -> Result<(), EngineError> {
        self.sums.restore(bytes, groups)
    }

    fn incremental(&self) -> bool {
        true
    }

    fn snapshot_groups(&mut self, groups: &[u32]) -> Result<Vec<u8>, EngineError> {
        self.sums.snapshot_groups(groups)
    }

    fn restore_groups(
        &mut self,
        bytes: &[u8],
        groups: &[u32],
        group_count: usize,
    ) -> Result<(), EngineError> {
        self.sums.restore_groups(bytes, groups, group_count)
    }
}
