//! Checkpoints of the differential operators.
//!
//! Differential's arrangements cannot be read at a checkpoint's cut: the
//! updates of times still open wait in its batchers, out of reach. But
//! every differential result is a function of its input collections, so
//! what a checkpoint saves is the input: each update into differential is
//! also added to a consolidated copy ([`recorded_updates`]), which a
//! restore replays (the times already closed as one, at the start; the
//! open ones at their own times). The replay derives again every result
//! already emitted, so the output side ([`EmittedOutput`]) keeps the
//! collection it has given out and, on restore, cancels it against the
//! replay's: a sink hears only what changed after the cut.
//!
//! Both copies change only where updates land, so after a whole snapshot
//! a checkpoint holds only the entries that changed (a delta), as the
//! append-only GROUP BY does.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::changelog::Updates;
use crate::checkpoint::codec::{corrupt, new_state, open_state, seal};
use crate::checkpoint::encoding::{Reader, put_bytes, put_i64, put_u32};
use crate::checkpoint::worker::{OperatorState, Snapshot};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::fast_hash::HashMap;
use crate::time::Watermark;

const STATE_VERSION: u32 = 1;

/// A whole snapshot after this many deltas, so that a restore reads few.
const DELTAS_PER_WHOLE: usize = 16;

type Entry = (Vec<u8>, Vec<u8>);

/// A consolidated collection of `(key, value)` with counts, which knows
/// what changed since its last snapshot.
#[derive(Default)]
struct Consolidated {
    /// Count, and whether it changed since the last snapshot. A count of
    /// zero stays until that snapshot, so that the delta names it.
    counts: HashMap<Entry, (isize, bool)>,
    changed: usize,
    deltas_since_whole: usize,
}

impl Consolidated {
    fn add(&mut self, key: &[u8], value: &[u8], diff: isize) {
        if diff == 0 {
            return;
        }
        let slot = self
            .counts
            .entry((key.to_vec(), value.to_vec()))
            .or_insert((0, false));
        slot.0 += diff;
        if !slot.1 {
            slot.1 = true;
            self.changed += 1;
        }
    }

    /// A whole snapshot, or where allowed and worth it the changed
    /// entries (zero counts naming the ones gone).
    fn snapshot(&mut self, delta_allowed: bool, out: &mut Vec<u8>) -> bool {
        let live = self.counts.values().filter(|(n, _)| *n != 0).count();
        let delta = delta_allowed
            && self.deltas_since_whole < DELTAS_PER_WHOLE
            && self.changed * 2 <= live.max(1);
        let entries: Vec<(&Entry, isize)> = self
            .counts
            .iter()
            .filter(|(_, (n, changed))| if delta { *changed } else { *n != 0 })
            .map(|(entry, (n, _))| (entry, *n))
            .collect();
        put_entries(out, entries.into_iter());
        self.counts.retain(|_, (n, changed)| {
            *changed = false;
            *n != 0
        });
        self.changed = 0;
        self.deltas_since_whole = if delta {
            self.deltas_since_whole + 1
        } else {
            0
        };
        delta
    }

    /// Applies a whole snapshot (`whole`) or a delta on the current counts.
    fn apply(&mut self, reader: &mut Reader<'_>, whole: bool) -> Result<(), EngineError> {
        if whole {
            self.counts.clear();
        }
        for _ in 0..reader.u32()? {
            let key = reader.bytes()?.to_vec();
            let value = reader.bytes()?.to_vec();
            let count = reader.i64()? as isize;
            if count == 0 {
                self.counts.remove(&(key, value));
            } else {
                self.counts.insert((key, value), (count, false));
            }
        }
        Ok(())
    }

    fn live(&self) -> impl Iterator<Item = (&Entry, isize)> {
        self.counts
            .iter()
            .filter(|(_, (n, _))| *n != 0)
            .map(|(entry, (n, _))| (entry, *n))
    }
}

