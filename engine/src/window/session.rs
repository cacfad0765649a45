//! SESSION windows: per key, rows at most the gap apart share a window that
//! ends `gap` after its last row. A row opens `[ts, ts + gap)`; windows of
//! the same key that overlap or touch merge (as Flink's `TimeWindow::
//! intersects` merges them: a row exactly the gap after a session's last
//! row joins it), their accumulators merged through DataFusion's
//! `state`/`merge_batch`. A session fires once the watermark passes its
//! end, since no later row can reach back into it.

use crate::fast_hash::HashMap;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::expressions::Column;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{ParallelizationContract, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::checkpoint::codec::{
    columns_from_bytes, columns_to_bytes, corrupt, new_state, open_state, seal, values,
};
use crate::checkpoint::encoding::put_bytes;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::lateness::{drop_late, event_times};
use crate::runtime::exchange;
use crate::time::{Millis, Watermark};
use crate::window::kind::WindowKind;
use crate::window::state::{AggregateInputs, WindowAggregate};

struct Session {
    start: Millis,
    end: Millis,
    accumulators: Vec<Box<dyn Accumulator>>,
}

/// The sessions of every key seen by this worker.
pub struct Sessions {
    spec: Arc<WindowAggregate>,
    gap: Millis,
    key_columns: Vec<usize>,
    converter: RowConverter,
    /// Per aggregate, the types of its state columns, which a checkpoint
    /// holds.
    state_types: Vec<Vec<DataType>>,
    /// Keyed by the key columns in row format; `None` without keys.
    open: HashMap<Option<OwnedRow>, Vec<Session>>,
}

impl Sessions {
    pub fn new(spec: Arc<WindowAggregate>) -> Result<Self, EngineError> {
        let WindowKind::Session { gap } = spec.window else {
            return Err(EngineError::Plan(
                "a session aggregate needs a SESSION window".into(),
            ));
        };
        let key_columns = spec
            .keys
            .iter()
            .map(|(expr, name)| {
                expr.downcast_ref::<Column>()
                    .map(Column::index)
                    .ok_or_else(|| {
                        EngineError::Plan(format!("session key {name} must be a column"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let fields = spec
            .key_fields()?
            .into_iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        let state_types = spec
            .aggregates
            .iter()
            .map(|a| {
                Ok(a.state_fields()?
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect())
            })
            .collect::<Result<_, EngineError>>()?;
        Ok(Sessions {
            converter: RowConverter::new(fields)?,
            spec,
            gap,
            key_columns,
            state_types,
            open: HashMap::default(),
        })
    }

    pub fn key_columns(&self) -> &[usize] {
        &self.key_columns
    }

    /// Adds on-time rows (`times` are their event times).
    pub fn absorb(&mut self, batch: &RecordBatch, times: &[Millis]) -> Result<(), EngineError> {
        let keys: Vec<ArrayRef> = self
            .key_columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let key_rows = if keys.is_empty() {
            None
        } else {
            Some(self.converter.convert_columns(&keys)?)
        };
        let AggregateInputs { args, filters } = self.spec.evaluate_inputs(batch)?;
        for (row, &ts) in times.iter().enumerate() {
            let key = key_rows.as_ref().map(|rows| rows.row(row).owned());
            let sessions = self.open.entry(key).or_default();
            let index = merge_into(sessions, ts, ts + self.gap, &self.spec)?;
            let session = &mut sessions[index];
            for (a, accumulator) in session.accumulators.iter_mut().enumerate() {
                let included = match &filters[a] {
                    Some(mask) => mask.is_valid(row) && mask.value(row),
                    None => true,
                };
                if included {
                    let values: Vec<ArrayRef> =
                        args[a].iter().map(|array| array.slice(row, 1)).collect();
                    accumulator.update_batch(&values)?;
                }
            }
        }
        Ok(())
    }

    /// The earliest time a result may still be emitted at.
    pub fn earliest_end(&self) -> Option<Millis> {
        self.open.values().flatten().map(|s| s.end - 1).min()
    }

    /// Removes and returns the sessions that end before `watermark` (all of
    /// them at the end of input), as one batch, with the time the earliest
    /// of them may be emitted at. A session ending at the watermark stays:
    /// a row at the watermark is on time and touches it, so would join it.
    pub fn fire(
        &mut self,
        watermark: Option<Watermark>,
    ) -> Result<Option<(Millis, RecordBatch)>, EngineError> {
        let mut keys = Vec::new();
        let mut starts = Vec::new();
        let mut ends = Vec::new();
        let mut values: Vec<Vec<ScalarValue>> = vec![Vec::new(); self.spec.aggregates.len()];
        for (key, sessions) in self.open.iter_mut() {
            let mut i = 0;
            while i < sessions.len() {
                if watermark.is_some_and(|w| w <= sessions[i].end) {
                    i += 1;
                    continue;
                }
                let mut session = sessions.swap_remove(i);
                keys.push(key.clone());
                starts.push(session.start);
                ends.push(session.end);
                for (a, accumulator) in session.accumulators.iter_mut().enumerate() {
                    values[a].push(accumulator.evaluate()?);
                }
            }
        }
        self.open.retain(|_, sessions| !sessions.is_empty());
        let Some(&first_end) = ends.iter().min() else {
            return Ok(None);
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(starts)),
            Arc::new(TimestampMillisecondArray::from(ends)),
        ];
        if !self.key_columns.is_empty() {
            columns.extend(
                self.converter
                    .convert_rows(keys.iter().flatten().map(OwnedRow::row))?,
            );
        }
        for (a, scalars) in values.into_iter().enumerate() {
            let data_type = self.spec.aggregates[a].field().data_type().clone();
            let array = if scalars.is_empty() {
                datafusion::arrow::array::new_empty_array(&data_type)
            } else {
                ScalarValue::iter_to_array(scalars)?
            };
            columns.push(array);
        }
        let batch = RecordBatch::try_new(self.spec.output_schema()?, columns)?;
        Ok(Some((first_end - 1, batch)))
    }
}

/// Open sessions as a checkpoint takes them, sealed: a version, then one
/// Arrow IPC batch with a row per session: its start and end (Int64), its
/// key columns, and each aggregate's state columns. The operator's one
/// capability is not written: it sits at the earliest session's end - 1,
/// which the restored sessions give again.
const STATE_VERSION: u32 = 1;

impl Sessions {
    /// The accumulators give their states only by consuming them, so each
    /// session's are rebuilt from what they gave.
    fn snapshot(&mut self) -> Result<Vec<u8>, EngineError> {
        let mut keys = Vec::new();
        let mut starts = Vec::new();
        let mut ends = Vec::new();
        let mut states: Vec<Vec<ScalarValue>> =
            vec![Vec::new(); self.state_types.iter().map(Vec::len).sum()];
        for (key, sessions) in self.open.iter_mut() {
            for session in sessions.iter_mut() {
                keys.push(key.clone());
                starts.push(session.start);
                ends.push(session.end);
                let mut column = states.iter_mut();
                for (a, accumulator) in session.accumulators.iter_mut().enumerate() {
                    let state = accumulator.state()?;
                    *accumulator = rebuilt(&self.spec, a, &scalar_arrays(&state)?)?;
                    for value in state {
                        column
                            .next()
                            .ok_or_else(|| wrong_state_width(a))?
                            .push(value);
                    }
                }
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(starts)),
            Arc::new(Int64Array::from(ends)),
        ];
        if !self.key_columns.is_empty() {
            columns.extend(
                self.converter
                    .convert_rows(keys.iter().flatten().map(OwnedRow::row))?,
            );
        }
        for (scalars, data_type) in states.into_iter().zip(self.state_types.iter().flatten()) {
            columns.push(state_column(scalars, data_type)?);
        }
        let mut out = new_state(STATE_VERSION);
        put_bytes(&mut out, &columns_to_bytes(columns)?);
        Ok(seal(out))
    }

    /// Opens the sessions a snapshot held and returns the earliest time a
    /// result may still be emitted at, which the operator holds.
    fn restore(&mut self, bytes: &[u8]) -> Result<Option<Millis>, EngineError> {
        let mut reader = open_state(bytes, STATE_VERSION, "a session")?;
        let columns = columns_from_bytes(reader.bytes()?, None, &self.snapshot_types()?)?;
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes after a session state"));
        }
        let (bounds, rest) = columns.split_at(2);
        let (keys, states) = rest.split_at(self.key_columns.len());
        let starts = values::<Int64Type>(&bounds[0])?;
        let ends = values::<Int64Type>(&bounds[1])?;
        let key_rows = (!keys.is_empty())
            .then(|| self.converter.convert_columns(keys))
            .transpose()?;
        for (row, (&start, &end)) in starts.iter().zip(&ends).enumerate() {
            if start > end {
                return Err(corrupt("a session ends before it starts"));
            }
            let accumulators = self.restored_accumulators(states, row)?;
            let key = key_rows.as_ref().map(|rows| rows.row(row).owned());
            self.open.entry(key).or_default().push(Session {
                start,
                end,
                accumulators,
            });
        }
        Ok(self.earliest_end())
    }

    /// The accumulators of the session in row `row` of `states`.
    fn restored_accumulators(
        &self,
        states: &[ArrayRef],
        row: usize,
    ) -> Result<Vec<Box<dyn Accumulator>>, EngineError> {
        let mut columns = states.iter();
        (0..self.spec.aggregates.len())
            .map(|a| {
                let state: Vec<ArrayRef> = columns
                    .by_ref()
                    .take(self.state_types[a].len())
                    .map(|column| column.slice(row, 1))
                    .collect();
                rebuilt(&self.spec, a, &state)
            })
            .collect()
    }

    /// start, end, the keys' types, then every aggregate's state types.
    fn snapshot_types(&self) -> Result<Vec<DataType>, EngineError> {
        let mut types = vec![DataType::Int64, DataType::Int64];
        types.extend(
            self.spec
                .key_fields()?
                .iter()
                .map(|f| f.data_type().clone()),
        );
        types.extend(self.state_types.iter().flatten().cloned());
        Ok(types)
    }
}

/// A fresh accumulator of aggregate `a` holding `state`.
fn rebuilt(
    spec: &WindowAggregate,
    a: usize,
    state: &[ArrayRef],
) -> Result<Box<dyn Accumulator>, EngineError> {
    let mut accumulator = spec.aggregates[a].create_accumulator()?;
    accumulator.merge_batch(state)?;
    Ok(accumulator)
}

fn scalar_arrays(scalars: &[ScalarValue]) -> Result<Vec<ArrayRef>, EngineError> {
    Ok(scalars
        .iter()
        .map(ScalarValue::to_array)
        .collect::<Result<_, _>>()?)
}

/// One state column of every session, of the type the aggregate declares.
fn state_column(scalars: Vec<ScalarValue>, data_type: &DataType) -> Result<ArrayRef, EngineError> {
    if scalars.is_empty() {
        return Ok(datafusion::arrow::array::new_empty_array(data_type));
    }
    let array = ScalarValue::iter_to_array(scalars)?;
    if !array.data_type().equals_datatype(data_type) {
        return Err(EngineError::Runtime(format!(
            "a session accumulator's state is {}, not the declared {data_type}",
            array.data_type()
        )));
    }
    Ok(array)
}

fn wrong_state_width(aggregate: usize) -> EngineError {
    EngineError::Runtime(format!(
        "session aggregate {aggregate} gave more state values than it declares"
    ))
}

/// Merges `[start, end)` with every session of one key that overlaps or
/// touches it and returns the index of the session that now covers it.
fn merge_into(
    sessions: &mut Vec<Session>,
    start: Millis,
    end: Millis,
    spec: &WindowAggregate,
) -> Result<usize, EngineError> {
    let overlapping: Vec<usize> = (0..sessions.len())
        .filter(|&i| sessions[i].start <= end && start <= sessions[i].end)
        .collect();
    let Some(&first) = overlapping.first() else {
        let accumulators = spec
            .aggregates
            .iter()
            .map(|a| a.create_accumulator())
            .collect::<Result<Vec<_>, _>>()?;
        sessions.push(Session {
            start,
            end,
            accumulators,
        });
        return Ok(sessions.len() - 1);
    };
    // Later indices first, so that removing them keeps `first` valid.
    for &i in overlapping[1..].iter().rev() {
        let mut other = sessions.swap_remove(i);
        let target = &mut sessions[first];
        target.start = target.start.min(other.start);
        target.end = target.end.max(other.end);
        for (into, from) in target
            .accumulators
            .iter_mut()
            .zip(other.accumulators.iter_mut())
        {
            let state: Vec<ArrayRef> = from
                .state()?
                .iter()
                .map(|v| v.to_array())
                .collect::<Result<_, _>>()?;
            into.merge_batch(&state)?;
        }
    }
    let target = &mut sessions[first];
    target.start = target.start.min(start);
    target.end = target.end.max(end);
    Ok(first)
}

/// A session aggregation over `input`: rows go to the worker owning their
/// key, which keeps that key's sessions.
pub fn session_aggregate<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<WindowAggregate>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let sessions = Sessions::new(spec.clone())?;
    if input.scope().peers() == 1 {
        return Ok(operator(input, Pipeline, sessions, spec, context));
    }
    let key_columns = sessions.key_columns().to_vec();
    Ok(operator(
        input,
        exchange::by_key(key_columns),
        sessions,
        spec,
        context,
    ))
}

/// The open sessions, as a checkpoint takes them.
struct Checkpointed(Rc<RefCell<Sessions>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow_mut().snapshot()
    }
}

/// Registers the sessions for checkpoints and restores them if the job
/// resumes; returns the capability the restored sessions need, made anew
/// from the operator's initial one.
fn checkpointed(
    sessions: &Rc<RefCell<Sessions>>,
    initial: &Capability<Watermark>,
) -> Result<Option<Capability<Watermark>>, EngineError> {
    let state = Rc::new(Checkpointed(sessions.clone()));
    let Some(bytes) = crate::checkpoint::worker::register("SessionAggregate", state) else {
        return Ok(None);
    };
    let Some(earliest) = sessions.borrow_mut().restore(&bytes)? else {
        return Ok(None);
    };
    initial
        .try_delayed(&earliest)
        .map(Some)
        .ok_or_else(|| corrupt("a session ends before the operator's first time"))
}

fn operator<'scope, P: ParallelizationContract<Watermark, Batch>>(
    input: Stream<'scope, Watermark, Batch>,
    pact: P,
    sessions: Sessions,
    spec: Arc<WindowAggregate>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    let sessions = Rc::new(RefCell::new(sessions));
    input.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
        pact,
        "SessionAggregate",
        move |initial, _info| {
            // One capability at the earliest time a result may go out at.
            let mut held: Option<Capability<Watermark>> = checkpointed(&sessions, &initial)
                .unwrap_or_else(|error| {
                    context.fail(error);
                    None
                });
            move |(input, frontier), output| {
                let mut sessions = sessions.borrow_mut();
                input.for_each(|cap, data| {
                    let Some(batch) = data.take() else { return };
                    let time = cap.least().copied().unwrap_or(Watermark::MIN);
                    let result = event_times(&spec.time, &batch)
                        .and_then(|times| drop_late(batch, times, time, &context))
                        .and_then(|(on_time, times)| sessions.absorb(&on_time, &times));
                    if let Err(error) = result {
                        context.fail(error);
                    }
                    if held.as_ref().is_none_or(|h| *h.time() > time) {
                        held = cap.retain_least(0);
                    }
                });
                let watermark = frontier.frontier().as_option().copied();
                match sessions.fire(watermark) {
                    Ok(Some((at, batch))) => {
                        if let Some(cap) = held.as_ref() {
                            let at = at.max(*cap.time());
                            output
                                .session(&cap.delayed(&at))
                                .give_container(&mut Batch::new(batch));
                        }
                    }
                    Ok(None) => {}
                    Err(error) => context.fail(error),
                }
                match (sessions.earliest_end(), held.as_mut()) {
                    (Some(earliest), Some(cap)) if earliest > *cap.time() => {
                        cap.downgrade(&earliest)
                    }
                    (None, _) => held = None,
                    _ => {}
                }
            }
        },
    )
}
