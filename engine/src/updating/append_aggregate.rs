//! An unwindowed GROUP BY kept as DataFusion accumulators per key: each
//! key's accumulators absorb its new rows, and only the keys a batch
//! touched are re-evaluated (`Accumulator::evaluate` leaves the state as it
//! is). Over a changelog this takes only aggregates whose accumulators can
//! take any row back (`retracts`: COUNT, SUM, AVG): a retraction is
//! `retract_batch`, and a key whose rows all went is deleted. Others (MIN
//! and MAX must survive retractions) take the differential operator, which
//! recomputes a key from all its rows.

use crate::fast_hash::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::RowConverter;
use datafusion::logical_expr::Accumulator;
use datafusion::scalar::ScalarValue;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::exchange;
use crate::join::key_converter;
use crate::time::Watermark;
use crate::updating::changelog::{RowKind, diffs, is_changelog, op_array};
use crate::updating::group_aggregate::{GroupAggregate, output_batch};

struct Group {
    key: Vec<u8>,
    updated: std::time::Instant,
    accumulators: Vec<Box<dyn Accumulator>>,
    /// Rows the key has now (inserts less retractions); below zero while
    /// a retraction has come ahead of its insert from another worker.
    rows: i64,
    /// The aggregates last emitted, to retract when they change.
    emitted: Option<Vec<ScalarValue>>,
}

/// A group whose result changed: what was emitted for it, what is now.
type Change = (usize, Option<Vec<ScalarValue>>, Option<Vec<ScalarValue>>);

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

struct State {
    spec: Arc<GroupAggregate>,
    context: Arc<JobContext>,
    keys: RowConverter,
    groups: Vec<Group>,
    index: HashMap<Vec<u8>, usize>,
}

