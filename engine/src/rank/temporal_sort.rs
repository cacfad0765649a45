//! `ORDER BY <event time> [, ...]` on a stream, as Flink runs it: rows are
//! held until the watermark has passed them, then given out in order of
//! their time (ties by the further keys), on one worker, since the order is
//! global. With a `LIMIT`, the first rows in that order, then nothing.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, UInt64Array};
use datafusion::arrow::compute::{
    SortColumn, SortOptions, cast, concat_batches, lexsort_to_indices, take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::checkpoint::codec::{corrupt, fits_schema, new_state, open_state, seal};
use crate::checkpoint::encoding::{
    batches_from_bytes, put_batches_bytes, put_bytes, put_i64, put_u32,
};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::rank::closed_time::{Stash, put_times, read_times, stash_batch};
use crate::runtime::exchange;
use crate::time::Watermark;

#[derive(Debug, Clone)]
pub struct SortSpec {
    /// The event-time column: the first key, ascending.
    pub time_column: usize,
    /// Keys after the time, with their directions.
    pub then_by: Vec<(usize, SortOptions)>,
    pub limit: Option<usize>,
}

pub fn temporal_sort<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<SortSpec>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    // No key: every row goes to one worker.
    input.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
        exchange::by_key(Vec::new()),
        "TemporalSort",
        move |initial, _info| {
            let sort = Rc::new(RefCell::new(Sort {
                stash: Stash::new(),
                carry: None,
                given: 0,
            }));
            let checkpointed = Rc::new(Checkpointed(sort.clone()));
            if let Some(bytes) = crate::checkpoint::worker::register("TemporalSort", checkpointed)
                && let Err(error) = sort.borrow_mut().restore(&bytes, &spec, &initial)
            {
                context.fail(error);
            }
            move |(input, frontier), output| {
                let mut sort = sort.borrow_mut();
                let Sort {
                    stash,
                    carry,
                    given,
                } = &mut *sort;
                input.for_each(|cap, data| {
                    if let Some(batch) = data.take() {
                        stash_batch(stash, &cap, batch);
                    }
                });
                // Rows before `bound` can come no more (`None`: the input ended).
                let bound = frontier.frontier().iter().min().copied();
                let mut closed = Vec::new();
                let mut cap = carry.as_ref().map(|(c, _)| c.clone());
                while let Some(entry) = stash.first_entry() {
                    if bound.is_some_and(|b| *entry.key() >= b) {
                        break;
                    }
                    let (held, batches) = entry.remove();
                    if cap.is_none() {
                        cap = Some(held);
                    }
                    closed.extend(batches);
                }
                let Some(mut cap) = cap else { return };
                if let Some((_, rows)) = carry.take() {
                    // First: equal keys keep their arrival order.
                    closed.insert(0, rows);
                }
                let done = spec.limit.is_some_and(|l| *given >= l);
                if done || closed.iter().all(|b| b.num_rows() == 0) {
                    return;
                }
                match order(&spec, &closed, bound) {
                    Ok((ready, rest)) => {
                        let ready = match spec.limit {
                            Some(limit) => ready.slice(0, ready.num_rows().min(limit - *given)),
                            None => ready,
                        };
                        *given += ready.num_rows();
                        if ready.num_rows() > 0 {
                            output.session(&cap).give_container(&mut Batch::new(ready));
                        }
                        if rest.num_rows() > 0 && spec.limit.is_none_or(|l| *given < l) {
                            // Every row held back is at or after `bound`.
                            if let Some(bound) = bound
                                && bound > *cap.time()
                            {
                                cap.downgrade(&bound);
                            }
                            *carry = Some((cap, rest));
                        }
                    }
                    Err(error) => context.fail(error),
                }
            }
        },
    )
}

/// What the operator holds between firings.
struct Sort {
    stash: Stash,
    /// Rows of closed times not yet given out (their time is not yet
    /// below the watermark), and the capability to give them.
    carry: Option<(Capability<Watermark>, RecordBatch)>,
    /// How many rows a LIMIT has given out.
    given: usize,
}

/// A sort's checkpoint: a version; the stash (a sealed per-time state, as
/// `per_closed_time` keeps it); the carried rows, if any, with the time
/// of their capability (a flag, the time, the rows as Arrow IPC); and how
/// many rows a LIMIT has given out. Capabilities are made anew from the
/// operator's initial one.
const STATE_VERSION: u32 = 1;

