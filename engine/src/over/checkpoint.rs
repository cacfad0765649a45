//! An OVER aggregation's checkpoint: a version; the rows waiting for the
//! watermark (`TimeOrder`'s own sealed state); the bound of the last
//! sweep; the number of partitions and their keys (Arrow IPC, empty
//! without PARTITION BY); per partition its latest row's time and how
//! many rows its frame holds; the frames' rows, all partitions' in one
//! batch (their times, then the aggregates' distinct arguments), for a
//! bounded frame; and per aggregate its partitions' intermediate states,
//! for an unbounded one. A restored partition's accumulators take its
//! frame's rows in again or merge its states, so later rows' results are
//! those of a job that never stopped. When a partition last saw a row
//! (for the state TTL) is not kept: a restored partition counts as seen
//! at the restore.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Int64Type, Schema};
use datafusion::scalar::ScalarValue;
use timely::dataflow::operators::Capability;

use super::frame::PartitionState;
use super::{Over, State};
use crate::checkpoint::codec::{
    columns_from_bytes, columns_to_bytes, corrupt, new_state, open_state, seal, values,
};
use crate::checkpoint::encoding::{Reader, put_bytes, put_i64, put_u32};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::{Millis, Watermark};

const STATE_VERSION: u32 = 1;

/// The operator's state, as a checkpoint takes it.
pub(super) struct Checkpointed(pub(super) std::rc::Rc<std::cell::RefCell<Over>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let mut over = self.0.borrow_mut();
        let Over { order, state } = &mut *over;
        let state = state.as_mut().ok_or_else(|| {
            EngineError::Runtime("an OVER aggregation that failed to start".into())
        })?;
        let mut out = new_state(STATE_VERSION);
        put_bytes(&mut out, &order.snapshot()?);
        state.snapshot(&mut out)?;
        Ok(seal(out))
    }
}

impl Over {
    /// Takes what a snapshot held; capabilities are made anew from the
    /// operator's initial one.
    pub(super) fn restore(
        &mut self,
        bytes: &[u8],
        initial: &Capability<Watermark>,
    ) -> Result<(), EngineError> {
        let mut reader = open_state(bytes, STATE_VERSION, "an OVER aggregation")?;
        self.order.restore(reader.bytes()?, initial)?;
        let state = self.state.as_mut().ok_or_else(|| {
            EngineError::Runtime("an OVER aggregation that failed to start".into())
        })?;
        state.restore(&mut reader)?;
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes after an OVER aggregation state"));
        }
        Ok(())
    }
}

