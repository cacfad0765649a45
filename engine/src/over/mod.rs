//! OVER aggregations, as Flink runs them on a time attribute: `agg(...)
//! OVER (PARTITION BY k ORDER BY time <frame>)` gives every input row,
//! once, with each aggregate over its frame, when the watermark has passed
//! the row's time, so that no earlier row can still enter its frame.
//! Rows of one partition are taken in time order (ties in arrival order);
//! a RANGE frame gives rows of equal time one shared result, a ROWS frame
//! one per row. State per partition is its accumulators and, for a bounded
//! frame, the rows still inside it (`frame`); a checkpoint holds that and
//! the rows still waiting for the watermark (`checkpoint`).

mod checkpoint;
pub mod frame;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::scalar::ScalarValue;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::fast_hash::HashMap;
use crate::runtime::exchange;
use crate::time::{Millis, Watermark};
use crate::time_order::{TimeOrder, partition_order};
use checkpoint::Checkpointed;
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

/// What the operator holds: the rows waiting for the watermark, and the
/// partitions' frames (`None` if they could not be set up, the job
/// having failed).
struct Over {
    order: TimeOrder,
    state: Option<State>,
}

pub fn over_aggregate<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<OverAggregate>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    input.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
        exchange::by_key(spec.partition.clone()),
        "OverAggregate",
        move |initial, _info| {
            let state = match State::new(spec.clone(), context.clone()) {
                Ok(state) => Some(state),
                Err(error) => {
                    context.fail(error);
                    None
                }
            };
            let over = Rc::new(RefCell::new(Over {
                order: TimeOrder::new(spec.time_column),
                state,
            }));
            let checkpointed = Rc::new(Checkpointed(over.clone()));
            if let Some(bytes) = crate::checkpoint::worker::register("OverAggregate", checkpointed)
                && let Err(error) = over.borrow_mut().restore(&bytes, &initial)
            {
                context.fail(error);
            }
            move |(input, frontier), output| {
                let mut over = over.borrow_mut();
                let Over { order, state } = &mut *over;
                input.for_each(|cap, data| {
                    if let Some(batch) = data.take() {
                        order.accept(&cap, batch);
                    }
                });
                let Some(state) = state.as_mut() else {
                    order.clear();
                    return;
                };
                let bound = frontier.frontier().iter().min().copied();
                let ready = match order.ready(bound) {
                    Ok(Some(ready)) => ready,
                    Ok(None) => return,
                    Err(error) => return context.fail(error),
                };
                match state.fire(ready.batches, ready.times, bound) {
                    Ok(Some(out)) => output
                        .session(&ready.cap)
                        .give_container(&mut Batch::new(out)),
                    Ok(None) => {}
                    Err(error) => context.fail(error),
                }
                order.hold(ready.cap);
            }
        },
    )
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
        let (order, group_starts) = partition_order(key, times);
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
