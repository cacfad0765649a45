//! MATCH_RECOGNIZE, as Flink runs it on an event-time attribute: each
//! partition's rows, once the watermark has passed them, in time order
//! (ties in arrival order), matched against the pattern (`nfa`), one row
//! given out per match with the partition columns and the MEASURES.
//!
//! Conditions that read only the tested row and the rows just before it in
//! the match are evaluated for a whole firing's rows at once, once per
//! possible number of rows before it; the others, per row for the partial
//! matches it may extend, in one batch (`reference`). Rows stay in the
//! firing's batch they came in (`rows`) while a match points at them.
//! State is the partial and held-back matches; a partition without any is
//! forgotten. A checkpoint takes them with the rows they read
//! (`checkpoint`).

mod checkpoint;
pub mod nfa;
pub mod reference;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array, new_null_array};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::fast_hash::HashMap;
use crate::kept_rows::{RowRef, Rows};
use crate::runtime::exchange;
use crate::time::{Millis, Watermark};
use crate::time_order::{TimeOrder, partition_order};
pub use nfa::{Element, Skip};
use nfa::{Partial, PartitionMatches, variables_to_test};
pub use reference::{Expression, Reference};
use reference::{MatchView, Reading};

pub struct MatchRecognize {
    pub partition: Vec<usize>,
    pub time_column: usize,
    /// ORDER BY columns after the time attribute, each with whether it is
    /// ascending: they order rows of equal time (NULLs lowest, as Flink).
    pub then_by: Vec<(usize, bool)>,
    /// The pattern variables' names, for errors.
    pub variables: Vec<String>,
    pub pattern: Vec<Element>,
    pub skip: Skip,
    /// `WITHIN`: a match's last row must be less than this after its first.
    pub within: Option<Millis>,
    /// Per variable, its DEFINE condition (`None`: every row).
    pub conditions: Vec<Option<Expression>>,
    pub measures: Vec<Expression>,
    /// The aggregates conditions and measures read, by index.
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    pub input_schema: SchemaRef,
    /// The partition columns, then the measures.
    pub output_schema: SchemaRef,
}

pub fn match_recognize<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<MatchRecognize>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    input.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
        exchange::by_key(spec.partition.clone()),
        "MatchRecognize",
        move |cap, _info| {
            let matching = match State::new(spec.clone(), context.clone()) {
                Ok(state) => {
                    let matching = Rc::new(RefCell::new(Matching {
                        order: TimeOrder::new(spec.time_column),
                        // With WITHIN, a watermark alone can end partial
                        // matches and so release matches held behind them:
                        // a capability at the input frontier to give those
                        // out at.
                        clock: spec.within.map(|_| cap.clone()),
                        state,
                    }));
                    let checkpointed = Rc::new(checkpoint::Checkpointed(matching.clone()));
                    if let Some(bytes) =
                        crate::checkpoint::worker::register("MatchRecognize", checkpointed)
                        && let Err(error) = matching.borrow_mut().restore(&bytes, &cap)
                    {
                        context.fail(error);
                    }
                    Some(matching)
                }
                Err(error) => {
                    context.fail(error);
                    None
                }
            };
            drop(cap);
            move |(input, frontier), output| {
                let Some(matching) = matching.as_ref() else {
                    input.for_each(|_cap, data| drop(data.take()));
                    return;
                };
                let mut matching = matching.borrow_mut();
                let Matching {
                    order,
                    clock,
                    state,
                } = &mut *matching;
                input.for_each(|cap, data| {
                    if let Some(batch) = data.take() {
                        order.accept(&cap, batch);
                    }
                });
                let bound = frontier.frontier().iter().min().copied();
                let result = match order.ready(bound) {
                    Ok(Some(ready)) => {
                        let fired = state.fire(ready.batches, ready.times, bound).map(|out| {
                            if let Some(out) = out {
                                output
                                    .session(&ready.cap)
                                    .give_container(&mut Batch::new(out));
                            }
                        });
                        order.hold(ready.cap);
                        fired
                    }
                    Ok(None) => match &*clock {
                        Some(clock) => state.fire(Vec::new(), Vec::new(), bound).map(|out| {
                            if let Some(out) = out {
                                output.session(clock).give_container(&mut Batch::new(out));
                            }
                        }),
                        None => Ok(()),
                    },
                    Err(error) => Err(error),
                };
                if let Err(error) = result {
                    context.fail(error);
                }
                match bound {
                    Some(b) => {
                        if let Some(clock) = clock.as_mut()
                            && b > *clock.time()
                        {
                            clock.downgrade(&b);
                        }
                    }
                    None => *clock = None,
                }
            }
        },
    )
}

