//! `ORDER BY <event time> [, ...]` on a stream, as Flink runs it: rows are
//! held until the watermark has passed them, then given out in order of
//! their time (ties by the further keys), on one worker, since the order is
//! global. With a `LIMIT`, the first rows in that order, then nothing.

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
use crate::context::JobContext;
use crate::error::EngineError;
use crate::rank::closed_time::{Stash, stash_batch};
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
        move |_cap, _info| {
            let mut stash = Stash::new();
            // Rows of closed times not yet given out (their time is not
            // yet below the watermark), and the capability to give them.
            let mut carry: Option<(Capability<Watermark>, RecordBatch)> = None;
            let mut given = 0usize;
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(batch) = data.take() {
                        stash_batch(&mut stash, &cap, batch);
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
                let done = spec.limit.is_some_and(|l| given >= l);
                if done || closed.iter().all(|b| b.num_rows() == 0) {
                    return;
                }
                match order(&spec, &closed, bound) {
                    Ok((ready, rest)) => {
                        let ready = match spec.limit {
                            Some(limit) => ready.slice(0, ready.num_rows().min(limit - given)),
                            None => ready,
                        };
                        given += ready.num_rows();
                        if ready.num_rows() > 0 {
                            output.session(&cap).give_container(&mut Batch::new(ready));
                        }
                        if rest.num_rows() > 0 && spec.limit.is_none_or(|l| given < l) {
                            // Every row held back is at or after `bound`.
                            if let Some(bound) = bound
                                && bound > *cap.time()
                            {
                                cap.downgrade(&bound);
                            }
                            carry = Some((cap, rest));
                        }
                    }
                    Err(error) => context.fail(error),
                }
            }
        },
    )
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
