//! Batch functions over everything that arrived at one time, applied once
//! the watermark has passed that time: the shape of window top-N, whose
//! input rows (a window aggregation's results) all travel at their window's
//! `window_end - 1`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::checkpoint::codec::{corrupt, new_state, open_state, seal};
use crate::checkpoint::encoding::{
    Reader, batches_from_bytes, batches_to_bytes, put_bytes, put_i64, put_u32,
};
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
    let kind = name.to_string();
    input.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
        exchange::by_key(key_columns),
        name,
        move |initial, _info| {
            let stash = Rc::new(RefCell::new(Stash::new()));
            let checkpointed = Rc::new(Checkpointed(stash.clone()));
            if let Some(bytes) = crate::checkpoint::worker::register(&kind, checkpointed) {
                match read_times(&bytes, 1, &initial) {
                    Ok(times) => {
                        let mut stash = stash.borrow_mut();
                        for (time, (cap, mut sides)) in times {
                            stash.insert(time, (cap, sides.pop().unwrap_or_default()));
                        }
                    }
                    Err(error) => context.fail(error),
                }
            }
            move |(input, frontier), output| {
                let mut stash = stash.borrow_mut();
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
    fn stash_batch(
        stash: &mut PairStash,
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
    let kind = name.to_string();
    left.binary_frontier::<_, CapacityContainerBuilder<Batch>, _, _, _, _>(
        right,
        exchange::by_key(left_keys),
        exchange::by_key(right_keys),
        name,
        move |initial, _info| {
            let stash = Rc::new(RefCell::new(PairStash::new()));
            let checkpointed = Rc::new(CheckpointedPair(stash.clone()));
            if let Some(bytes) = crate::checkpoint::worker::register(&kind, checkpointed) {
                match read_times(&bytes, 2, &initial) {
                    Ok(times) => {
                        let mut stash = stash.borrow_mut();
                        for (time, (cap, mut sides)) in times {
                            let rights = sides.pop().unwrap_or_default();
                            let lefts = sides.pop().unwrap_or_default();
                            stash.insert(time, (cap, lefts, rights));
                        }
                    }
                    Err(error) => context.fail(error),
                }
            }
            move |(left, left_frontier), (right, right_frontier), output| {
                let mut stash = stash.borrow_mut();
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

/// Left and right batches by the time they travelled at.
type PairStash = BTreeMap<Watermark, (Capability<Watermark>, Vec<RecordBatch>, Vec<RecordBatch>)>;

/// A per-closed-time operator's checkpoint: a version, a count of times,
/// then per time (earliest first) the time and, per input, a count of
/// batches and each batch as Arrow IPC. Each time's capability is made
/// anew at that time on restore. The batches' columns are not checked
/// against the input's here, which the operator is not told; its function
/// reads them when the time closes.
const STATE_VERSION: u32 = 1;

/// What one time holds: its capability, and its batches per input.
pub(crate) type Held = (Capability<Watermark>, Vec<Vec<RecordBatch>>);

pub(crate) fn put_times<'a>(
    times: impl ExactSizeIterator<Item = (Watermark, Vec<&'a [RecordBatch]>)>,
) -> Result<Vec<u8>, EngineError> {
    let mut out = new_state(STATE_VERSION);
    put_u32(&mut out, times.len() as u32);
    for (time, sides) in times {
        put_i64(&mut out, time);
        for batches in sides {
            put_u32(&mut out, batches.len() as u32);
            for batch in batches {
                let bytes = batches_to_bytes(&batch.schema(), std::slice::from_ref(batch))?;
                put_bytes(&mut out, &bytes);
            }
        }
    }
    Ok(out)
}

/// What `put_times` wrote for `sides` inputs, with a capability per time.
pub(crate) fn read_times(
    bytes: &[u8],
    sides: usize,
    initial: &Capability<Watermark>,
) -> Result<BTreeMap<Watermark, Held>, EngineError> {
    let mut reader = open_state(bytes, STATE_VERSION, "a per-time")?;
    let mut times = BTreeMap::new();
    for _ in 0..reader.u32()? {
        let time = reader.i64()?;
        let cap = initial
            .try_delayed(&time)
            .ok_or_else(|| corrupt("a per-time state's time"))?;
        let held = (0..sides)
            .map(|_| read_batches(&mut reader))
            .collect::<Result<Vec<_>, _>>()?;
        if times.insert(time, (cap, held)).is_some() {
            return Err(corrupt("a per-time state has a time twice"));
        }
    }
    if !reader.is_empty() {
        return Err(corrupt("trailing bytes after a per-time state"));
    }
    Ok(times)
}

fn read_batches(reader: &mut Reader<'_>) -> Result<Vec<RecordBatch>, EngineError> {
    let count = reader.u32()?;
    let mut batches = Vec::new();
    for _ in 0..count {
        let mut read = batches_from_bytes(reader.bytes()?)?;
        let (Some(batch), true) = (read.pop(), read.is_empty()) else {
            return Err(corrupt("a per-time batch is not one batch"));
        };
        batches.push(batch);
    }
    Ok(batches)
}

/// A per-closed-time operator's stashed batches, as a checkpoint takes them.
struct Checkpointed(Rc<RefCell<Stash>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let stash = self.0.borrow();
        put_times(
            stash
                .iter()
                .map(|(&time, (_, batches))| (time, vec![batches.as_slice()])),
        )
        .map(seal)
    }
}

struct CheckpointedPair(Rc<RefCell<PairStash>>);

impl crate::checkpoint::worker::OperatorState for CheckpointedPair {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let stash = self.0.borrow();
        put_times(
            stash.iter().map(|(&time, (_, lefts, rights))| {
                (time, vec![lefts.as_slice(), rights.as_slice()])
            }),
        )
        .map(seal)
    }
}
