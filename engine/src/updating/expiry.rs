//! `table.exec.state.ttl` for the differential operators.
//!
//! Differential forgets a row only by retracting it, and a retraction
//! changes the results; Flink's TTL forgets silently (a key that comes back
//! starts afresh). So an expirer in front of the operator keeps a copy of
//! each key's live updates and, once a key has had no update for the TTL,
//! retracts them at the earliest time still open, `t`, and marks the key's
//! output at `t`. The operator's arrangements then drop the key, and
//! `to_changelog` drops the marked output, so the sink hears nothing. The
//! mark is sound because an idle key has no other update at `t`; a real one
//! that arrives at `t` after all cancels the mark, and its change (computed
//! against the forgotten state) is emitted.

use hashbrown::hash_map::Entry;
use std::collections::{BTreeMap, VecDeque};

use crate::fast_hash::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::core::Partition;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;

use crate::changelog::Updates;
use crate::context::JobContext;
use crate::time::Watermark;

/// Output of `to_changelog` to drop: a mark (a key, or a row of a join side)
/// at a time, counted so that a cancel (-1) undoes it.
pub type Marks = Vec<(Vec<u8>, Watermark, isize)>;

/// A TTL's marks and what they name, for `to_changelog`; `None` without one.
pub type Expired<'scope> = Option<(Stream<'scope, Watermark, Marks>, MarkBy)>;

/// What identifies an expired key's output downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkBy {
    /// The operator's output is keyed by the same key (GROUP BY, top-N).
    Key,
    /// The output holds the key's rows (a join's pairs); rows are marked
    /// without their first `skip` bytes (a side tag).
    Row { skip: usize },
}

