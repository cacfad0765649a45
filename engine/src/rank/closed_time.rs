//! Batch functions over everything that arrived at one time, applied once
//! the watermark has passed that time: the shape of window top-N, whose
//! input rows (a window aggregation's results) all travel at their window's
//! `window_end - 1`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::runtime::exchange;
use crate::time::Watermark;

/// Batches by the time they travelled at, each time with a capability.
pub type Stash = BTreeMap<Watermark, (Capability<Watermark>, Vec<RecordBatch>)>;

/// Puts `batch` under its time, keeping a capability for a time first seen.
pub fn stash_batch(
    stash: &mut Stash,
    cap: &timely::dataflow::operators::InputCapability<Watermark>,
    batch: RecordBatch,
) {
    let time = cap.least().copied().unwrap_or(Watermark::MIN);
    match stash.get_mut(&time) {
        Some((_, batches)) => batches.push(batch),
        None => {
            if let Some(held) = cap.retain_least(0) {
                stash.insert(time, (held, vec![batch]));
            }
        }
    }
}

/// Gets every batch of one time (on this worker), at once.
pub type ClosedTimeFn =
    Arc<dyn Fn(Vec<RecordBatch>) -> Result<Option<RecordBatch>, EngineError> + Send + Sync>;

/// Routes rows by `key_columns`, stashes them per time, and applies `f` to
/// each time's rows once the input frontier has passed it.
pub fn per_closed_time<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    name: &str,
    key_columns: Vec<usize>,
    f: ClosedTimeFn,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    input.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
        exchange::by_key(key_columns),
        name,
        move |_cap, _info| {
            let mut stash = Stash::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(batch) = data.take() {
                        stash_batch(&mut stash, &cap, batch);
                    }
                });
                while let Some(entry) = stash.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (cap, batches) = entry.remove();
                    match f(batches) {
                        Ok(Some(out)) if out.num_rows() > 0 => {
                            output.session(&cap).give_container(&mut Batch::new(out))
                        }
                        Ok(_) => {}
                        Err(error) => context.fail(error),
                    }
                }
            }
        },
    )
}

/// Gets every left and right batch of one time (on this worker), at once.
pub type ClosedTimePairFn = Arc<
    dyn Fn(Vec<RecordBatch>, Vec<RecordBatch>) -> Result<Option<RecordBatch>, EngineError>
        + Send
        + Sync,
>;

/// Two inputs routed by their key columns (which must hash alike), stashed
/// per time, and handed to `f` together once both frontiers have passed
/// that time: the shape of a window join, whose rows travel at their
/// window's `window_end - 1`.
pub fn per_closed_time_pair<'scope>(
    left: Stream<'scope, Watermark, Batch>,
    right: Stream<'scope, Watermark, Batch>,
    name: &str,
    key_columns: (Vec<usize>, Vec<usize>),
    f: ClosedTimePairFn,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    type Stash = BTreeMap<Watermark, (Capability<Watermark>, Vec<RecordBatch>, Vec<RecordBatch>)>;
    fn stash_batch(
        stash: &mut Stash,
        cap: &timely::dataflow::operators::InputCapability<Watermark>,
        batch: RecordBatch,
        left: bool,
    ) {
        let time = cap.least().copied().unwrap_or(Watermark::MIN);
        let entry = match stash.get_mut(&time) {
            Some(entry) => entry,
            None => match cap.retain_least(0) {
                Some(held) => stash.entry(time).or_insert((held, Vec::new(), Vec::new())),
                None => return,
            },
        };
        if left {
            entry.1.push(batch);
        } else {
            entry.2.push(batch);
        }
    }
    let (left_keys, right_keys) = key_columns;
    left.binary_frontier::<_, CapacityContainerBuilder<Batch>, _, _, _, _>(
        right,
        exchange::by_key(left_keys),
        exchange::by_key(right_keys),
        name,
        move |_cap, _info| {
            let mut stash: Stash = BTreeMap::new();
            move |(left, left_frontier), (right, right_frontier), output| {
                left.for_each(|cap, data| {
                    if let Some(batch) = data.take() {
                        stash_batch(&mut stash, &cap, batch, true);
                    }
                });
                right.for_each(|cap, data| {
                    if let Some(batch) = data.take() {
                        stash_batch(&mut stash, &cap, batch, false);
                    }
                });
                while let Some(entry) = stash.first_entry() {
                    if left_frontier.less_equal(entry.key())
                        || right_frontier.less_equal(entry.key())
                    {
                        break;
                    }
                    let (cap, lefts, rights) = entry.remove();
                    match f(lefts, rights) {
                        Ok(Some(out)) if out.num_rows() > 0 => {
                            output.session(&cap).give_container(&mut Batch::new(out))
                        }
                        Ok(_) => {}
                        Err(error) => context.fail(error),
                    }
                }
            }
        },
    )
}
