//! Interval join: `l.ts BETWEEN r.ts - a AND r.ts + b` plus equi-keys.
//! Each side keeps its rows only while a future row of the other side could
//! still match them, which the other side's frontier bounds; unmatched rows
//! of an outer side are emitted when they leave.
//!
//! The same operator runs a regular inner join under
//! `table.exec.state.ttl`: rows are then kept for the TTL after they
//! arrive, as Flink keeps join state, and dropped without retracting what
//! they joined.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::RowConverter;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::join::kernel::{JoinSpec, KeyIndex, KeyedBatch, Matches, key_converter};
use crate::runtime::exchange;
use crate::time::{Millis, Watermark};
use crate::window::state::millis;

mod checkpoint;
use checkpoint::Checkpointed;

pub struct IntervalJoin {
    pub join: JoinSpec,
    /// Event-time columns of each side.
    pub left_time: usize,
    pub right_time: usize,
    pub expiry: Expiry,
    /// Routing columns of each side, hashing alike (empty: one worker).
    pub left_route: Vec<usize>,
    pub right_route: Vec<usize>,
}

/// How long rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A left row at `tl` matches right rows with `tr - tl` in `[lower,
    /// upper]` (the condition itself is also in `join.filter`): it leaves
    /// when the right frontier passes `tl + upper`.
    Interval { lower: Millis, upper: Millis },
    /// Kept this long after arriving (a regular inner join's state TTL).
    /// The output has no time attribute, so it travels at the arriving
    /// row's time and no capability is held for stored rows.
    Ttl(std::time::Duration),
    /// Kept until the other side ends: a regular inner join of two
    /// append-only inputs, which only ever inserts; `append_join` runs it.
    Never,
}

/// Rows of one side that may still match.
struct Chunk {
    rows: KeyedBatch,
    index: KeyIndex,
    matched: Vec<bool>,
    max_time: Millis,
    arrived: std::time::Instant,
    /// Held at the time the rows arrived, which no row's event time is
    /// below (interval joins only).
    cap: Option<Capability<Watermark>>,
    /// Names the chunk in checkpoints.
    id: u64,
    /// Arrived since the last snapshot: the next delta holds it whole.
    fresh: bool,
    /// A matched flag was set since the last snapshot.
    flags_changed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Left = 0,
    Right = 1,
}

struct State {
    spec: Arc<IntervalJoin>,
    context: Arc<JobContext>,
    converter: RowConverter,
    left: Vec<Chunk>,
    right: Vec<Chunk>,
    next_id: u64,
    /// What the next delta must say besides fresh chunks and new flags:
    /// the chunks of the last snapshot gone since, per side; and how many
    /// deltas the chain has (`None`: no snapshot to build on).
    gone: [Vec<u64>; 2],
    deltas: Option<usize>,
}

type Out<'a> = timely::dataflow::operators::generic::OutputBuilderSession<
    'a,
    Watermark,
    CapacityContainerBuilder<Batch>,
>;

