//! Window aggregation on DataFusion's vectorised group-by machinery: a
//! `GroupValues` hash table and one `GroupsAccumulator` per aggregate, per
//! open window.
//!
//! With several workers an aggregation runs in two stages, as Flink's
//! local-global aggregation does: every worker pre-aggregates what it reads
//! (`Stage::Partial`, no exchange), and only the per-key partial states are
//! exchanged to the worker that owns the key (`Stage::Final`). A window with
//! millions of rows and thousands of keys then moves thousands of rows.

use std::collections::BTreeMap;

use crate::fast_hash::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use crate::error::EngineError;
use crate::time::Millis;
use crate::window::kind::{Window, WindowKind};

/// Per aggregate of a batch: its argument arrays and its `FILTER` mask.
pub struct AggregateInputs {
    pub args: Vec<Vec<ArrayRef>>,
    pub filters: Vec<Option<BooleanArray>>,
}

/// What a window aggregation computes, independent of how it is staged.
pub struct WindowAggregate {
    pub window: WindowKind,
    /// Event time in milliseconds: an `Int64` or a `Timestamp` column.
    pub time: Arc<dyn PhysicalExpr>,
    pub keys: Vec<(Arc<dyn PhysicalExpr>, String)>,
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// One per aggregate: `FILTER (WHERE ...)`.
    pub filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    pub input_schema: SchemaRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Raw rows in, final values out: one worker.
    Complete,
    /// Raw rows in, partial states out, keyed for the exchange.
    Partial,
    /// Partial states in, final values out.
    Final,
}

pub const WINDOW_START: &str = "window_start";
pub const WINDOW_END: &str = "window_end";

impl WindowAggregate {
    pub fn key_fields(&self) -> Result<Vec<Field>, EngineError> {
        self.keys
            .iter()
            .map(|(expr, name)| {
                Ok(Field::new(
                    name,
                    expr.data_type(&self.input_schema)?,
                    expr.nullable(&self.input_schema)?,
                ))
            })
            .collect()
    }

    /// `window_start, window_end, keys..., aggregates...`, windows as TIMESTAMP(3).
    pub fn output_schema(&self) -> Result<SchemaRef, EngineError> {
        let mut fields = window_fields(DataType::Timestamp(TimeUnit::Millisecond, None));
        fields.extend(self.key_fields()?);
        fields.extend(self.aggregates.iter().map(|a| a.field().as_ref().clone()));
        Ok(Arc::new(Schema::new(fields)))
    }