impl State {
    /// Absorbs a batch whose first columns are the keys and the rest the
    /// input's; returns the changelog of the keys whose results changed.
    fn absorb(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>, EngineError> {
        let n = batch.num_rows();
        let key_count = self.spec.keys.len();
        let input = batch.project(&(key_count..batch.num_columns()).collect::<Vec<_>>())?;
        let changelog = is_changelog(&input.schema());
        let diffs = if changelog {
            diffs(&input)?
        } else {
            Vec::new()
        };
        let key_rows: Vec<Vec<u8>> = if key_count == 0 {
            vec![Vec::new(); n]
        } else {
            let rows = self.keys.convert_columns(&batch.columns()[..key_count])?;
            rows.iter().map(|r| r.as_ref().to_vec()).collect()
        };
        // The rows of each group this batch touches, in first-touch order.
        let mut touched: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut slot: HashMap<usize, usize> = HashMap::default();
        for (row, key) in key_rows.into_iter().enumerate() {
            let group = match self.index.get(&key) {
                Some(&g) => g,
                None => {
                    let accumulators = self
                        .spec
                        .aggregates
                        .iter()
                        .map(|a| {
                            if changelog {
                                a.create_sliding_accumulator()
                            } else {
                                a.create_accumulator()
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    self.groups.push(Group {
                        key: key.clone(),
                        updated: std::time::Instant::now(),
                        accumulators,
                        rows: 0,
                        emitted: None,
                    });
                    self.index.insert(key, self.groups.len() - 1);
                    JobContext::add(&self.context.state_rows, 1);
                    self.groups.len() - 1
                }
            };
            let at = *slot.entry(group).or_insert_with(|| {
                touched.push((group, Vec::new()));
                touched.len() - 1
            });
            touched[at].1.push(row as u32);
        }
        // Each aggregate's arguments and FILTER, evaluated once per batch.
        let mut arguments: Vec<(Vec<ArrayRef>, Option<ArrayRef>)> = Vec::new();
        for (aggregate, filter) in self.spec.aggregates.iter().zip(&self.spec.filters) {
            let args = aggregate
                .expressions()
                .iter()
                .map(|e| e.evaluate(&input).and_then(|v| v.into_array(n)))
                .collect::<Result<Vec<_>, _>>()?;
            let mask = match filter {
                Some(f) => Some(f.evaluate(&input)?.into_array(n)?),
                None => None,
            };
            arguments.push((args, mask));
        }
        let mut changed: Vec<Change> = Vec::new();
        let mut emptied = false;
        let now = std::time::Instant::now();
        for (group, rows) in touched {
            self.groups[group].updated = now;
            // An append-only input only adds.
            let (added, taken_back): (Vec<u32>, Vec<u32>) = if changelog {
                rows.into_iter().partition(|&r| diffs[r as usize] > 0)
            } else {
                (rows, Vec::new())
            };
            self.groups[group].rows += added.len() as i64 - taken_back.len() as i64;
            for (rows, retract) in [(added, false), (taken_back, true)] {
                if rows.is_empty() {
                    continue;
                }
                // The group's rows once; aggregates with a FILTER take their own.
                let all = UInt32Array::from(rows);
                for (i, (args, mask)) in arguments.iter().enumerate() {
                    let filtered;
                    let indices = match mask {
                        Some(mask) => {
                            let mask = mask.as_boolean();
                            filtered = all
                                .values()
                                .iter()
                                .copied()
                                .filter(|&r| mask.is_valid(r as usize) && mask.value(r as usize))
                                .collect::<UInt32Array>();
                            &filtered
                        }
                        None => &all,
                    };
                    if indices.is_empty() {
                        continue;
                    }
                    let taken = args
                        .iter()
                        .map(|a| take(a.as_ref(), indices, None))
                        .collect::<Result<Vec<_>, _>>()?;
                    let accumulator = &mut self.groups[group].accumulators[i];
                    if retract {
                        accumulator.retract_batch(&taken)?;
                    } else {
                        accumulator.update_batch(&taken)?;
                    }
                }
            }
            let before = self.groups[group].emitted.clone();
            if self.groups[group].rows <= 0 {
                // A key without rows has no result.
                emptied |= self.groups[group].rows == 0;
                if before.is_some() {
                    changed.push((group, before, None));
                    self.groups[group].emitted = None;
                }
                continue;
            }
            let values = self.groups[group]
                .accumulators
                .iter_mut()
                .map(|a| a.evaluate())
                .collect::<Result<Vec<_>, _>>()?;
            if before.as_ref() != Some(&values) {
                changed.push((group, before, Some(values.clone())));
                self.groups[group].emitted = Some(values);
            }
        }
        let out = self.changelog(changed)?;
        if emptied {
            self.forget(|g| g.rows != 0);
        }
        Ok(out)
    }

    /// Keeps the groups `keep` keeps, and the index and state count true.
    fn forget(&mut self, keep: impl Fn(&Group) -> bool) {
        let before = self.groups.len();
        self.groups.retain(|g| keep(g));
        if self.groups.len() != before {
            self.context.state_rows.fetch_sub(
                (before - self.groups.len()) as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            self.index = self
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (g.key.clone(), i))
                .collect();
        }
    }

    /// Forgets the keys not updated within the TTL; their results stay as
    /// emitted, and a later row of such a key starts it afresh (Flink's
    /// state TTL).
    fn expire(&mut self, ttl: std::time::Duration) {
        self.forget(|g| g.updated.elapsed() < ttl);
    }

    fn changelog(&self, changed: Vec<Change>) -> Result<Option<RecordBatch>, EngineError> {
        if changed.is_empty() {
            return Ok(None);
        }
        let mut groups = Vec::new();
        let mut rows: Vec<&Vec<ScalarValue>> = Vec::new();
        let mut kinds = Vec::new();
        for (group, before, after) in &changed {
            let (before_kind, after_kind) = match (before, after) {
                (Some(_), Some(_)) => (RowKind::UpdateBefore, RowKind::UpdateAfter),
                _ => (RowKind::Delete, RowKind::Insert),
            };
            if let Some(before) = before {
                groups.push(*group);
                rows.push(before);
                kinds.push(before_kind);
            }
            if let Some(after) = after {
                groups.push(*group);
                rows.push(after);
                kinds.push(after_kind);
            }
        }
        let mut columns: Vec<ArrayRef> = if self.spec.keys.is_empty() {
            Vec::new()
        } else {
            let parser = self.keys.parser();
            self.keys
                .convert_rows(groups.iter().map(|&g| parser.parse(&self.groups[g].key)))?
        };
        for i in 0..self.spec.aggregates.len() {
            columns.push(ScalarValue::iter_to_array(
                rows.iter().map(|values| values[i].clone()),
            )?);
        }
        columns.push(op_array(&kinds));
        output_batch(&self.spec.output_schema, columns, kinds.len()).map(Some)
    }
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
    let keys = key_converter(&spec.keys, &spec.input_schema)?;
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
            let mut state = State {
                spec,
                context: context.clone(),
                keys,
                groups: Vec::new(),
                index: HashMap::default(),
            };
            move |input, output| {
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
                    if !state.groups.is_empty() {
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
    let mut state = State {
        spec: spec.clone(),
        context: Arc::new(JobContext::default()),
        keys: key_converter(&spec.keys, &spec.input_schema)?,
        groups: Vec::new(),
        index: HashMap::default(),
    };
    let Some(changes) = state.absorb(&keys_in_front(spec, &batch)?)? else {
        return Ok(None);
    };
    // Every group appears once, as an insert: drop the kind.
    let width = changes.num_columns() - 1;
    Ok(Some(changes.project(&(0..width).collect::<Vec<_>>())?))
}