impl State {
    /// Matches a new batch of `side` against the other side's chunks,
    /// emits the pairs, and keeps the batch.
    fn arrive(
        &mut self,
        side: Side,
        batch: RecordBatch,
        cap: Capability<Watermark>,
        output: &mut Out<'_>,
    ) -> Result<(), EngineError> {
        let spec = self.spec.clone();
        let (keys, time_column) = match side {
            Side::Left => (&spec.join.left_keys, spec.left_time),
            Side::Right => (&spec.join.right_keys, spec.right_time),
        };
        // Only an interval join's rows leave by their event time; the
        // others need not have a time column at all.
        let max_time = match spec.expiry {
            Expiry::Interval { .. } => millis(batch.column(time_column))?
                .into_iter()
                .max()
                .unwrap_or(Millis::MIN),
            Expiry::Ttl(_) | Expiry::Never => Millis::MIN,
        };
        let rows = KeyedBatch::new(batch, keys, &self.converter)?;
        let mut matched = vec![false; rows.len()];
        let others = match side {
            Side::Left => &mut self.right,
            Side::Right => &mut self.left,
        };
        for other in others.iter_mut() {
            let (mine, theirs) = rows.probe(&other.index);
            if mine.is_empty() {
                continue;
            }
            let matches = match side {
                Side::Left => {
                    spec.join
                        .filter_pairs(&rows.batch, &other.rows.batch, mine, theirs)?
                }
                Side::Right => {
                    let m = spec
                        .join
                        .filter_pairs(&other.rows.batch, &rows.batch, theirs, mine)?;
                    Matches {
                        left: m.right,
                        right: m.left,
                    }
                }
            };
            // `matches.left` indexes the new rows, `matches.right` the chunk.
            for &i in &matches.left {
                matched[i as usize] = true;
            }
            for &j in &matches.right {
                let flag = &mut other.matched[j as usize];
                other.flags_changed |= !*flag;
                *flag = true;
            }
            if matches.left.is_empty() || spec.join.kind.is_semi_or_anti() {
                continue;
            }
            let out = match side {
                Side::Left => {
                    spec.join
                        .output(&rows.batch, &other.rows.batch, &matches, &[], &[])?
                }
                Side::Right => spec.join.output(
                    &other.rows.batch,
                    &rows.batch,
                    &Matches {
                        left: matches.right,
                        right: matches.left,
                    },
                    &[],
                    &[],
                )?,
            };
            if let Some(out) = out {
                let at = match &other.cap {
                    Some(held) if held.time() < cap.time() => held,
                    _ => &cap,
                };
                output.session(at).give_container(&mut Batch::new(out));
            }
        }
        let index = rows.index();
        JobContext::add(&self.context.state_rows, rows.len());
        let holds_time = matches!(spec.expiry, Expiry::Interval { .. });
        let chunk = Chunk {
            rows,
            index,
            matched,
            max_time,
            arrived: std::time::Instant::now(),
            cap: holds_time.then_some(cap),
            id: self.next_id,
            fresh: true,
            flags_changed: false,
        };
        self.next_id += 1;
        match side {
            Side::Left => self.left.push(chunk),
            Side::Right => self.right.push(chunk),
        }
        Ok(())
    }