/// What the operator carries between activations, shared with the
/// checkpoint that takes it.
struct Matching {
    /// Rows held until the watermark passes their time.
    order: TimeOrder,
    clock: Option<Capability<Watermark>>,
    state: State,
}

struct State {
    spec: Arc<MatchRecognize>,
    context: Arc<JobContext>,
    converter: RowConverter,
    partitions: HashMap<Box<[u8]>, PartitionMatches>,
    rows: Rows,
    /// Per variable, how far back its condition reads when it reads only
    /// the tested row and those just before it.
    local_reach: Vec<Option<usize>>,
    recent_reach: usize,
}

impl State {
    fn new(spec: Arc<MatchRecognize>, context: Arc<JobContext>) -> Result<Self, EngineError> {
        let fields = spec
            .partition
            .iter()
            .map(|&i| SortField::new(spec.input_schema.field(i).data_type().clone()))
            .collect();
        let local_reach: Vec<Option<usize>> = spec
            .conditions
            .iter()
            .enumerate()
            .map(|(v, c)| c.as_ref().and_then(|c| c.local_reach(v)))
            .collect();
        let recent_reach = local_reach.iter().flatten().copied().max().unwrap_or(0);
        Ok(State {
            converter: RowConverter::new(fields)?,
            spec,
            context,
            partitions: HashMap::default(),
            rows: Rows::default(),
            local_reach,
            recent_reach,
        })
    }

    /// Matches the rows the watermark has passed (`times` their event
    /// times), then ends what `bound` (`None`: the input ended) times out;
    /// the matches given out, as output rows.
    fn fire(
        &mut self,
        ready: Vec<RecordBatch>,
        times: Vec<Millis>,
        bound: Option<Watermark>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let spec = self.spec.clone();
        // Flink's watermark W promises no row at or before W.
        let watermark = bound.map_or(Millis::MAX, |b| b.saturating_sub(1));
        let mut emitted: Vec<Partial> = Vec::new();
        if let Some(first) = ready.first()
            && !times.is_empty()
        {
            let all = concat_batches(&first.schema(), &ready)?;
            self.match_rows(&all, &times, watermark, &mut emitted)?;
        }
        if spec.within.is_some() {
            for partition in self.partitions.values_mut() {
                partition.time_out(watermark, spec.within);
                partition.release(&spec.skip, &spec.variables, &mut emitted)?;
            }
        }
        let out = self.output(&emitted)?;
        let before = self.partitions.len();
        self.partitions.retain(|_, p| !p.is_idle());
        let forgotten = (before - self.partitions.len()) as u64;
        self.context
            .state_rows
            .fetch_sub(forgotten, std::sync::atomic::Ordering::Relaxed);
        let oldest = self
            .partitions
            .values()
            .filter_map(PartitionMatches::oldest_batch)
            .min()
            .unwrap_or(self.rows.newest());
        self.rows.forget_before(oldest);
        Ok(out)
    }

    fn match_rows(
        &mut self,
        all: &RecordBatch,
        times: &[Millis],
        watermark: Millis,
        emitted: &mut Vec<Partial>,
    ) -> Result<(), EngineError> {
        let spec = self.spec.clone();
        let keys: Vec<ArrayRef> = spec
            .partition
            .iter()
            .map(|&i| all.column(i).clone())
            .collect();
        // Without PARTITION BY every row is of one partition, keyed by no bytes.
        let key_rows = match keys.is_empty() {
            true => None,
            false => Some(self.converter.convert_columns(&keys)?),
        };
        let key = |row: usize| key_rows.as_ref().map_or(&[][..], |k| k.row(row).data());
        let (mut order, starts) = partition_order(key, times);
        if !spec.then_by.is_empty() {
            self.order_ties(all, times, &mut order, &starts)?;
        }
        let indices = UInt32Array::from(order);
        let sorted = take_record_batch(all, &indices)?;
        let sorted_times: Vec<Millis> = indices
            .values()
            .iter()
            .map(|&i| times[i as usize])
            .collect();
        let arguments = arguments(&spec, &sorted)?;
        let batch = self.rows.keep(sorted.clone(), arguments);
        let group_keys: Vec<Box<[u8]>> = starts
            .windows(2)
            .map(|b| key(indices.value(b[0]) as usize).into())
            .collect();
        let local = self.local_conditions(&sorted, batch, &starts, &group_keys)?;
        let recent_reach = self.recent_reach;
        let Self {
            partitions,
            rows: kept,
            context,
            ..
        } = self;
        let reading = Reading {
            rows: kept,
            input: &spec.input_schema,
            aggregates: &spec.aggregates,
        };
        for (g, bounds) in starts.windows(2).enumerate() {
            let partition = match partitions.get_mut(&group_keys[g]) {
                Some(p) => p,
                None => {
                    JobContext::add(&context.state_rows, 1);
                    partitions.entry(group_keys[g].clone()).or_default()
                }
            };
            let mut last_time = None;
            for (at, &time) in sorted_times
                .iter()
                .enumerate()
                .take(bounds[1])
                .skip(bounds[0])
            {
                if last_time != Some(time) {
                    partition.time_out(time, spec.within);
                    partition.release(&spec.skip, &spec.variables, emitted)?;
                    last_time = Some(time);
                }
                let current = RowRef {
                    batch,
                    row: at as u32,
                };
                let decided = decide(&spec, partition, current, at, &local, &reading)?;
                partition.take(&spec.pattern, current, time, |i, v| {
                    decided[i].iter().any(|&(w, holds)| w == v && holds)
                });
                partition.release(&spec.skip, &spec.variables, emitted)?;
                partition.recent.push_back(current);
            }
            while partition.recent.len() > recent_reach {
                partition.recent.pop_front();
            }
            partition.time_out(watermark, spec.within);
            partition.release(&spec.skip, &spec.variables, emitted)?;
        }
        Ok(())
    }

