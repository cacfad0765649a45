//! Any DataFusion aggregate, as one `Accumulator` per group: a batch's rows
//! are sorted by group and each group's taken once per batch.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array, new_empty_array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::scalar::ScalarValue;

use super::{GroupedAccumulator, Rows, retain_vec};
use crate::checkpoint::codec::{columns_from_bytes, columns_to_bytes, corrupt};
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

    fn fresh(&self) -> Result<Box<dyn Accumulator>, EngineError> {
        Ok(if self.takes_back {
            self.aggregate.create_sliding_accumulator()?
        } else {
            self.aggregate.create_accumulator()?
        })
    }

    fn accumulator(&mut self, group: usize) -> Result<&mut Box<dyn Accumulator>, EngineError> {
        if self.accumulators[group].is_none() {
            self.accumulators[group] = Some(self.fresh()?);
        }
        self.accumulators[group]
            .as_mut()
            .ok_or_else(|| EngineError::Runtime("an accumulator went missing".into()))
    }

    /// Each group's intermediate state (DataFusion's, as its multi-phase
    /// aggregation passes between stages), one array per state field.
    /// Taking it consumes the accumulators' state.
    fn take_states(&mut self, groups: usize) -> Result<Vec<ArrayRef>, EngineError> {
        if self.accumulators.len() < groups {
            self.accumulators.resize_with(groups, || None);
        }
        let mut fields: Vec<Vec<ScalarValue>> = Vec::new();
        for group in 0..groups {
            let state = self.accumulator(group)?.state()?;
            fields.resize_with(state.len(), Vec::new);
            for (field, value) in fields.iter_mut().zip(state) {
                field.push(value);
            }
        }
        fields
            .into_iter()
            .map(|values| Ok(ScalarValue::iter_to_array(values)?))
            .collect()
    }

    /// One accumulator per group, merged from `states`.
    fn load(&mut self, states: &[ArrayRef], groups: usize) -> Result<(), EngineError> {
        let mut accumulators = Vec::with_capacity(groups);
        for group in 0..groups {
            let mut accumulator = self.fresh()?;
            let row: Vec<ArrayRef> = states.iter().map(|s| s.slice(group, 1)).collect();
            accumulator.merge_batch(&row)?;
            accumulators.push(Some(accumulator));
        }
        self.accumulators = accumulators;
        Ok(())
    }

    /// The types of the state fields, from an accumulator that has seen
    /// nothing: `merge_batch` downcasts without checking.
    fn state_types(&self) -> Result<Vec<DataType>, EngineError> {
        Ok(self
            .fresh()?
            .state()?
            .iter()
            .map(ScalarValue::data_type)
            .collect())
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

    /// Taking DataFusion's state consumes it, so every group is merged
    /// back from what it gave, as a restore would.
    fn snapshot(&mut self, groups: usize) -> Result<Vec<u8>, EngineError> {
        if let Some(refusal) = self.checkpoint_refusal() {
            return Err(EngineError::Plan(refusal));
        }
        if groups == 0 {
            return Ok(Vec::new());
        }
        let states = self.take_states(groups)?;
        self.load(&states, groups)?;
        columns_to_bytes(states)
    }

    fn restore(&mut self, bytes: &[u8], groups: usize) -> Result<(), EngineError> {
        if groups == 0 {
            if !bytes.is_empty() {
                return Err(corrupt("state for groups there are not"));
            }
            self.accumulators.clear();
            return Ok(());
        }
        let states = columns_from_bytes(bytes, Some(groups), &self.state_types()?)?;
        self.load(&states, groups)
    }

    /// DataFusion's sliding COUNT(DISTINCT) states only its distinct
    /// values, not how often each came, so a restored one would lose a
    /// value at the first retraction of it.
    fn checkpoint_refusal(&self) -> Option<String> {
        (self.takes_back && self.aggregate.is_distinct()).then(|| {
            format!(
                "checkpoints do not cover {} over a changelog yet",
                self.aggregate.name()
            )
        })
    }
}
