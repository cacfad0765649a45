//! An unwindowed GROUP BY whose aggregates are kept per group in vectors
//! (`grouped`): a batch is absorbed with one pass per aggregate, and only
//! the groups it touched are evaluated, before and after, to emit the
//! changes. Over a changelog this takes only aggregates that can take any
//! row back (`retracts`: COUNT, SUM, AVG, COUNT DISTINCT): a retraction
//! subtracts, and a
//! group whose rows all went is deleted. Others (MIN and MAX must survive
//! retractions) take the differential operator, which recomputes a group
//! from all its rows.

use crate::fast_hash::HashMap;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, UInt32Array};
use datafusion::arrow::compute::kernels::cmp::distinct;
use datafusion::arrow::compute::{interleave, take};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::RowConverter;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::scalar::ScalarValue;
use hashbrown::hash_map::EntryRef;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::changelog::{RowKind, diffs, is_changelog, op_array};
use crate::checkpoint::codec::{
    columns_from_bytes, columns_to_bytes, corrupt, new_state, open_state, seal, values,
};
use crate::checkpoint::encoding::{put_bytes, put_u32};
use crate::checkpoint::worker::Snapshot;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::grouped::{self, Rows, Unit, renumbering, retain_vec};
use crate::join::kernel::key_converter;
use crate::runtime::exchange;
use crate::time::Watermark;
use crate::updating::group_aggregate::{GroupAggregate, output_batch};

/// Whether every aggregate can take back any row it was given, in any
/// order, so that a changelog input can keep accumulators. MIN and MAX
/// cannot (their sliding forms take rows back only oldest first).
pub fn retracts(spec: &GroupAggregate) -> bool {
    spec.aggregates.iter().all(|aggregate| {
        let name = aggregate.fun().name().to_ascii_lowercase();
        let taken_back_in_any_order = matches!(name.as_str(), "count" | "sum" | "avg" | "mean")
            && !aggregate.is_distinct()
            || name == "count";
        taken_back_in_any_order
            && aggregate
                .create_sliding_accumulator()
                .is_ok_and(|a| a.supports_retract_batch())
    })
}

/// What is known of each group, by group number.
#[derive(Default)]
struct Groups {
    updated: Vec<Instant>,
    /// Rows the group has now (inserts less retractions); below zero while
    /// a retraction has come ahead of its insert from another worker.
    rows: Vec<i64>,
    /// Whether a result is out for the group (to retract when it changes).
    emitted: Vec<bool>,
    /// The last batch that touched the group.
    touched_in: Vec<u64>,
}

impl Groups {
    fn push(&mut self, now: Instant) -> u32 {
        self.updated.push(now);
        self.rows.push(0);
        self.emitted.push(false);
        self.touched_in.push(0);
        (self.rows.len() - 1) as u32
    }

    fn retain(&mut self, keep: &[bool]) {
        retain_vec(&mut self.updated, keep);
        retain_vec(&mut self.rows, keep);
        retain_vec(&mut self.emitted, keep);
        retain_vec(&mut self.touched_in, keep);
    }
}

/// The groups one batch touched, in first-touch order.
struct Touched {
    /// Each row's group.
    group_of: Vec<u32>,
    groups: Vec<u32>,
    /// A row of each touched group, for its key values.
    first_row: Vec<u32>,
}

struct State {
    spec: Arc<GroupAggregate>,
    context: Arc<JobContext>,
    keys: RowConverter,
    takes_back: bool,
    index: HashMap<Vec<u8>, u32>,
    groups: Groups,
    units: Vec<Unit>,
    batches: u64,
    /// What changed since the last checkpoint, once there was one.
    increments: Option<delta::Increments>,
}

mod delta;