impl State {
    fn snapshot(&mut self, out: &mut Vec<u8>) -> Result<(), EngineError> {
        let spec = self.spec.clone();
        let bounded = spec.frame.is_bounded();
        let argument_types = self.argument_types()?;
        put_i64(out, self.swept_at);
        let mut partitions: Vec<(&Box<[u8]>, &mut PartitionState)> =
            self.partitions.iter_mut().collect();
        put_u32(out, partitions.len() as u32);
        let keys = match spec.partition.is_empty() {
            true => Vec::new(),
            false => {
                let parser = self.converter.parser();
                let keys = self
                    .converter
                    .convert_rows(partitions.iter().map(|(key, _)| parser.parse(key)))?;
                columns_to_bytes(keys)?
            }
        };
        put_bytes(out, &keys);
        let mut times: Vec<Millis> = Vec::new();
        let mut inputs: Vec<Vec<ArrayRef>> = vec![Vec::new(); argument_types.len()];
        let mut states: Vec<Vec<Vec<ScalarValue>>> = vec![Vec::new(); spec.aggregates.len()];
        for (_, partition) in &mut partitions {
            put_i64(out, partition.last_time);
            if bounded {
                let (frame_times, chunks) = partition.frame_rows();
                put_u32(out, frame_times.len() as u32);
                times.extend(frame_times);
                for chunk in chunks {
                    for (column, array) in inputs.iter_mut().zip(chunk) {
                        column.push(array);
                    }
                }
            } else {
                put_u32(out, 0);
                for (of_aggregate, state) in states
                    .iter_mut()
                    .zip(partition.take_states(&spec.aggregates)?)
                {
                    of_aggregate.push(state);
                }
            }
        }
        let frame = match times.is_empty() {
            true => Vec::new(),
            false => {
                let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(times))];
                for (pieces, data_type) in inputs.iter().zip(&argument_types) {
                    let pieces: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
                    columns.push(of_type(concat(&pieces)?, data_type)?);
                }
                columns_to_bytes(columns)?
            }
        };
        put_bytes(out, &frame);
        if !bounded {
            for (a, of_partitions) in states.into_iter().enumerate() {
                put_bytes(out, &self.states_to_bytes(a, of_partitions)?);
            }
        }
        Ok(())
    }

    /// One aggregate's states (one per partition) as columns, one per
    /// state field; nothing for no partitions.
    fn states_to_bytes(
        &self,
        aggregate: usize,
        of_partitions: Vec<Vec<ScalarValue>>,
    ) -> Result<Vec<u8>, EngineError> {
        if of_partitions.is_empty() {
            return Ok(Vec::new());
        }
        let types = self.state_types(aggregate)?;
        let mut fields: Vec<Vec<ScalarValue>> = vec![Vec::new(); types.len()];
        for state in of_partitions {
            if state.len() != types.len() {
                return Err(EngineError::Runtime(
                    "an OVER aggregate's state changed its number of fields".into(),
                ));
            }
            for (field, value) in fields.iter_mut().zip(state) {
                field.push(value);
            }
        }
        let columns = fields
            .into_iter()
            .zip(&types)
            .map(|(values, data_type)| of_type(ScalarValue::iter_to_array(values)?, data_type))
            .collect::<Result<Vec<_>, EngineError>>()?;
        columns_to_bytes(columns)
    }

    fn restore(&mut self, reader: &mut Reader<'_>) -> Result<(), EngineError> {
        let spec = self.spec.clone();
        let bounded = spec.frame.is_bounded();
        self.swept_at = reader.i64()?;
        let count = reader.u32()? as usize;
        let keys = self.restore_keys(count, reader.bytes()?)?;
        let mut lasts = Vec::new();
        let mut frame_rows = Vec::new();
        for _ in 0..count {
            lasts.push(reader.i64()?);
            frame_rows.push(reader.u32()? as usize);
        }
        let total: usize = frame_rows.iter().sum();
        if !bounded && total > 0 {
            return Err(corrupt("an unbounded OVER frame with rows"));
        }
        let argument_types = self.argument_types()?;
        let frame = reader.bytes()?;
        let (times, inputs) = match total {
            0 if frame.is_empty() => (Vec::new(), Vec::new()),
            0 => return Err(corrupt("OVER frame rows of no partition")),
            _ => {
                let mut types = vec![DataType::Int64];
                types.extend(argument_types.iter().cloned());
                let mut columns = columns_from_bytes(frame, Some(total), &types)?;
                let times = values::<Int64Type>(&columns.remove(0))?;
                (times, columns)
            }
        };
        let mut states: Vec<Vec<ArrayRef>> = Vec::new();
        if !bounded {
            for a in 0..spec.aggregates.len() {
                let bytes = reader.bytes()?;
                states.push(match count {
                    0 if bytes.is_empty() => Vec::new(),
                    0 => return Err(corrupt("OVER states of no partition")),
                    _ => columns_from_bytes(bytes, Some(count), &self.state_types(a)?)?,
                });
            }
        }
        let mut at = 0;
        for (p, key) in keys.into_iter().enumerate() {
            let rows = frame_rows[p];
            let partition_inputs: Vec<ArrayRef> =
                inputs.iter().map(|column| column.slice(at, rows)).collect();
            let partition_states: Vec<Vec<ArrayRef>> = states
                .iter()
                .map(|fields| fields.iter().map(|field| field.slice(p, 1)).collect())
                .collect();
            let partition = PartitionState::restored(
                &spec.aggregates,
                &mut self.arguments,
                spec.frame,
                lasts[p],
                times[at..at + rows].to_vec(),
                partition_inputs,
                &partition_states,
            )?;
            at += rows;
            if self.partitions.insert(key, partition).is_some() {
                return Err(corrupt("an OVER aggregation has a partition twice"));
            }
        }
        JobContext::add(&self.context.state_rows, count);
        Ok(())
    }

    fn restore_keys(&self, count: usize, bytes: &[u8]) -> Result<Vec<Box<[u8]>>, EngineError> {
        if self.spec.partition.is_empty() {
            if count > 1 || !bytes.is_empty() {
                return Err(corrupt("several OVER partitions without PARTITION BY"));
            }
            return Ok(vec![Box::from(&[][..]); count]);
        }
        let fields = self.spec.output_schema.fields();
        let types: Vec<DataType> = self
            .spec
            .partition
            .iter()
            .map(|&i| fields[i].data_type().clone())
            .collect();
        let columns = columns_from_bytes(bytes, Some(count), &types)?;
        let rows = self.converter.convert_columns(&columns)?;
        Ok(rows.iter().map(|row| Box::from(row.data())).collect())
    }

    /// The types of the aggregates' distinct arguments, over the input's
    /// columns (the output's first ones).
    fn argument_types(&self) -> Result<Vec<DataType>, EngineError> {
        let fields = self.spec.output_schema.fields();
        let inputs = fields.len().saturating_sub(self.spec.aggregates.len());
        let schema = Schema::new(fields[..inputs].to_vec());
        self.inputs
            .iter()
            .map(|expr| Ok(expr.data_type(&schema)?))
            .collect()
    }

    /// The types of an aggregate's state fields, from an accumulator that
    /// has seen nothing: `merge_batch` downcasts without checking.
    fn state_types(&self, aggregate: usize) -> Result<Vec<DataType>, EngineError> {
        let aggregate = self
            .spec
            .aggregates
            .get(aggregate)
            .ok_or_else(|| EngineError::Runtime("no such OVER aggregate".into()))?;
        Ok(aggregate
            .create_accumulator()?
            .state()?
            .iter()
            .map(ScalarValue::data_type)
            .collect())
    }
}

/// `array` as `data_type`: an expression or accumulator may answer in a
/// type of the family, and a restore checks the declared one.
fn of_type(array: ArrayRef, data_type: &DataType) -> Result<ArrayRef, EngineError> {
    Ok(match array.data_type() == data_type {
        true => array,
        false => cast(&array, data_type)?,
    })
}
