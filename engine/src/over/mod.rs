//! OVER aggregations, as Flink runs them on a time attribute: `agg(...)
//! OVER (PARTITION BY k ORDER BY time <frame>)` gives every input row,
//! once, with each aggregate over its frame, when the watermark has passed
//! the row's time, so that no earlier row can still enter its frame.
//! Rows of one partition are taken in time order (ties in arrival order);
//! a RANGE frame gives rows of equal time one shared result, a ROWS frame
//! one per row. State per partition is its accumulators and, for a bounded
//! frame, the rows still inside it (`frame`).

pub mod frame;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::scalar::ScalarValue;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::fast_hash::HashMap;
use crate::rank::closed_time::{Stash, stash_batch};
use crate::runtime::exchange;
use crate::time::{Millis, Watermark};
pub use frame::Frame;
use frame::{Arguments, PartitionState};

pub struct OverAggregate {
    pub partition: Vec<usize>,
    /// The time attribute the rows are ordered by.
    pub time_column: usize,
    pub frame: Frame,
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// The input's columns, then one per aggregate.
    pub output_schema: SchemaRef,
    /// `table.exec.state.ttl`: a partition that has had no row for this
    /// long (wall-clock time, as Flink's idle state retention and
    /// Runnel's other operators count it) is forgotten.
    pub ttl: Option<Duration>,
}

impl OverAggregate {
    /// How far behind the watermark a RANGE frame's partition can stop
    /// mattering: its rows are then out of every future row's frame.
    fn frame_horizon(&self) -> Option<Millis> {
        match self.frame {
            Frame::Range {
                preceding: Some(interval),
            } => Some(interval),
            _ => None,
        }
    }
}

struct State {
    spec: Arc<OverAggregate>,
    /// Where the partitions held are counted (`state_rows`).
    context: Arc<JobContext>,
    /// The aggregates' distinct argument expressions, each evaluated once
    /// a batch (`SUM(v), MAX(v)` read `v` once), and which each takes.
    inputs: Vec<Arc<dyn PhysicalExpr>>,
    arguments: Arguments,
    converter: RowConverter,
    partitions: HashMap<Box<[u8]>, PartitionState>,
    /// The bound of the last sweep for idle partitions.
    swept_at: Millis,
    ttl_swept_at: Instant,
    /// Per aggregate, the values of a firing's rows.
    values: Vec<Vec<ScalarValue>>,
}

/// Rows of one input batch not yet given out, sorted by time (ties in
/// arrival order), so that each firing takes a prefix without copying.
struct Pending {
    /// Arrival order of the batch, which orders rows of equal time
    /// across batches.
    arrival: u64,
    rows: RecordBatch,
    times: Vec<Millis>,
}

pub fn over_aggregate<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<OverAggregate>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    input.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
        exchange::by_key(spec.partition.clone()),
        "OverAggregate",
        move |_cap, _info| {
            let mut stash = Stash::new();
            // Rows of closed times whose own time the watermark has not
            // passed yet, by their earliest time: a firing looks only at
            // those it can give out (a worker far ahead of the watermark
            // holds many), held at a time no later than any of theirs.
            let mut pending: BTreeMap<(Millis, u64), Pending> = BTreeMap::new();
            let mut held: Option<Capability<Watermark>> = None;
            let mut arrivals = 0u64;
            let mut state = match State::new(spec.clone(), context.clone()) {
                Ok(state) => Some(state),
                Err(error) => {
                    context.fail(error);
                    None
                }
            };
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(batch) = data.take() {
                        stash_batch(&mut stash, &cap, batch);
                    }
                });
                let Some(state) = state.as_mut() else {
                    stash.clear();
                    pending.clear();
                    held = None;
                    return;
                };
                let bound = frontier.frontier().iter().min().copied();
                while let Some(entry) = stash.first_entry() {
                    if bound.is_some_and(|b| *entry.key() >= b) {
                        break;
                    }
                    let (kept, batches) = entry.remove();
                    if held.as_ref().is_none_or(|c| kept.time() < c.time()) {
                        held = Some(kept);
                    }
                    for batch in batches {
                        match by_time(&batch, spec.time_column) {
                            Ok(Some((rows, times))) => {
                                pending.insert(
                                    (times[0], arrivals),
                                    Pending {
                                        arrival: arrivals,
                                        rows,
                                        times,
                                    },
                                );
                                arrivals += 1;
                            }
                            Ok(None) => {}
                            Err(error) => context.fail(error),
                        }
                    }
                }
                let Some(cap) = held.take() else { return };
                let mut ready: Vec<(u64, RecordBatch, Vec<Millis>)> = Vec::new();
                while let Some(entry) = pending.first_entry() {
                    if bound.is_some_and(|b| entry.key().0 >= b) {
                        break;
                    }
                    let part = entry.remove();
                    let cut = match bound {
                        Some(b) => part.times.partition_point(|&t| t < b),
                        None => part.times.len(),
                    };
                    ready.push((
                        part.arrival,
                        part.rows.slice(0, cut),
                        part.times[..cut].to_vec(),
                    ));
                    if cut < part.times.len() {
                        pending.insert(
                            (part.times[cut], part.arrival),
                            Pending {
                                arrival: part.arrival,
                                rows: part.rows.slice(cut, part.times.len() - cut),
                                times: part.times[cut..].to_vec(),
                            },
                        );
                    }
                }
                ready.sort_unstable_by_key(|(arrival, _, _)| *arrival);
                let (batches, times): (Vec<RecordBatch>, Vec<Vec<Millis>>) = ready
                    .into_iter()
                    .map(|(_, rows, times)| (rows, times))
                    .unzip();
                match state.fire(batches, times.concat(), bound) {
                    Ok(Some(out)) => output.session(&cap).give_container(&mut Batch::new(out)),
                    Ok(None) => {}
                    Err(error) => context.fail(error),
                }
                if let Some(((earliest, _), _)) = pending.first_key_value() {
                    let mut cap = cap;
                    if *earliest > *cap.time() {
                        cap.downgrade(earliest);
                    }
                    held = Some(cap);
                }
            }
        },
    )
}