/// The worker that owns a key's output: `to_changelog` and the expirer
/// agree on it.
pub fn owner(key: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

struct Held {
    rows: HashMap<Vec<u8>, isize>,
    bucket: u64,
}

struct Expirer {
    context: Arc<JobContext>,
    ttl: Duration,
    mark_by: MarkBy,
    started: Instant,
    keys: HashMap<Vec<u8>, Held>,
    /// (bucket, key) as keys were touched, oldest first; an entry whose key
    /// was touched again later is stale and skipped.
    touched: VecDeque<(u64, Vec<u8>)>,
    /// Per expiry time, each expired key's marks, kept to cancel them.
    expired: BTreeMap<Watermark, HashMap<Vec<u8>, Vec<Vec<u8>>>>,
}

impl Expirer {
    /// Buckets of a quarter TTL: a key is expired between one TTL and a
    /// quarter more after its last update.
    fn bucket(&self) -> u64 {
        let quarter = (self.ttl / 4).max(Duration::from_millis(1));
        (self.started.elapsed().as_nanos() / quarter.as_nanos()) as u64
    }

    fn absorb(
        &mut self,
        ((key, row), time, diff): ((Vec<u8>, Vec<u8>), Watermark, isize),
        now: u64,
        out: &mut Vec<Tagged>,
    ) {
        if let Some(marks) = self
            .expired
            .get_mut(&time)
            .and_then(|keys| keys.remove(&key))
        {
            out.extend(marks.into_iter().map(|m| Tagged::Mark((m, time, -1))));
        }
        let held = self.keys.entry(key.clone()).or_insert_with(|| Held {
            rows: HashMap::default(),
            bucket: u64::MAX,
        });
        match held.rows.entry(row.clone()) {
            Entry::Occupied(mut entry) => {
                *entry.get_mut() += diff;
                if *entry.get() == 0 {
                    entry.remove();
                    self.context.state_rows.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Entry::Vacant(entry) => {
                entry.insert(diff);
                JobContext::add(&self.context.state_rows, 1);
            }
        }
        if held.rows.is_empty() {
            self.keys.remove(&key);
        } else if held.bucket != now {
            held.bucket = now;
            self.touched.push_back((now, key.clone()));
        }
        out.push(Tagged::Update(((key, row), time, diff)));
    }

    fn expire(&mut self, now: u64, at: Watermark, out: &mut Vec<Tagged>) {
        while let Some((bucket, _)) = self.touched.front() {
            if bucket + 4 >= now {
                break;
            }
            let Some((bucket, key)) = self.touched.pop_front() else {
                break;
            };
            if self.keys.get(&key).is_none_or(|held| held.bucket != bucket) {
                continue;
            }
            let Some(held) = self.keys.remove(&key) else {
                continue;
            };
            let marks: Vec<Vec<u8>> = match self.mark_by {
                MarkBy::Key => vec![key.clone()],
                MarkBy::Row { skip } => held
                    .rows
                    .keys()
                    .map(|row| row.get(skip..).unwrap_or_default().to_vec())
                    .collect(),
            };
            out.extend(marks.iter().map(|m| Tagged::Mark((m.clone(), at, 1))));
            self.context
                .state_rows
                .fetch_sub(held.rows.len() as u64, Ordering::Relaxed);
            for (row, count) in held.rows {
                out.push(Tagged::Update(((key.clone(), row), at, -count)));
            }
            self.expired.entry(at).or_default().insert(key, marks);
        }
    }
}

/// Passes `updates` through, retracting keys idle for `ttl`; the second
/// stream holds the marks of what those retractions will change, sent to
/// every worker.
pub fn expire<'scope>(
    updates: Stream<'scope, Watermark, Updates>,
    ttl: Duration,
    mark_by: MarkBy,
    context: Arc<JobContext>,
) -> (
    Stream<'scope, Watermark, Updates>,
    Stream<'scope, Watermark, Marks>,
) {
    if crate::checkpoint::worker::mode().is_some() {
        // The expirer's clock and pending marks are not saved, and a
        // restore would bring expired keys back.
        context.fail(crate::error::EngineError::Plan(
            "checkpoints do not cover table.exec.state.ttl on an updating operator (differential) yet".into(),
        ));
    }
    let scope = updates.scope();
    let by_key =
        Exchange::new(|update: &((Vec<u8>, Vec<u8>), Watermark, isize)| owner(&update.0.0));
    let tagged = updates.unary_frontier::<CapacityContainerBuilder<Vec<Tagged>>, _, _, _>(
        by_key,
        "StateTtl",
        move |initial, info| {
            let activator = scope.activator_for(info.address);
            let mut held: Option<Capability<Watermark>> = Some(initial);
            let mut expirer = Expirer {
                context,
                ttl,
                mark_by,
                started: Instant::now(),
                keys: HashMap::default(),
                touched: VecDeque::new(),
                expired: BTreeMap::new(),
            };
            move |(input, frontier), output| {
                let now = expirer.bucket();
                let mut out = Vec::new();
                input.for_each(|cap, data| {
                    for update in data.drain(..) {
                        expirer.absorb(update, now, &mut out);
                    }
                    if !out.is_empty() {
                        output.session(&cap).give_iterator(out.drain(..));
                    }
                });
                // Expiries go out at the earliest open time, which the
                // held capability follows.
                match frontier.frontier().iter().min() {
                    Some(earliest) => {
                        if let Some(cap) = held.as_mut()
                            && cap.time() < earliest
                        {
                            cap.downgrade(earliest);
                        }
                    }
                    None => held = None,
                }
                if let Some(cap) = &held {
                    let at = *cap.time();
                    expirer.expire(now, at, &mut out);
                    if !out.is_empty() {
                        output.session(cap).give_iterator(out.drain(..));
                    }
                    // Past this, no update can cancel an expiry.
                    expirer.expired = expirer.expired.split_off(&at);
                    if !expirer.keys.is_empty() {
                        activator.activate_after(ttl / 4);
                    }
                }
            }
        },
    );
    let mut parts = tagged
        .partition::<CapacityContainerBuilder<Vec<Tagged>>, _, _>(2, |tagged| match tagged {
            Tagged::Update(_) => (0, tagged),
            Tagged::Mark(_) => (1, tagged),
        })
        .into_iter();
    let (Some(updates), Some(marks)) = (parts.next(), parts.next()) else {
        unreachable!("partition into two gives two streams")
    };
    let updates = untag(updates, "StateTtlUpdates", |tagged| match tagged {
        Tagged::Update(update) => Some(update),
        Tagged::Mark(_) => None,
    });
    let marks = untag(marks, "StateTtlMarks", |tagged| match tagged {
        Tagged::Mark(mark) => Some(mark),
        Tagged::Update(_) => None,
    })
    .broadcast();
    (updates, marks)
}

/// The part of a partitioned stream `pick` keeps, untagged.
fn untag<'scope, D: Clone + 'static>(
    tagged: Stream<'scope, Watermark, Vec<Tagged>>,
    name: &str,
    pick: fn(Tagged) -> Option<D>,
) -> Stream<'scope, Watermark, Vec<D>> {
    tagged.unary::<CapacityContainerBuilder<Vec<D>>, _, _, _>(
        timely::dataflow::channels::pact::Pipeline,
        name,
        move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    output
                        .session(&cap)
                        .give_iterator(data.drain(..).filter_map(pick))
                });
            }
        },
    )
}