    /// Puts rows of equal time in each partition in the order of the ORDER
    /// BY columns after the time attribute (ties of those keep arrival
    /// order).
    fn order_ties(
        &self,
        all: &RecordBatch,
        times: &[Millis],
        order: &mut [u32],
        starts: &[usize],
    ) -> Result<(), EngineError> {
        use datafusion::arrow::compute::SortOptions;
        let fields = self
            .spec
            .then_by
            .iter()
            .map(|&(c, ascending)| {
                SortField::new_with_options(
                    all.column(c).data_type().clone(),
                    SortOptions {
                        descending: !ascending,
                        nulls_first: ascending,
                    },
                )
            })
            .collect();
        let converter = RowConverter::new(fields)?;
        let columns: Vec<ArrayRef> = self
            .spec
            .then_by
            .iter()
            .map(|&(c, _)| all.column(c).clone())
            .collect();
        let keys = converter.convert_columns(&columns)?;
        for bounds in starts.windows(2) {
            order[bounds[0]..bounds[1]].sort_by(|&a, &b| {
                (times[a as usize], keys.row(a as usize))
                    .cmp(&(times[b as usize], keys.row(b as usize)))
            });
        }
        Ok(())
    }

    /// For each variable whose condition reads only the tested row and the
    /// rows just before it, the condition for every row of `sorted`, once
    /// per number of rows before it in the match (up to its reach).
    fn local_conditions(
        &self,
        sorted: &RecordBatch,
        batch: u32,
        starts: &[usize],
        group_keys: &[Box<[u8]>],
    ) -> Result<Vec<Option<Vec<BooleanArray>>>, EngineError> {
        let rows = sorted.num_rows();
        // The row `j` before each row, in this firing or before it.
        let mut before: Vec<Vec<Option<RowRef>>> = vec![Vec::new(); self.recent_reach + 1];
        for (j, refs) in before.iter_mut().enumerate().skip(1) {
            refs.reserve(rows);
            for (g, bounds) in starts.windows(2).enumerate() {
                let recent = self.partitions.get(&group_keys[g]).map(|p| &p.recent);
                for at in bounds[0]..bounds[1] {
                    let q = at - bounds[0];
                    refs.push(match q >= j {
                        true => Some(RowRef {
                            batch,
                            row: (at - j) as u32,
                        }),
                        false => recent.and_then(|r| {
                            let back = j - q;
                            r.len().checked_sub(back).map(|i| r[i])
                        }),
                    });
                }
            }
        }
        let mut out = Vec::with_capacity(self.spec.conditions.len());
        for (v, condition) in self.spec.conditions.iter().enumerate() {
            let (Some(condition), Some(reach)) = (condition, self.local_reach[v]) else {
                out.push(None);
                continue;
            };
            let mut per_place = Vec::with_capacity(reach + 1);
            for place in 0..=reach {
                let mut columns = Vec::with_capacity(condition.references.len());
                for (reference, field) in condition.references.iter().zip(condition.schema.fields())
                {
                    let Reference::Last { column, offset, .. } = reference else {
                        return Err(EngineError::Plan(
                            "a local MATCH_RECOGNIZE condition reads only rows".into(),
                        ));
                    };
                    let data_type = self.spec.input_schema.field(*column).data_type();
                    let array = match *offset {
                        0 => sorted.column(*column).clone(),
                        j if j > place => new_null_array(data_type, rows),
                        j => self.rows.column(*column, data_type, &before[j])?,
                    };
                    columns.push(match array.data_type() == field.data_type() {
                        true => array,
                        false => cast(&array, field.data_type())?,
                    });
                }
                let input = RecordBatch::try_new(condition.schema.clone(), columns)?;
                let result = condition.expr.evaluate(&input)?.into_array(rows)?;
                per_place.push(reference::truth(&result)?);
            }
            out.push(Some(per_place));
        }
        Ok(out)
    }