/// `batch`'s rows with a time, in time order (a stable sort keeps arrival
/// order among equal times), and their times; `None` if no row has one.
fn by_time(
    batch: &RecordBatch,
    time_column: usize,
) -> Result<Option<(RecordBatch, Vec<Millis>)>, EngineError> {
    let times = event_millis(batch.column(time_column))?;
    let times = times.as_primitive::<Int64Type>();
    let mut order: Vec<u32> = (0..batch.num_rows() as u32)
        .filter(|&i| times.is_valid(i as usize))
        .collect();
    if order.is_empty() {
        return Ok(None);
    }
    order.sort_by_key(|&i| times.value(i as usize));
    let sorted_times: Vec<Millis> = order.iter().map(|&i| times.value(i as usize)).collect();
    let in_order = order.iter().enumerate().all(|(at, &i)| at == i as usize);
    let rows = match in_order {
        true => batch.clone(),
        false => take_record_batch(batch, &UInt32Array::from(order))?,
    };
    Ok(Some((rows, sorted_times)))
}

impl State {
    fn new(spec: Arc<OverAggregate>, context: Arc<JobContext>) -> Result<Self, EngineError> {
        let input_fields = spec.output_schema.fields();
        let fields = spec
            .partition
            .iter()
            .map(|&i| SortField::new(input_fields[i].data_type().clone()))
            .collect();
        let mut inputs: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let of_aggregate = spec
            .aggregates
            .iter()
            .map(|aggregate| {
                aggregate
                    .expressions()
                    .into_iter()
                    .map(|expr| {
                        let name = expr.to_string();
                        match names.iter().position(|n| *n == name) {
                            Some(i) => i,
                            None => {
                                names.push(name);
                                inputs.push(expr);
                                inputs.len() - 1
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(State {
            context,
            inputs,
            arguments: Arguments::new(of_aggregate),
            converter: RowConverter::new(fields)?,
            spec,
            partitions: HashMap::default(),
            swept_at: Millis::MIN,
            ttl_swept_at: Instant::now(),
            values: Vec::new(),
        })
    }

    /// The rows the watermark has passed (in arrival order of their
    /// batches) and their times, each row with its aggregates.
    fn fire(
        &mut self,
        ready: Vec<RecordBatch>,
        times: Vec<Millis>,
        bound: Option<Watermark>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let out = match ready.first() {
            Some(first) if !times.is_empty() => {
                let all = concat_batches(&first.schema(), &ready)?;
                Some(self.aggregate(&all, &times)?)
            }
            _ => None,
        };
        self.sweep(bound);
        Ok(out)
    }

    /// `ready`'s rows (at `times`, read when they were held back) by
    /// partition and time, each with its aggregates.
    fn aggregate(
        &mut self,
        ready: &RecordBatch,
        times: &[Millis],
    ) -> Result<RecordBatch, EngineError> {
        let spec = self.spec.clone();
        let rows = ready.num_rows();
        let keys: Vec<ArrayRef> = spec
            .partition
            .iter()
            .map(|&i| ready.column(i).clone())
            .collect();
        // Without PARTITION BY every row is of one partition, keyed by no bytes.
        let key_rows = match keys.is_empty() {
            true => None,
            false => Some(self.converter.convert_columns(&keys)?),
        };
        let key = |row: usize| key_rows.as_ref().map_or(&[][..], |k| k.row(row).data());
        // Rows grouped by partition (a hash lookup a row, not a sort on key
        // bytes), in arrival order within each, then put in time order.
        let mut group_of: Vec<u32> = Vec::with_capacity(rows);
        let mut group_sizes: Vec<u32> = Vec::new();
        {
            let mut groups: HashMap<&[u8], u32> = HashMap::default();
            for row in 0..rows {
                let next = group_sizes.len() as u32;
                let group = *groups.entry(key(row)).or_insert(next);
                if group == next {
                    group_sizes.push(0);
                }
                group_sizes[group as usize] += 1;
                group_of.push(group);
            }
        }
        let mut group_starts: Vec<usize> = Vec::with_capacity(group_sizes.len() + 1);
        let mut at = 0usize;
        for &size in &group_sizes {
            group_starts.push(at);
            at += size as usize;
        }
        group_starts.push(at);
        let mut fill = group_starts.clone();
        let mut order = vec![0u32; rows];
        for (row, &group) in group_of.iter().enumerate() {
            order[fill[group as usize]] = row as u32;
            fill[group as usize] += 1;
        }
        for bounds in group_starts.windows(2) {
            // Stable: equal times keep their arrival order.
            order[bounds[0]..bounds[1]].sort_by_key(|&row| times[row as usize]);
        }
        let indices = UInt32Array::from(order);
        let sorted = take_record_batch(ready, &indices)?;
        let sorted_times: Vec<Millis> = indices
            .values()
            .iter()
            .map(|&i| times[i as usize])
            .collect();
        let inputs: Vec<ArrayRef> = self
            .inputs
            .iter()
            .map(|expr| Ok(expr.evaluate(&sorted)?.into_array(rows)?))
            .collect::<Result<_, EngineError>>()?;
        // Kept between firings: a fresh few megabytes each time would be
        // fresh pages to fault in.
        let mut values = std::mem::take(&mut self.values);
        values.resize_with(spec.aggregates.len(), Vec::new);
        for bounds in group_starts.windows(2) {
            let (start, end) = (bounds[0], bounds[1]);
            let partition_key = key(indices.value(start) as usize);
            let partition = match self.partitions.get_mut(partition_key) {
                Some(partition) => partition,
                None => {
                    JobContext::add(&self.context.state_rows, 1);
                    self.partitions
                        .entry(partition_key.into())
                        .or_insert(PartitionState::new(&spec.aggregates, spec.frame)?)
                }
            };
            let segment: Vec<ArrayRef> =
                inputs.iter().map(|a| a.slice(start, end - start)).collect();
            partition.advance(
                &spec.aggregates,
                &mut self.arguments,
                spec.frame,
                &sorted_times[start..end],
                segment,
                &mut values,
            )?;
        }
        let mut columns = sorted.columns().to_vec();
        let fields = spec.output_schema.fields();
        for (a, values) in values.iter_mut().enumerate() {
            let field = &fields[sorted.num_columns() + a];
            let array = ScalarValue::iter_to_array(values.drain(..))?;
            let array = if array.data_type() == field.data_type() {
                array
            } else {
                cast(&array, field.data_type())?
            };
            columns.push(array);
        }
        self.values = values;
        Ok(RecordBatch::try_new(spec.output_schema.clone(), columns)?)
    }

    /// Forgets partitions whose rows can no longer be in any future row's
    /// frame (a RANGE frame: no result changes), and those the state TTL
    /// has expired.
    fn sweep(&mut self, bound: Option<Watermark>) {
        if let (Some(horizon), Some(bound)) = (self.spec.frame_horizon(), bound)
            && bound.saturating_sub(self.swept_at) >= horizon.max(1)
        {
            self.swept_at = bound;
            let oldest_needed = bound.saturating_sub(horizon);
            self.forget(|p| p.last_time < oldest_needed);
        }
        if let Some(ttl) = self.spec.ttl {
            let now = Instant::now();
            if now.duration_since(self.ttl_swept_at) >= ttl / 2 {
                self.ttl_swept_at = now;
                self.forget(|p| now.duration_since(p.last_seen) >= ttl);
            }
        }
    }
}

impl State {
    fn forget(&mut self, idle: impl Fn(&PartitionState) -> bool) {
        let before = self.partitions.len();
        self.partitions.retain(|_, p| !idle(p));
        let forgotten = (before - self.partitions.len()) as u64;
        self.context
            .state_rows
            .fetch_sub(forgotten, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A time column as milliseconds (`Int64`), NULLs kept.
fn event_millis(column: &ArrayRef) -> Result<ArrayRef, EngineError> {
    let millis = cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    Ok(cast(&millis, &DataType::Int64)?)
}