    /// What the partial stage sends: `window_start, window_end, keys..., states...`.
    pub fn state_schema(&self) -> Result<SchemaRef, EngineError> {
        let mut fields = window_fields(DataType::Int64);
        fields.extend(self.key_fields()?);
        for aggregate in &self.aggregates {
            fields.extend(aggregate.state_fields()?.iter().map(|f| f.as_ref().clone()));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Per aggregate, its argument arrays and its `FILTER (WHERE ...)` mask,
    /// evaluated over a raw input batch.
    pub fn evaluate_inputs(&self, batch: &RecordBatch) -> Result<AggregateInputs, EngineError> {
        let rows = batch.num_rows();
        let mut inputs = Vec::with_capacity(self.aggregates.len());
        let mut filters = Vec::with_capacity(self.aggregates.len());
        for (i, aggregate) in self.aggregates.iter().enumerate() {
            let args = aggregate
                .expressions()
                .iter()
                .map(|expr| Ok(expr.evaluate(batch)?.into_array(rows)?))
                .collect::<Result<Vec<_>, EngineError>>()?;
            inputs.push(args);
            let filter = match self.filters.get(i).and_then(Option::as_ref) {
                Some(expr) => {
                    let array = expr.evaluate(batch)?.into_array(rows)?;
                    let mask = array.as_boolean_opt().cloned().ok_or_else(|| {
                        EngineError::Plan("FILTER (WHERE ...) must be a boolean expression".into())
                    })?;
                    Some(mask)
                }
                None => None,
            };
            filters.push(filter);
        }
        Ok(AggregateInputs {
            args: inputs,
            filters,
        })
    }

    /// Key columns of the state schema, which the exchange hashes.
    pub fn state_key_columns(&self) -> Vec<usize> {
        (2..2 + self.keys.len()).collect()
    }
}

fn window_fields(data_type: DataType) -> Vec<Field> {
    vec![
        Field::new(WINDOW_START, data_type.clone(), false),
        Field::new(WINDOW_END, data_type, false),
    ]
}

/// The groups of one open window.
struct WindowGroups {
    values: GroupKeys,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
}

/// Group ids for rows. DataFusion's `GroupValues` needs at least one key
/// column; a window aggregate without keys has one group per window.
enum GroupKeys {
    Keyed(Box<dyn GroupValues>),
    Single { seen: bool },
}

impl GroupKeys {
    fn new(key_schema: &SchemaRef) -> Result<Self, EngineError> {
        Ok(if key_schema.fields().is_empty() {
            GroupKeys::Single { seen: false }
        } else {
            GroupKeys::Keyed(new_group_values(key_schema.clone(), &GroupOrdering::None)?)
        })
    }

    fn intern(
        &mut self,
        keys: &[ArrayRef],
        rows: usize,
        ids: &mut Vec<usize>,
    ) -> Result<(), EngineError> {
        match self {
            GroupKeys::Keyed(values) => values.intern(keys, ids)?,
            GroupKeys::Single { seen } => {
                *seen |= rows > 0;
                ids.clear();
                ids.resize(rows, 0);
            }
        }
        Ok(())
    }

    fn len(&self) -> usize {
        match self {
            GroupKeys::Keyed(values) => values.len(),
            GroupKeys::Single { seen } => usize::from(*seen),
        }
    }

    fn emit(&mut self) -> Result<Vec<ArrayRef>, EngineError> {
        match self {
            GroupKeys::Keyed(values) => Ok(values.emit(EmitTo::All)?),
            GroupKeys::Single { .. } => Ok(Vec::new()),
        }
    }
}

/// One stage of a window aggregation: absorbs batches and fires windows.
pub struct WindowAggregator {
    spec: Arc<WindowAggregate>,
    stage: Stage,
    key_schema: SchemaRef,
    output_schema: SchemaRef,
    /// Per aggregate, the range of its state columns in a state batch.
    state_ranges: Vec<std::ops::Range<usize>>,
    windows: BTreeMap<(Millis, Millis), WindowGroups>,
    group_ids: Vec<usize>,
}

/// One input batch, evaluated once: the columns every window update needs.
struct Evaluated {
    rows: usize,
    times: Vec<Millis>,
    keys: Vec<ArrayRef>,
    /// Per aggregate: its argument arrays (raw stages) or state arrays (final).
    inputs: Vec<Vec<ArrayRef>>,
    filters: Vec<Option<BooleanArray>>,
}

impl WindowAggregator {
    pub fn new(spec: Arc<WindowAggregate>, stage: Stage) -> Result<Self, EngineError> {
        let key_schema = Arc::new(Schema::new(spec.key_fields()?));
        let output_schema = match stage {
            Stage::Partial => spec.state_schema()?,
            Stage::Complete | Stage::Final => spec.output_schema()?,
        };
        let mut state_ranges = Vec::with_capacity(spec.aggregates.len());
        let mut next = 2 + spec.keys.len();
        for aggregate in &spec.aggregates {
            let width = aggregate.state_fields()?.len();
            state_ranges.push(next..next + width);
            next += width;
        }
        Ok(WindowAggregator {
            spec,
            stage,
            key_schema,
            output_schema,
            state_ranges,
            windows: BTreeMap::new(),
            group_ids: Vec::new(),
        })
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Event times of a raw batch, for the caller's lateness check.
    pub fn event_times(&self, batch: &RecordBatch) -> Result<Vec<Millis>, EngineError> {
        crate::lateness::event_times(&self.spec.time, batch)
    }

    /// Adds a batch and returns the windows it opened. Raw batches must
    /// already be free of late rows; `times` are their event times.
    /// For the final stage `times` is ignored: windows come from the states.
    pub fn absorb(
        &mut self,
        batch: &RecordBatch,
        times: Vec<Millis>,
    ) -> Result<Vec<Window>, EngineError> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        if self.stage == Stage::Final {
            return self.merge_states(batch);
        }
        let evaluated = self.evaluate(batch, times)?;
        let mut opened = Vec::new();
        let kind = self.spec.window;
        for nth in 0..kind.windows_per_row() {
            let assigned: Vec<Option<Window>> = evaluated
                .times
                .iter()
                .map(|&ts| {
                    kind.has_nth_window(ts, nth)
                        .then(|| kind.nth_window(ts, nth))
                })
                .collect();
            self.update_windows(&evaluated, &assigned, &mut opened, false)?;
        }
        Ok(opened)
    }

    /// Emits and forgets a window's groups.
    pub fn fire(&mut self, window: Window) -> Result<Option<RecordBatch>, EngineError> {
        let Some(mut groups) = self.windows.remove(&(window.end, window.start)) else {
            return Ok(None);
        };
        let rows = groups.values.len();
        if rows == 0 {
            return Ok(None);
        }
        let mut columns: Vec<ArrayRef> = match self.stage {
            Stage::Partial => vec![
                Arc::new(Int64Array::from_value(window.start, rows)),
                Arc::new(Int64Array::from_value(window.end, rows)),
            ],
            Stage::Complete | Stage::Final => vec![
                Arc::new(TimestampMillisecondArray::from_value(window.start, rows)),
                Arc::new(TimestampMillisecondArray::from_value(window.end, rows)),
            ],
        };
        columns.extend(groups.values.emit()?);
        for accumulator in &mut groups.accumulators {
            match self.stage {
                Stage::Partial => columns.extend(accumulator.state(EmitTo::All)?),
                Stage::Complete | Stage::Final => columns.push(accumulator.evaluate(EmitTo::All)?),
            }
        }
        Ok(Some(RecordBatch::try_new(
            self.output_schema.clone(),
            columns,
        )?))
    }

    /// The open windows as state batches (`state_schema`), Arrow IPC. The
    /// accumulators give their states only by emitting them, so each
    /// window is merged back from what it gave.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, EngineError> {
        let (schema, batches) = self.snapshot_batches()?;
        Ok(crate::checkpoint::codec::seal(
            crate::checkpoint::encoding::batches_to_bytes(&schema, &batches)?,
        ))
    }

    /// The open windows as state batches, before they are encoded.
    pub fn snapshot_batches(
        &mut self,
    ) -> Result<(datafusion::arrow::datatypes::SchemaRef, Vec<RecordBatch>), EngineError> {
        let schema = self.spec.state_schema()?;
        let windows = std::mem::take(&mut self.windows);
        let mut batches = Vec::with_capacity(windows.len());
        for ((end, start), mut groups) in windows {
            let rows = groups.values.len();
            if rows == 0 {
                continue;
            }
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_value(start, rows)),
                Arc::new(Int64Array::from_value(end, rows)),
            ];
            columns.extend(groups.values.emit()?);
            for accumulator in &mut groups.accumulators {
                columns.extend(accumulator.state(EmitTo::All)?);
            }
            batches.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        for batch in &batches {
            self.merge_states(batch)?;
        }
        Ok((schema, batches))
    }