    /// Drops the chunks of `side` that no future row of the other side can
    /// match, given that side's frontier (`None`: it has ended), emitting
    /// what an outer, semi or anti join owes for them.
    fn expire(
        &mut self,
        side: Side,
        other_frontier: Option<Watermark>,
        output: &mut Out<'_>,
    ) -> Result<(), EngineError> {
        let spec = self.spec.clone();
        let chunks = match side {
            Side::Left => &mut self.left,
            Side::Right => &mut self.right,
        };
        let mut kept = Vec::with_capacity(chunks.len());
        for chunk in chunks.drain(..) {
            let alive = other_frontier.is_some_and(|f| match spec.expiry {
                // A left row at tl meets right rows up to tl + upper, a
                // right row at tr left rows up to tr - lower.
                Expiry::Interval { lower, upper } => {
                    let reach = match side {
                        Side::Left => upper,
                        Side::Right => lower.saturating_neg(),
                    };
                    f <= chunk.max_time.saturating_add(reach)
                }
                Expiry::Ttl(ttl) => chunk.arrived.elapsed() < ttl,
                Expiry::Never => true,
            });
            if alive {
                kept.push(chunk);
                continue;
            }
            if !chunk.fresh {
                self.gone[side as usize].push(chunk.id);
            }
            self.context.state_rows.fetch_sub(
                chunk.rows.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            let rows = &chunk.rows.batch;
            let kind = spec.join.kind;
            let semi = matches!(
                (side, kind),
                (Side::Left, crate::join::kernel::JoinKind::LeftSemi)
                    | (Side::Right, crate::join::kernel::JoinKind::RightSemi)
            );
            let out = match side {
                _ if semi => Some(crate::join::kernel::take_rows(
                    rows,
                    &with(&chunk.matched, true),
                )?),
                Side::Left if kind.keeps_unmatched_left() => {
                    let lonely = with(&chunk.matched, false);
                    let empty = RecordBatch::new_empty(spec.join.right_schema.clone());
                    spec.join
                        .output(rows, &empty, &no_matches(), &lonely, &[])?
                }
                Side::Right if kind.keeps_unmatched_right() => {
                    let lonely = with(&chunk.matched, false);
                    let empty = RecordBatch::new_empty(spec.join.left_schema.clone());
                    spec.join
                        .output(&empty, rows, &no_matches(), &[], &lonely)?
                }
                _ => None,
            };
            if let Some(out) = out.filter(|b| b.num_rows() > 0) {
                let out =
                    RecordBatch::try_new(spec.join.output_schema.clone(), out.columns().to_vec())?;
                if let Some(cap) = &chunk.cap {
                    output.session(cap).give_container(&mut Batch::new(out));
                }
            }
        }
        *chunks = kept;
        Ok(())
    }
}

/// The rows whose matched flag is `flag`.
fn with(matched: &[bool], flag: bool) -> Vec<u32> {
    (0..matched.len() as u32)
        .filter(|&i| matched[i as usize] == flag)
        .collect()
}

fn no_matches() -> Matches {
    Matches {
        left: Vec::new(),
        right: Vec::new(),
    }
}

fn least(frontier: &timely::progress::frontier::MutableAntichain<Watermark>) -> Option<Watermark> {
    frontier.frontier().first().copied()
}

pub fn interval_join<'scope>(
    left: Stream<'scope, Watermark, Batch>,
    right: Stream<'scope, Watermark, Batch>,
    spec: Arc<IntervalJoin>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    if spec.expiry == Expiry::Never {
        return crate::join::append::append_join(left, right, spec, context);
    }
    let converter = key_converter(&spec.join.left_keys, &spec.join.left_schema)?;
    let routes = (spec.left_route.clone(), spec.right_route.clone());
    let scope = left.scope();
    let ttl = match spec.expiry {
        Expiry::Ttl(ttl) => Some(ttl),
        Expiry::Interval { .. } | Expiry::Never => None,
    };
    let stream = left.binary_frontier::<_, CapacityContainerBuilder<Batch>, _, _, _, _>(
        right,
        exchange::by_key(routes.0),
        exchange::by_key(routes.1),
        "IntervalJoin",
        move |initial, info| {
            let activator = scope.activator_for(info.address);
            let state = Rc::new(RefCell::new(State {
                context: context.clone(),
                spec,
                converter,
                left: Vec::new(),
                right: Vec::new(),
                next_id: 0,
                gone: [Vec::new(), Vec::new()],
                deltas: None,
            }));
            let checkpointed = Rc::new(Checkpointed(state.clone()));
            let register = crate::checkpoint::worker::register_incremental;
            if let Some(pieces) = register("IntervalJoin", checkpointed)
                && let Err(error) = state.borrow_mut().restore_chain(&pieces, &initial)
            {
                context.fail(error);
            }
            move |(left, left_frontier), (right, right_frontier), output| {
                let mut state = state.borrow_mut();
                let mut result = Ok(());
                left.for_each(|cap, data| {
                    if let (Some(batch), Some(held)) = (data.take(), cap.retain_least(0))
                        && result.is_ok()
                    {
                        result = state.arrive(Side::Left, batch, held, output);
                    }
                });
                right.for_each(|cap, data| {
                    if let (Some(batch), Some(held)) = (data.take(), cap.retain_least(0))
                        && result.is_ok()
                    {
                        result = state.arrive(Side::Right, batch, held, output);
                    }
                });
                let result = result
                    .and_then(|()| state.expire(Side::Left, least(right_frontier), output))
                    .and_then(|()| state.expire(Side::Right, least(left_frontier), output));
                if let Err(error) = result {
                    context.fail(error);
                }
                // State under a TTL leaves with time, not with input.
                if let Some(ttl) = ttl
                    && !(state.left.is_empty() && state.right.is_empty())
                {
                    activator.activate_after(ttl / 4);
                }
            }
        },
    );
    Ok(stream)
}

impl crate::join::kernel::JoinKind {
    fn is_semi_or_anti(self) -> bool {
        use crate::join::kernel::JoinKind::*;
        matches!(self, LeftSemi | LeftAnti | RightSemi | RightAnti)
    }
}
