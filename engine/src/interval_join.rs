//! Interval join: `l.ts BETWEEN r.ts - a AND r.ts + b` plus equi-keys.
//! Each side keeps its rows only while a future row of the other side could
//! still match them, which the other side's frontier bounds; unmatched rows
//! of an outer side are emitted when they leave.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::RowConverter;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::aggregate::millis;
use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::exchange;
use crate::join::{JoinSpec, KeyIndex, KeyedBatch, Matches, key_converter, unmatched};
use crate::time::{Millis, Watermark};

pub struct IntervalJoin {
    pub join: JoinSpec,
    /// Event-time columns of each side.
    pub left_time: usize,
    pub right_time: usize,
    /// A left row at `tl` matches right rows with `tr - tl` in
    /// `[lower, upper]` (the condition itself is also in `join.filter`).
    pub lower: Millis,
    pub upper: Millis,
    /// Routing columns of each side, hashing alike (empty: one worker).
    pub left_route: Vec<usize>,
    pub right_route: Vec<usize>,
}

/// Rows of one side that may still match.
struct Chunk {
    rows: KeyedBatch,
    index: KeyIndex,
    matched: Vec<bool>,
    max_time: Millis,
    /// Held at the time the rows arrived, which no row's event time is below.
    cap: Capability<Watermark>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

struct State {
    spec: Arc<IntervalJoin>,
    converter: RowConverter,
    left: Vec<Chunk>,
    right: Vec<Chunk>,
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
        let max_time = millis(batch.column(time_column))?
            .into_iter()
            .max()
            .unwrap_or(Millis::MIN);
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
                other.matched[j as usize] = true;
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
                let at = if other.cap.time() < cap.time() {
                    &other.cap
                } else {
                    &cap
                };
                output.session(at).give_container(&mut Batch::new(out));
            }
        }
        let index = rows.index();
        let chunk = Chunk {
            rows,
            index,
            matched,
            max_time,
            cap,
        };
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
        let (chunks, reach) = match side {
            // A left row at tl meets right rows up to tl + upper.
            Side::Left => (&mut self.left, spec.upper),
            // A right row at tr meets left rows up to tr - lower.
            Side::Right => (&mut self.right, spec.lower.saturating_neg()),
        };
        let mut kept = Vec::with_capacity(chunks.len());
        for chunk in chunks.drain(..) {
            let alive = other_frontier.is_some_and(|f| f <= chunk.max_time.saturating_add(reach));
            if alive {
                kept.push(chunk);
                continue;
            }
            let rows = &chunk.rows.batch;
            let kind = spec.join.kind;
            let out = match side {
                Side::Left if kind == crate::join::JoinKind::LeftSemi => {
                    let hit: Vec<u32> = (0..rows.num_rows() as u32)
                        .filter(|&i| chunk.matched[i as usize])
                        .collect();
                    Some(crate::join::take_rows(rows, &hit)?)
                }
                Side::Right if kind == crate::join::JoinKind::RightSemi => {
                    let hit: Vec<u32> = (0..rows.num_rows() as u32)
                        .filter(|&i| chunk.matched[i as usize])
                        .collect();
                    Some(crate::join::take_rows(rows, &hit)?)
                }
                Side::Left if kind.keeps_unmatched_left() => {
                    let lonely = lonely(&chunk.matched);
                    let empty = RecordBatch::new_empty(spec.join.right_schema.clone());
                    spec.join
                        .output(rows, &empty, &no_matches(), &lonely, &[])?
                }
                Side::Right if kind.keeps_unmatched_right() => {
                    let lonely = lonely(&chunk.matched);
                    let empty = RecordBatch::new_empty(spec.join.left_schema.clone());
                    spec.join
                        .output(&empty, rows, &no_matches(), &[], &lonely)?
                }
                _ => None,
            };
            if let Some(out) = out.filter(|b| b.num_rows() > 0) {
                let out =
                    RecordBatch::try_new(spec.join.output_schema.clone(), out.columns().to_vec())?;
                output
                    .session(&chunk.cap)
                    .give_container(&mut Batch::new(out));
            }
        }
        *chunks = kept;
        Ok(())
    }
}

fn lonely(matched: &[bool]) -> Vec<u32> {
    let hits: Vec<u32> = (0..matched.len() as u32)
        .filter(|&i| matched[i as usize])
        .collect();
    unmatched(matched.len(), &hits)
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
    let converter = key_converter(&spec.join.left_keys, &spec.join.left_schema)?;
    let routes = (spec.left_route.clone(), spec.right_route.clone());
    Ok(
        left.binary_frontier::<_, CapacityContainerBuilder<Batch>, _, _, _, _>(
            right,
            exchange::by_key(routes.0),
            exchange::by_key(routes.1),
            "IntervalJoin",
            move |_cap, _info| {
                let mut state = State {
                    spec,
                    converter,
                    left: Vec::new(),
                    right: Vec::new(),
                };
                move |(left, left_frontier), (right, right_frontier), output| {
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
                }
            },
        ),
    )
}

impl crate::join::JoinKind {
    fn is_semi_or_anti(self) -> bool {
        use crate::join::JoinKind::*;
        matches!(self, LeftSemi | LeftAnti | RightSemi | RightAnti)
    }
}