impl State {
    fn new(spec: Arc<GroupAggregate>, context: Arc<JobContext>) -> Result<Self, EngineError> {
        let takes_back = is_changelog(&spec.input_schema);
        let argument_types = spec
            .aggregates
            .iter()
            .map(|aggregate| {
                aggregate
                    .expressions()
                    .iter()
                    .map(|e| e.data_type(&spec.input_schema))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let units = grouped::plan(&spec.aggregates, &argument_types, takes_back)?;
        Ok(Self {
            keys: key_converter(&spec.keys, &spec.input_schema)?,
            spec,
            context,
            takes_back,
            index: HashMap::default(),
            groups: Groups::default(),
            units,
            batches: 0,
            increments: None,
        })
    }

    /// Numbers each row's group, making groups for new keys.
    fn touch(&mut self, batch: &RecordBatch) -> Result<Touched, EngineError> {
        let n = batch.num_rows();
        let key_count = self.spec.keys.len();
        let encoded = if key_count == 0 {
            None
        } else {
            Some(self.keys.convert_columns(&batch.columns()[..key_count])?)
        };
        self.batches += 1;
        let now = Instant::now();
        let mut touched = Touched {
            group_of: Vec::with_capacity(n),
            groups: Vec::new(),
            first_row: Vec::new(),
        };
        let mut created = 0;
        for row in 0..n {
            let key: &[u8] = match &encoded {
                Some(rows) => rows.row(row).data(),
                None => &[],
            };
            let group = match self.index.entry_ref(key) {
                EntryRef::Occupied(entry) => *entry.get(),
                EntryRef::Vacant(entry) => {
                    created += 1;
                    *entry.insert(self.groups.push(now))
                }
            };
            let g = group as usize;
            if self.groups.touched_in[g] != self.batches {
                if let Some(increments) = &mut self.increments
                    && self.groups.touched_in[g] <= increments.since
                {
                    increments.touched.push(key.to_vec());
                }
                self.groups.touched_in[g] = self.batches;
                self.groups.updated[g] = now;
                touched.groups.push(group);
                touched.first_row.push(row as u32);
            }
            touched.group_of.push(group);
        }
        JobContext::add(&self.context.state_rows, created);
        Ok(touched)
    }

    /// Each aggregate's results for `groups`.
    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError> {
        let mut results: Vec<Option<ArrayRef>> = vec![None; self.spec.aggregates.len()];
        for unit in &mut self.units {
            for (&aggregate, values) in unit.aggregates.iter().zip(unit.state.evaluate(groups)?) {
                results[aggregate] = Some(values);
            }
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| EngineError::Plan("an aggregate without a state".into())))
            .collect()
    }

    /// Absorbs a batch whose first columns are the keys and the rest the
    /// input's; returns the changelog of the groups whose results changed.
    fn absorb(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>, EngineError> {
        let key_count = self.spec.keys.len();
        let input = batch.project(&(key_count..batch.num_columns()).collect::<Vec<_>>())?;
        let diffs = if self.takes_back {
            Some(diffs(&input)?)
        } else {
            None
        };
        let touched = self.touch(batch)?;
        let out: Vec<u32> = touched
            .groups
            .iter()
            .copied()
            .filter(|&g| self.groups.emitted[g as usize])
            .collect();
        let before = self.evaluate(&out)?;
        for (row, &group) in touched.group_of.iter().enumerate() {
            self.groups.rows[group as usize] += diffs.as_ref().map_or(1, |d| d[row] as i64);
        }
        let group_count = self.groups.rows.len();
        // Aggregates often repeat an argument or a FILTER (q16's `price <
        // 10000` for three of them): each is computed once per batch.
        let mut computed = Computed::new(&input);
        for unit in &mut self.units {
            // The members of a unit share their arguments.
            let arguments = self.spec.aggregates[unit.aggregates[0]]
                .expressions()
                .iter()
                .map(|e| computed.get(e))
                .collect::<Result<Vec<_>, _>>()?;
            let masks = unit
                .aggregates
                .iter()
                .map(|&a| {
                    self.spec.filters[a]
                        .as_ref()
                        .map(|f| computed.get(f))
                        .transpose()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let filters = masks
                .iter()
                .map(|mask| match mask {
                    Some(mask) => mask.as_boolean_opt().map(Some).ok_or_else(|| {
                        EngineError::Plan(format!("a FILTER of type {}", mask.data_type()))
                    }),
                    None => Ok(None),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let rows = Rows {
                groups: &touched.group_of,
                filters: &filters,
                diffs: diffs.as_deref(),
                group_count,
            };
            unit.state.update(&arguments, &rows)?;
        }
        let live: Vec<u32> = touched
            .groups
            .iter()
            .copied()
            .filter(|&g| self.groups.rows[g as usize] > 0)
            .collect();
        let after = self.evaluate(&live)?;
        let changes = self.changes(&touched, &before, &after)?;
        let emptied = touched
            .groups
            .iter()
            .any(|&g| self.groups.rows[g as usize] == 0);
        let result = self.changelog(batch, changes, &before, &after)?;
        if emptied {
            // A group without rows has no result and no state.
            let keep: Vec<bool> = self.groups.rows.iter().map(|&r| r != 0).collect();
            self.forget(&keep);
        }
        Ok(result)
    }

    /// Pairs the touched groups' results before and after the batch into
    /// changelog rows, and notes which groups have a result out now.
    fn changes(
        &mut self,
        touched: &Touched,
        before: &[ArrayRef],
        after: &[ArrayRef],
    ) -> Result<Changes, EngineError> {
        // Positions in `before` and `after` of the groups in both.
        let (mut in_before, mut in_after) = (Vec::new(), Vec::new());
        let (mut b, mut a) = (0u32, 0u32);
        let mut slots = Vec::with_capacity(touched.groups.len());
        for &group in &touched.groups {
            let g = group as usize;
            let had = self.groups.emitted[g];
            let has = self.groups.rows[g] > 0;
            slots.push((had.then_some(b), has.then_some(a)));
            if had && has {
                in_before.push(b);
                in_after.push(a);
            }
            b += had as u32;
            a += has as u32;
            self.groups.emitted[g] = has;
        }
        let differ = differing(before, after, in_before, in_after)?;
        let mut changes = Changes::default();
        let mut both = 0;
        for (slot, &first_row) in slots.iter().zip(&touched.first_row) {
            match *slot {
                (Some(b), Some(a)) => {
                    if differ[both] {
                        changes.push(first_row, 0, b, RowKind::UpdateBefore);
                        changes.push(first_row, 1, a, RowKind::UpdateAfter);
                    }
                    both += 1;
                }
                (Some(b), None) => changes.push(first_row, 0, b, RowKind::Delete),
                (None, Some(a)) => changes.push(first_row, 1, a, RowKind::Insert),
                (None, None) => {}
            }
        }
        Ok(changes)
    }

    fn changelog(
        &self,
        batch: &RecordBatch,
        changes: Changes,
        before: &[ArrayRef],
        after: &[ArrayRef],
    ) -> Result<Option<RecordBatch>, EngineError> {
        if changes.kinds.is_empty() {
            return Ok(None);
        }
        let rows = changes.kinds.len();
        let key_rows = UInt32Array::from(changes.key_rows);
        let mut columns = batch.columns()[..self.spec.keys.len()]
            .iter()
            .map(|keys| take(keys.as_ref(), &key_rows, None))
            .collect::<Result<Vec<_>, _>>()?;
        for (before, after) in before.iter().zip(after) {
            columns.push(interleave(
                &[before.as_ref(), after.as_ref()],
                &changes.values,
            )?);
        }
        columns.push(op_array(&changes.kinds));
        output_batch(&self.spec.output_schema, columns, rows).map(Some)
    }

    /// Keeps the groups `keep` marks, and the index and state count true.
    fn forget(&mut self, keep: &[bool]) {
        let gone = keep.iter().filter(|&&k| !k).count();
        if gone == 0 {
            return;
        }
        let renumber = renumbering(keep);
        let mut forgotten = self.increments.as_mut().map(|i| &mut i.forgotten);
        self.index.retain(|key, group| {
            let kept = keep[*group as usize];
            *group = renumber[*group as usize];
            if !kept && let Some(forgotten) = forgotten.as_mut() {
                forgotten.push(key.clone());
            }
            kept
        });
        self.groups.retain(keep);
        for unit in &mut self.units {
            unit.state.retain(keep);
        }
        self.context
            .state_rows
            .fetch_sub(gone as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets the groups not updated within the TTL; their results stay as
    /// emitted, and a later row of such a key starts it afresh (Flink's
    /// state TTL).
    fn expire(&mut self, ttl: std::time::Duration) {
        let keep: Vec<bool> = self
            .groups
            .updated
            .iter()
            .map(|u| u.elapsed() < ttl)
            .collect();
        self.forget(&keep);
    }
}

/// A GROUP BY's checkpoint: a version, then the groups in number order
/// as one IPC batch (the key columns, `rows`, `emitted`), then each unit's
/// own state over those groups.
const STATE_VERSION: u32 = 1;

impl State {
    fn snapshot(&mut self) -> Result<Vec<u8>, EngineError> {
        let groups = self.groups.rows.len();
        let mut columns = self.key_columns(groups)?;
        columns.push(Arc::new(Int64Array::from(self.groups.rows.clone())));
        columns.push(Arc::new(BooleanArray::from(self.groups.emitted.clone())));
        let mut out = new_state(STATE_VERSION);
        put_bytes(&mut out, &columns_to_bytes(columns)?);
        put_u32(&mut out, self.units.len() as u32);
        for unit in &mut self.units {
            put_bytes(&mut out, &unit.state.snapshot(groups)?);
        }
        Ok(out)
    }

    /// The key values of groups `0..groups`, decoded from the index's row
    /// bytes: a checkpoint keeps values, whose encoding Arrow does not
    /// change between versions.
    fn key_columns(&self, groups: usize) -> Result<Vec<ArrayRef>, EngineError> {
        if self.spec.keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_group: Vec<Option<&[u8]>> = vec![None; groups];
        for (key, &group) in &self.index {
            if let Some(slot) = by_group.get_mut(group as usize) {
                *slot = Some(key.as_slice());
            }
        }
        let parser = self.keys.parser();
        let rows = by_group
            .into_iter()
            .map(|key| {
                key.map(|key| parser.parse(key))
                    .ok_or_else(|| EngineError::Runtime("a group without its key".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.keys.convert_rows(rows)?)
    }

    /// Takes the state a snapshot held. Wall-clock TTL bookkeeping is not
    /// kept: restored groups count as updated now, which gives each at
    /// most the downtime as extra time to live.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let mut reader = open_state(bytes, STATE_VERSION, "a GROUP BY")?;
        let groups = self.restore_groups(reader.bytes()?)?;
        if reader.u32()? as usize != self.units.len() {
            return Err(corrupt("a GROUP BY state with other aggregates"));
        }
        for unit in &mut self.units {
            unit.state.restore(reader.bytes()?, groups)?;
        }
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes after a GROUP BY state"));
        }
        JobContext::add(&self.context.state_rows, groups);
        Ok(())
    }

    /// A whole state and the deltas on it, in order; deltas then follow
    /// from here.
    fn restore_chain(&mut self, pieces: &[Vec<u8>]) -> Result<(), EngineError> {
        let [whole, deltas @ ..] = pieces else {
            return Err(corrupt("a GROUP BY state of no pieces"));
        };
        self.restore(whole)?;
        for delta in deltas {
            self.apply_delta(delta)?;
        }
        self.increments = Some(delta::Increments::default());
        Ok(())
    }

    /// The index and per-group bookkeeping; returns how many groups.
    fn restore_groups(&mut self, bytes: &[u8]) -> Result<usize, EngineError> {
        let key_count = self.spec.keys.len();
        let mut types = self.key_types()?;
        types.extend([DataType::Int64, DataType::Boolean]);
        let columns = columns_from_bytes(bytes, None, &types)?;
        let groups = columns[key_count].len();
        let rows = values::<Int64Type>(&columns[key_count])?;
        let emitted = columns[key_count + 1]
            .as_boolean_opt()
            .ok_or_else(|| corrupt("a GROUP BY state's emitted flags are not booleans"))?;
        let mut index = HashMap::default();
        if key_count == 0 {
            if groups > 1 {
                return Err(corrupt("several groups without a GROUP BY key"));
            }
            index.extend((groups == 1).then(|| (Vec::new(), 0)));
        } else {
            let keys = self.keys.convert_columns(&columns[..key_count])?;
            for (group, key) in keys.iter().enumerate() {
                if index.insert(key.data().to_vec(), group as u32).is_some() {
                    return Err(corrupt("a GROUP BY key twice"));
                }
            }
        }
        let now = Instant::now();
        let mut restored = Groups::default();
        for (group, rows) in rows.into_iter().enumerate() {
            restored.push(now);
            restored.rows[group] = rows;
            restored.emitted[group] = emitted.value(group);
        }
        self.index = index;
        self.groups = restored;
        self.batches = 0;
        Ok(groups)
    }

    fn key_types(&self) -> Result<Vec<DataType>, EngineError> {
        self.spec
            .keys
            .iter()
            .map(|key| Ok(key.data_type(&self.spec.input_schema)?))
            .collect()
    }

    /// Why a checkpoint cannot hold this state, if it cannot.
    fn checkpoint_refusal(&self) -> Option<String> {
        self.units
            .iter()
            .find_map(|unit| unit.state.checkpoint_refusal())
    }
}

/// The GROUP BY's state, as a checkpoint takes it.
struct Checkpointed(Rc<RefCell<State>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow_mut().snapshot().map(seal)
    }

    fn snapshot_incremental(&self, delta_allowed: bool) -> Result<Snapshot, EngineError> {
        self.0.borrow_mut().snapshot_checkpoint(delta_allowed)
    }
}

/// Registers the state for checkpoints and restores it if the job resumes.
fn register(state: &Rc<RefCell<State>>) -> Result<(), EngineError> {
    if crate::checkpoint::worker::mode().is_some()
        && let Some(refusal) = state.borrow().checkpoint_refusal()
    {
        return Err(EngineError::Plan(refusal));
    }
    let checkpointed = Rc::new(Checkpointed(state.clone()));
    match crate::checkpoint::worker::register_incremental("GroupAggregate", checkpointed) {
        Some(pieces) => state.borrow_mut().restore_chain(&pieces),
        None => Ok(()),
    }
}

/// Expressions over one batch, each computed once.
struct Computed<'a> {
    input: &'a RecordBatch,
    done: Vec<(Arc<dyn PhysicalExpr>, ArrayRef)>,
}

impl<'a> Computed<'a> {
    fn new(input: &'a RecordBatch) -> Self {
        Self {
            input,
            done: Vec::new(),
        }
    }

    fn get(&mut self, expr: &Arc<dyn PhysicalExpr>) -> Result<ArrayRef, EngineError> {
        if let Some((_, values)) = self.done.iter().find(|(e, _)| e.as_ref() == expr.as_ref()) {
            return Ok(values.clone());
        }
        let values = expr
            .evaluate(self.input)?
            .into_array(self.input.num_rows())?;
        self.done.push((expr.clone(), values.clone()));
        Ok(values)
    }
}

/// The changelog rows of a batch, as positions in the results.
#[derive(Default)]
struct Changes {
    /// The batch row whose keys the changelog row carries.
    key_rows: Vec<u32>,
    /// (0 = before, 1 = after; position there) for `interleave`.
    values: Vec<(usize, usize)>,
    kinds: Vec<RowKind>,
}

impl Changes {
    fn push(&mut self, key_row: u32, side: usize, at: u32, kind: RowKind) {
        self.key_rows.push(key_row);
        self.values.push((side, at as usize));
        self.kinds.push(kind);
    }
}

/// For each pair (`before[in_before[i]]`, `after[in_after[i]]`), whether
/// any aggregate's result differs.
fn differing(
    before: &[ArrayRef],
    after: &[ArrayRef],
    in_before: Vec<u32>,
    in_after: Vec<u32>,
) -> Result<Vec<bool>, EngineError> {
    let mut differ = vec![false; in_before.len()];
    if in_before.is_empty() {
        return Ok(differ);
    }
    let (in_before, in_after) = (UInt32Array::from(in_before), UInt32Array::from(in_after));
    for (before, after) in before.iter().zip(after) {
        let old = take(before.as_ref(), &in_before, None)?;
        let new = take(after.as_ref(), &in_after, None)?;
        match distinct(&old, &new) {
            Ok(flags) => {
                for (d, flag) in differ.iter_mut().zip(flags.values().iter()) {
                    *d |= flag;
                }
            }
            // Nested results: compared value by value.
            Err(_) => {
                for (i, d) in differ.iter_mut().enumerate() {
                    *d |= ScalarValue::try_from_array(&old, i)?
                        != ScalarValue::try_from_array(&new, i)?;
                }
            }
        }
    }
    Ok(differ)
}

/// Puts the key values in front of each batch, so the exchange can route
/// by them.
fn keys_in_front(spec: &GroupAggregate, batch: &RecordBatch) -> Result<RecordBatch, EngineError> {
    let n = batch.num_rows();
    let schema = batch.schema();
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, key) in spec.keys.iter().enumerate() {
        let values = key.evaluate(batch)?.into_array(n)?;
        fields.push(Field::new(
            format!("__key{i}"),
            values.data_type().clone(),
            true,
        ));
        columns.push(values);
    }
    fields.extend(schema.fields().iter().map(|f| f.as_ref().clone()));
    columns.extend(batch.columns().iter().cloned());
    let options = RecordBatchOptions::new().with_row_count(Some(n));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &options,
    )?)
}

pub fn append_aggregate<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<GroupAggregate>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let state = Rc::new(RefCell::new(State::new(spec.clone(), context.clone())?));
    let (front_spec, front_context) = (spec.clone(), context.clone());
    let keyed = crate::stateless::map_batches(
        input,
        "GroupKeys",
        Arc::new(move |batch| keys_in_front(&front_spec, &batch).map(Some)),
        front_context,
    );
    let route: Vec<usize> = (0..spec.keys.len()).collect();
    let scope = keyed.scope();
    let ttl = spec.ttl;
    let stream = keyed.unary::<CapacityContainerBuilder<Batch>, _, _, _>(
        exchange::by_key(route),
        "GroupAggregate",
        move |_cap, info| {
            let activator = scope.activator_for(info.address);
            if let Err(error) = register(&state) {
                context.fail(error);
            }
            move |input, output| {
                let mut state = state.borrow_mut();
                input.for_each(|cap, data| {
                    let Some(batch) = data.take() else { return };
                    match state.absorb(&batch) {
                        Ok(Some(out)) => output.session(&cap).give_container(&mut Batch::new(out)),
                        Ok(None) => {}
                        Err(error) => context.fail(error),
                    }
                });
                if let Some(ttl) = ttl {
                    state.expire(ttl);
                    // Keys leave with time, not with input.
                    if !state.index.is_empty() {
                        activator.activate_after(ttl / 4);
                    }
                }
            }
        },
    );
    Ok(stream)
}

/// Aggregates one complete set of rows (all the rows of some windows) in
/// one go: each group's result once, as an append-only batch (the output
/// schema without `__op`).
pub fn aggregate_once(
    spec: &Arc<GroupAggregate>,
    batches: &[RecordBatch],
) -> Result<Option<RecordBatch>, EngineError> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let batch = datafusion::arrow::compute::concat_batches(&first.schema(), batches)?;
    let mut state = State::new(spec.clone(), Arc::new(JobContext::default()))?;
    let Some(changes) = state.absorb(&keys_in_front(spec, &batch)?)? else {
        return Ok(None);
    };
    // Every group appears once, as an insert: drop the kind.
    let width = changes.num_columns() - 1;
    Ok(Some(changes.project(&(0..width).collect::<Vec<_>>())?))
}