    /// Opens the windows a snapshot held; returns them, so that the
    /// operator holds a capability to fire each.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Vec<Window>, EngineError> {
        let schema = self.spec.state_schema()?;
        let bytes = crate::checkpoint::codec::unseal(bytes)?;
        let mut opened = Vec::new();
        for batch in crate::checkpoint::encoding::batches_from_bytes(bytes)? {
            if !crate::checkpoint::codec::fits_schema(&batch, &schema) {
                return Err(crate::checkpoint::codec::corrupt(
                    "a window state's columns are not the aggregation's",
                ));
            }
            opened.extend(self.merge_states(&batch)?);
        }
        Ok(opened)
    }

    fn merge_states(&mut self, batch: &RecordBatch) -> Result<Vec<Window>, EngineError> {
        let evaluated = self.evaluate_as(batch, Vec::new(), false)?;
        let starts = int64_column(batch, 0)?;
        let ends = int64_column(batch, 1)?;
        let assigned: Vec<Option<Window>> = starts
            .values()
            .iter()
            .zip(ends.values())
            .map(|(&start, &end)| Some(Window { start, end }))
            .collect();
        let mut opened = Vec::new();
        self.update_windows(&evaluated, &assigned, &mut opened, true)?;
        Ok(opened)
    }

    /// A raw batch (the complete and partial stages' input).
    fn evaluate(&self, batch: &RecordBatch, times: Vec<Millis>) -> Result<Evaluated, EngineError> {
        self.evaluate_as(batch, times, true)
    }

    fn evaluate_as(
        &self,
        batch: &RecordBatch,
        times: Vec<Millis>,
        raw: bool,
    ) -> Result<Evaluated, EngineError> {
        let rows = batch.num_rows();
        let keys = if raw {
            self.spec
                .keys
                .iter()
                .map(|(expr, _)| Ok(expr.evaluate(batch)?.into_array(rows)?))
                .collect::<Result<_, EngineError>>()?
        } else {
            (2..2 + self.spec.keys.len())
                .map(|i| batch.column(i).clone())
                .collect()
        };
        let (inputs, filters) = if raw {
            let AggregateInputs { args, filters } = self.spec.evaluate_inputs(batch)?;
            (args, filters)
        } else {
            let states = self
                .state_ranges
                .iter()
                .map(|range| range.clone().map(|c| batch.column(c).clone()).collect())
                .collect();
            (states, vec![None; self.spec.aggregates.len()])
        };
        Ok(Evaluated {
            rows,
            times,
            keys,
            inputs,
            filters,
        })
    }

    /// Routes every row to its window in `assigned` (rows with `None` are
    /// skipped) and updates that window's groups.
    fn update_windows(
        &mut self,
        evaluated: &Evaluated,
        assigned: &[Option<Window>],
        opened: &mut Vec<Window>,
        merge: bool,
    ) -> Result<(), EngineError> {
        let Some(&first) = assigned.first() else {
            return Ok(());
        };
        if let Some(window) = first.filter(|_| assigned.iter().all(|w| *w == first)) {
            // The common case: a whole batch inside one window, no copying.
            return self.update_window(
                window,
                evaluated.rows,
                &evaluated.keys,
                &evaluated.inputs,
                &evaluated.filters,
                opened,
                merge,
            );
        }
        let mut rows_by_window: HashMap<Window, Vec<u32>> = HashMap::default();
        for (row, window) in assigned.iter().enumerate() {
            if let Some(window) = window {
                rows_by_window.entry(*window).or_default().push(row as u32);
            }
        }
        let mut windows: Vec<_> = rows_by_window.into_iter().collect();
        windows.sort_unstable_by_key(|(w, _)| (w.end, w.start));
        for (window, rows) in windows {
            let indices = UInt32Array::from(rows);
            let pick = |array: &ArrayRef| take(array.as_ref(), &indices, None);
            let keys = evaluated
                .keys
                .iter()
                .map(pick)
                .collect::<Result<Vec<_>, _>>()?;
            let inputs = evaluated
                .inputs
                .iter()
                .map(|arrays| arrays.iter().map(pick).collect::<Result<Vec<_>, _>>())
                .collect::<Result<Vec<_>, _>>()?;
            let filters = evaluated
                .filters
                .iter()
                .map(|f| {
                    f.as_ref()
                        .map(|mask| {
                            let picked = take(mask, &indices, None)?;
                            picked.as_boolean_opt().cloned().ok_or_else(|| {
                                EngineError::Runtime("take of a boolean array".into())
                            })
                        })
                        .transpose()
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.update_window(
                window,
                indices.len(),
                &keys,
                &inputs,
                &filters,
                opened,
                merge,
            )?;
        }
        Ok(())
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one window's slice of an evaluated batch, and whether it holds states to merge"
    )]
    fn update_window(
        &mut self,
        window: Window,
        rows: usize,
        keys: &[ArrayRef],
        inputs: &[Vec<ArrayRef>],
        filters: &[Option<BooleanArray>],
        opened: &mut Vec<Window>,
        merge: bool,
    ) -> Result<(), EngineError> {
        let groups = match self.windows.entry((window.end, window.start)) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                opened.push(window);
                entry.insert(WindowGroups {
                    values: GroupKeys::new(&self.key_schema)?,
                    accumulators: self
                        .spec
                        .aggregates
                        .iter()
                        .map(create_accumulator)
                        .collect::<Result<_, _>>()?,
                })
            }
        };
        groups.values.intern(keys, rows, &mut self.group_ids)?;
        let total = groups.values.len();
        for ((accumulator, values), filter) in
            groups.accumulators.iter_mut().zip(inputs).zip(filters)
        {
            if merge {
                accumulator.merge_batch(values, &self.group_ids, total)?
            } else {
                accumulator.update_batch(values, &self.group_ids, filter.as_ref(), total)?
            }
        }
        Ok(())
    }
}