struct Checkpointed(Rc<RefCell<Sort>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let sort = self.0.borrow();
        let mut out = new_state(STATE_VERSION);
        let stash = put_times(
            sort.stash
                .iter()
                .map(|(&time, (_, batches))| (time, vec![batches.as_slice()])),
        )?;
        put_bytes(&mut out, &seal(stash));
        match &sort.carry {
            Some((cap, rows)) => {
                put_u32(&mut out, 1);
                put_i64(&mut out, *cap.time());
                put_batches_bytes(&mut out, &rows.schema(), std::slice::from_ref(rows))?;
            }
            None => put_u32(&mut out, 0),
        }
        put_i64(&mut out, sort.given as i64);
        Ok(seal(out))
    }
}

impl Sort {
    fn restore(
        &mut self,
        bytes: &[u8],
        spec: &SortSpec,
        initial: &Capability<Watermark>,
    ) -> Result<(), EngineError> {
        let mut reader = open_state(bytes, STATE_VERSION, "an ORDER BY time")?;
        let times = read_times(reader.bytes()?, 1, initial)?;
        let mut restored: Vec<RecordBatch> = Vec::new();
        for (time, (cap, mut sides)) in times {
            let batches = sides.pop().unwrap_or_default();
            restored.extend(batches.iter().cloned());
            self.stash.insert(time, (cap, batches));
        }
        self.carry = match reader.u32()? {
            0 => None,
            1 => {
                let time = reader.i64()?;
                let cap = initial
                    .try_delayed(&time)
                    .ok_or_else(|| corrupt("an ORDER BY time's capability time"))?;
                let mut batches = batches_from_bytes(reader.bytes()?)?;
                let (Some(rows), true) = (batches.pop(), batches.is_empty()) else {
                    return Err(corrupt("an ORDER BY time's carried rows are not one batch"));
                };
                restored.push(rows.clone());
                Some((cap, rows))
            }
            _ => return Err(corrupt("an ORDER BY time's carry flag")),
        };
        self.given = usize::try_from(reader.i64()?)
            .map_err(|_| corrupt("an ORDER BY time's count of rows given"))?;
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes after an ORDER BY time state"));
        }
        // The operator is not told its input's columns; rows it would
        // read out of bounds, or could not concatenate, are refused here.
        let needed = spec
            .then_by
            .iter()
            .map(|(i, _)| *i)
            .chain([spec.time_column])
            .max()
            .unwrap_or(0);
        if let Some(first) = restored.first()
            && !restored
                .iter()
                .all(|batch| needed < batch.num_columns() && fits_schema(batch, &first.schema()))
        {
            return Err(corrupt("ORDER BY time rows with other columns"));
        }
        Ok(())
    }
}

/// `batches` in order, split into the rows before `bound` and the rest.
fn order(
    spec: &SortSpec,
    batches: &[RecordBatch],
    bound: Option<Watermark>,
) -> Result<(RecordBatch, RecordBatch), EngineError> {
    let schema = batches[0].schema();
    let all = concat_batches(&schema, batches)?;
    let times = cast(
        &cast(
            all.column(spec.time_column),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?,
        &DataType::Int64,
    )?;
    // Arrival order last, so that equal keys keep it (lexsort is not stable).
    let arrival = UInt64Array::from_iter_values(0..all.num_rows() as u64);
    let mut columns = vec![SortColumn {
        values: times.clone(),
        options: None,
    }];
    columns.extend(spec.then_by.iter().map(|(i, options)| SortColumn {
        values: all.column(*i).clone(),
        options: Some(*options),
    }));
    columns.push(SortColumn {
        values: std::sync::Arc::new(arrival),
        options: None,
    });
    let indices = lexsort_to_indices(&columns, None)?;
    let sorted = take_record_batch(&all, &indices)?;
    let sorted_times = datafusion::arrow::compute::take(times.as_ref(), &indices, None)?;
    let sorted_times = sorted_times.as_primitive::<Int64Type>();
    let ready = match bound {
        None => sorted.num_rows(),
        Some(bound) => (0..sorted_times.len())
            .find(|&i| sorted_times.is_valid(i) && sorted_times.value(i) >= bound)
            .unwrap_or(sorted_times.len()),
    };
    Ok((
        sorted.slice(0, ready),
        sorted.slice(ready, sorted.num_rows() - ready),
    ))
}
