//! Any DataFusion aggregate, as one `Accumulator` per group: a batch's rows
//! are sorted by group and each group's taken once per batch.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array, new_empty_array};
use datafusion::arrow::compute::{cast, take};
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::scalar::ScalarValue;

use super::{GroupedAccumulator, Rows, retain_vec};
use crate::error::EngineError;

pub(super) struct PerGroup {
    aggregate: Arc<AggregateFunctionExpr>,
    /// Sliding accumulators, which can take rows back.
    takes_back: bool,
    accumulators: Vec<Option<Box<dyn Accumulator>>>,
}

impl PerGroup {
    pub(super) fn new(aggregate: Arc<AggregateFunctionExpr>, takes_back: bool) -> Self {
        Self {
            aggregate,
            takes_back,
            accumulators: Vec::new(),
        }
    }

    fn accumulator(&mut self, group: usize) -> Result<&mut Box<dyn Accumulator>, EngineError> {
        let slot = &mut self.accumulators[group];
        if slot.is_none() {
            *slot = Some(if self.takes_back {
                self.aggregate.create_sliding_accumulator()?
            } else {
                self.aggregate.create_accumulator()?
            });
        }
        slot.as_mut()
            .ok_or_else(|| EngineError::Runtime("an accumulator went missing".into()))
    }
}

impl GroupedAccumulator for PerGroup {
    fn update(&mut self, arguments: &[ArrayRef], rows: &Rows<'_>) -> Result<(), EngineError> {
        if self.accumulators.len() < rows.group_count {
            self.accumulators.resize_with(rows.group_count, || None);
        }
        // (group, taken back, row): each group's additions, then retractions.
        let mut order: Vec<(u32, bool, u32)> = Vec::with_capacity(rows.groups.len());
        rows.each(|row, group, diff| order.push((group as u32, diff < 0, row as u32)));
        order.sort_unstable();
        for run in order.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (group, taken_back, _) = run[0];
            let indices = UInt32Array::from_iter_values(run.iter().map(|r| r.2));
            let taken = arguments
                .iter()
                .map(|a| take(a.as_ref(), &indices, None))
                .collect::<Result<Vec<_>, _>>()?;
            let accumulator = self.accumulator(group as usize)?;
            if taken_back {
                accumulator.retract_batch(&taken)?;
            } else {
                accumulator.update_batch(&taken)?;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError> {
        let data_type = self.aggregate.field().data_type().clone();
        let Some(&last) = groups.iter().max() else {
            return Ok(vec![new_empty_array(&data_type)]);
        };
        if self.accumulators.len() <= last as usize {
            self.accumulators.resize_with(last as usize + 1, || None);
        }
        let values = groups
            .iter()
            .map(|&g| self.accumulator(g as usize)?.evaluate().map_err(Into::into))
            .collect::<Result<Vec<ScalarValue>, EngineError>>()?;
        let array = ScalarValue::iter_to_array(values)?;
        // An accumulator may answer in a type of the result's family; the
        // operator sets results of earlier and later batches side by side.
        Ok(vec![if array.data_type() == &data_type {
            array
        } else {
            cast(&array, &data_type)?
        }])
    }

    fn retain(&mut self, keep: &[bool]) {
        retain_vec(&mut self.accumulators, keep);
    }
}