fn create_accumulator(
    aggregate: &Arc<AggregateFunctionExpr>,
) -> datafusion::error::Result<Box<dyn GroupsAccumulator>> {
    if aggregate.groups_accumulator_supported() {
        aggregate.create_groups_accumulator()
    } else {
        let aggregate = aggregate.clone();
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
            aggregate.create_accumulator()
        })))
    }
}

fn int64_column(batch: &RecordBatch, index: usize) -> Result<&Int64Array, EngineError> {
    batch
        .column(index)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| EngineError::Runtime(format!("state column {index} is not Int64")))
}

/// Milliseconds from an `Int64` or any `Timestamp` array. Null times have no
/// window; they map to `i64::MIN` so the lateness check drops them.
pub fn millis(array: &ArrayRef) -> Result<Vec<Millis>, EngineError> {
    let as_millis = match array.data_type() {
        DataType::Int64 => array.clone(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => cast(array, &DataType::Int64)?,
        DataType::Timestamp(_, _) => cast(
            &cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
            &DataType::Int64,
        )?,
        other => {
            return Err(EngineError::Plan(format!(
                "an event time must be a TIMESTAMP or BIGINT, not {other}"
            )));
        }
    };
    let values = as_millis
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| EngineError::Runtime("event time cast to Int64 failed".into()))?;
    Ok(values.iter().map(|v| v.unwrap_or(i64::MIN)).collect())
}