fn put_entries<'a>(out: &mut Vec<u8>, entries: impl ExactSizeIterator<Item = (&'a Entry, isize)>) {
    put_u32(out, entries.len() as u32);
    for ((key, value), count) in entries {
        put_bytes(out, key);
        put_bytes(out, value);
        put_i64(out, count as i64);
    }
}

/// What entered differential on this worker: the times the input has
/// passed consolidated into one collection, the open ones by time.
#[derive(Default)]
struct Recorded {
    closed: Consolidated,
    open: BTreeMap<Watermark, Vec<(Entry, isize)>>,
}

impl Recorded {
    fn close_before(&mut self, frontier: Option<Watermark>) {
        while let Some(entry) = self.open.first_entry() {
            if frontier.is_some_and(|f| *entry.key() >= f) {
                break;
            }
            for ((key, value), diff) in entry.remove() {
                self.closed.add(&key, &value, diff);
            }
        }
    }

    fn snapshot(&mut self, delta_allowed: bool) -> Snapshot {
        let mut out = new_state(STATE_VERSION);
        let delta = self.closed.snapshot(delta_allowed, &mut out);
        put_u32(&mut out, self.open.len() as u32);
        for (time, updates) in &self.open {
            put_i64(&mut out, *time);
            put_entries(&mut out, updates.iter().map(|(entry, diff)| (entry, *diff)));
        }
        let out = seal(out);
        if delta {
            Snapshot::Delta(out)
        } else {
            Snapshot::Whole(out)
        }
    }

    /// A whole state and the deltas on it, in order; the open times are
    /// those of the last piece.
    fn restore(&mut self, pieces: &[Vec<u8>]) -> Result<(), EngineError> {
        for (i, piece) in pieces.iter().enumerate() {
            let mut reader = open_state(piece, STATE_VERSION, "a differential input")?;
            self.closed.apply(&mut reader, i == 0)?;
            self.open.clear();
            for _ in 0..reader.u32()? {
                let time = reader.i64()?;
                let mut updates = Vec::new();
                for _ in 0..reader.u32()? {
                    let key = reader.bytes()?.to_vec();
                    let value = reader.bytes()?.to_vec();
                    updates.push(((key, value), reader.i64()? as isize));
                }
                if self.open.insert(time, updates).is_some() {
                    return Err(corrupt("a differential input has a time twice"));
                }
            }
            if !reader.is_empty() {
                return Err(corrupt("trailing bytes after a differential input"));
            }
        }
        // Restored counts are the base the next delta applies to.
        self.closed.changed = 0;
        Ok(())
    }
}

struct CheckpointedInput(Rc<RefCell<Recorded>>);

impl OperatorState for CheckpointedInput {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow_mut().snapshot(false).into_bytes()
    }

    fn snapshot_incremental(&self, delta_allowed: bool) -> Result<Snapshot, EngineError> {
        Ok(self.0.borrow_mut().snapshot(delta_allowed))
    }
}