    fn output(&self, emitted: &[Partial]) -> Result<Option<RecordBatch>, EngineError> {
        if emitted.is_empty() {
            return Ok(None);
        }
        let spec = &self.spec;
        let first_rows: Vec<Option<RowRef>> = emitted
            .iter()
            .map(|m| m.rows.first().map(|r| r.row))
            .collect();
        let mut columns = Vec::with_capacity(spec.output_schema.fields().len());
        for &column in &spec.partition {
            columns.push(self.rows.column(
                column,
                spec.input_schema.field(column).data_type(),
                &first_rows,
            )?);
        }
        let reading = Reading {
            rows: &self.rows,
            input: &spec.input_schema,
            aggregates: &spec.aggregates,
        };
        let views: Vec<MatchView<'_>> = emitted
            .iter()
            .map(|m| MatchView {
                rows: &m.rows,
                current: None,
            })
            .collect();
        for measure in &spec.measures {
            columns.push(reading.evaluate(measure, &views)?);
        }
        let columns = columns
            .into_iter()
            .zip(spec.output_schema.fields())
            .map(
                |(array, field)| match array.data_type() == field.data_type() {
                    true => Ok(array),
                    false => cast(&array, field.data_type()),
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(RecordBatch::try_new(
            spec.output_schema.clone(),
            columns,
        )?))
    }
}

/// The arguments of each aggregate conditions and measures read, for
/// each of `rows`.
fn arguments(spec: &MatchRecognize, rows: &RecordBatch) -> Result<Vec<Vec<ArrayRef>>, EngineError> {
    let count = rows.num_rows();
    spec.aggregates
        .iter()
        .map(|a| {
            a.expressions()
                .iter()
                .map(|e| Ok(e.evaluate(rows)?.into_array(count)?))
                .collect::<Result<Vec<_>, EngineError>>()
        })
        .collect()
}

/// Whether the row at `at` satisfies each variable it may be tested
/// against, after each partial match of `partition` and as a new match's
/// first row (the last entry).
fn decide(
    spec: &MatchRecognize,
    partition: &PartitionMatches,
    current: RowRef,
    at: usize,
    local: &[Option<Vec<BooleanArray>>],
    reading: &Reading<'_>,
) -> Result<Vec<Vec<(usize, bool)>>, EngineError> {
    let places: Vec<(usize, u32, &[reference::Matched])> = partition
        .partials
        .iter()
        .map(|p| (p.element, p.count, p.rows.as_slice()))
        .chain(std::iter::once((0, 0, &[][..])))
        .collect();
    let mut decided: Vec<Vec<(usize, bool)>> = vec![Vec::new(); places.len()];
    let mut general: Vec<(usize, usize)> = Vec::new();
    for (i, &(element, count, rows)) in places.iter().enumerate() {
        for v in variables_to_test(&spec.pattern, element, count) {
            match (&spec.conditions[v], &local[v]) {
                (None, _) => decided[i].push((v, true)),
                (Some(_), Some(per_place)) => {
                    let place = rows.len().min(per_place.len() - 1);
                    decided[i].push((v, per_place[place].value(at)));
                }
                (Some(_), None) => general.push((i, v)),
            }
        }
    }
    general.sort_by_key(|&(_, v)| v);
    for group in general.chunk_by(|a, b| a.1 == b.1) {
        let v = group[0].1;
        let Some(condition) = &spec.conditions[v] else {
            continue;
        };
        let views: Vec<MatchView<'_>> = group
            .iter()
            .map(|&(i, _)| MatchView {
                rows: places[i].2,
                current: Some((current, v)),
            })
            .collect();
        let holds = reading.holds(condition, &views)?;
        for (k, &(i, _)) in group.iter().enumerate() {
            decided[i].push((v, holds.value(k)));
        }
    }
    Ok(decided)
}