#[derive(Clone)]
enum Tagged {
    Update(((Vec<u8>, Vec<u8>), Watermark, isize)),
    Mark((Vec<u8>, Watermark, isize)),
}

/// `expire` for an operator whose output is keyed as its input (GROUP BY,
/// top-N), when a TTL is set: the updates to run on, and the marks for
/// `to_changelog`.
/// A keyed operator's input into differential (`encode` gives each batch's
/// `(key, row)` updates), its keys expired after the state TTL.
pub fn keyed_updates<'scope, F>(
    input: Stream<'scope, Watermark, crate::batch::Batch>,
    name: &str,
    encode: F,
    ttl: Option<Duration>,
    context: Arc<JobContext>,
) -> (Stream<'scope, Watermark, Updates>, Expired<'scope>)
where
    F: Fn(
            &datafusion::arrow::record_batch::RecordBatch,
            Watermark,
        ) -> Result<Updates, crate::error::EngineError>
        + 'static,
{
    let updates = crate::changelog::to_updates(input, name, encode, context.clone());
    expire_keys(updates, ttl, context)
}

pub fn expire_keys<'scope>(
    updates: Stream<'scope, Watermark, Updates>,
    ttl: Option<Duration>,
    context: Arc<JobContext>,
) -> (Stream<'scope, Watermark, Updates>, Expired<'scope>) {
    match ttl {
        Some(ttl) => {
            let (updates, marks) = expire(updates, ttl, MarkBy::Key, context);
            (updates, Some((marks, MarkBy::Key)))
        }
        None => (updates, None),
    }
}

/// `expire` for the two inputs of a join, keyed alike: a key is retracted
/// only once idle on both sides, so no output row of it is left half-made.
pub fn expire_pair<'scope>(
    left: Stream<'scope, Watermark, Updates>,
    right: Stream<'scope, Watermark, Updates>,
    ttl: Duration,
    context: Arc<JobContext>,
) -> (
    Stream<'scope, Watermark, Updates>,
    Stream<'scope, Watermark, Updates>,
    Stream<'scope, Watermark, Marks>,
) {
    use timely::dataflow::operators::core::{Concat, Map};
    let tag = |side: u8| {
        move |((key, row), time, diff): ((Vec<u8>, Vec<u8>), Watermark, isize)| {
            let mut tagged = Vec::with_capacity(row.len() + 1);
            tagged.push(side);
            tagged.extend_from_slice(&row);
            ((key, tagged), time, diff)
        }
    };
    let both = left.map(tag(0)).concat(right.map(tag(1)));
    let (both, marks) = expire(both, ttl, MarkBy::Row { skip: 1 }, context);
    let mut sides = both
        .partition::<CapacityContainerBuilder<Updates>, _, _>(2, |((key, tagged), time, diff)| {
            let side = tagged.first().copied().unwrap_or(0);
            let row = tagged.get(1..).unwrap_or_default().to_vec();
            (u64::from(side), ((key, row), time, diff))
        })
        .into_iter();
    let (Some(left), Some(right)) = (sides.next(), sides.next()) else {
        unreachable!("partition into two gives two streams")
    };
    (left, right, marks)
}