/// Passes `updates` through; in a checkpointed job, also keeps them for
/// checkpoints and, resuming from one, first gives out what it saved.
pub fn recorded_updates<'scope>(
    updates: Stream<'scope, Watermark, Updates>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Updates> {
    if crate::checkpoint::worker::mode().is_none() {
        return updates;
    }
    updates.unary_frontier::<CapacityContainerBuilder<Updates>, _, _, _>(
        Pipeline,
        "DifferentialInput",
        move |initial, _info| {
            let recorded = Rc::new(RefCell::new(Recorded::default()));
            let state = Rc::new(CheckpointedInput(recorded.clone()));
            let mut replay: Option<Capability<Watermark>> = None;
            if let Some(pieces) =
                crate::checkpoint::worker::register_incremental("DifferentialInput", state)
            {
                match recorded.borrow_mut().restore(&pieces) {
                    Ok(()) => replay = Some(initial),
                    Err(error) => context.fail(error),
                }
            }
            move |(input, frontier), output| {
                let mut recorded = recorded.borrow_mut();
                if let Some(initial) = replay.take() {
                    let mut closed: Updates = recorded
                        .closed
                        .live()
                        .map(|((key, value), n)| ((key.clone(), value.clone()), *initial.time(), n))
                        .collect();
                    if !closed.is_empty() {
                        output.session(&initial).give_container(&mut closed);
                    }
                    for (time, updates) in &recorded.open {
                        let cap = initial.delayed(time);
                        let mut open: Updates = updates
                            .iter()
                            .map(|(entry, diff)| (entry.clone(), *time, *diff))
                            .collect();
                        output.session(&cap).give_container(&mut open);
                    }
                }
                input.for_each(|cap, data| {
                    for ((key, value), time, diff) in data.iter() {
                        recorded
                            .open
                            .entry(*time)
                            .or_default()
                            .push(((key.clone(), value.clone()), *diff));
                    }
                    output.session(&cap).give_container(data);
                });
                recorded.close_before(frontier.frontier().iter().min().copied());
            }
        },
    )
}

/// `(key, value, diff)`, as `to_changelog` consolidates them.
pub type OutputUpdate = (Vec<u8>, Vec<u8>, isize);

/// The collection an output of differential has given out on this worker
/// (see the module's comment), when the job is checkpointed.
pub struct EmittedOutput {
    emitted: Rc<RefCell<Consolidated>>,
}

struct CheckpointedOutput(Rc<RefCell<Consolidated>>);

impl OperatorState for CheckpointedOutput {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        Ok(snapshot_output(&mut self.0.borrow_mut(), false).1)
    }

    fn snapshot_incremental(&self, delta_allowed: bool) -> Result<Snapshot, EngineError> {
        let (delta, bytes) = snapshot_output(&mut self.0.borrow_mut(), delta_allowed);
        Ok(if delta {
            Snapshot::Delta(bytes)
        } else {
            Snapshot::Whole(bytes)
        })
    }
}

fn snapshot_output(emitted: &mut Consolidated, delta_allowed: bool) -> (bool, Vec<u8>) {
    let mut out = new_state(STATE_VERSION);
    let delta = emitted.snapshot(delta_allowed, &mut out);
    (delta, seal(out))
}

impl EmittedOutput {
    /// Registers the output for checkpoints in a checkpointed job; with a
    /// checkpoint to resume from, also returns the saved collection,
    /// negated, to consolidate with the first updates the replay derives.
    pub fn register() -> Result<Option<(Self, Vec<OutputUpdate>)>, EngineError> {
        if crate::checkpoint::worker::mode().is_none() {
            return Ok(None);
        }
        let emitted = Rc::new(RefCell::new(Consolidated::default()));
        let state = Rc::new(CheckpointedOutput(emitted.clone()));
        let mut cancel = Vec::new();
        if let Some(pieces) =
            crate::checkpoint::worker::register_incremental("DifferentialOutput", state)
        {
            let mut restored = emitted.borrow_mut();
            for (i, piece) in pieces.iter().enumerate() {
                let mut reader = open_state(piece, STATE_VERSION, "a differential output")?;
                restored.apply(&mut reader, i == 0)?;
                if !reader.is_empty() {
                    return Err(corrupt("trailing bytes after a differential output"));
                }
            }
            restored.changed = 0;
            cancel = restored
                .live()
                .map(|((key, value), n)| (key.clone(), value.clone(), -n))
                .collect();
        }
        Ok(Some((EmittedOutput { emitted }, cancel)))
    }

    /// Notes consolidated updates given out.
    pub fn note(&self, updates: &[OutputUpdate]) {
        let mut emitted = self.emitted.borrow_mut();
        for (key, value, diff) in updates {
            emitted.add(key, value, *diff);
        }
    }
}
