//! One partition's OVER state: its aggregates' accumulators and, for a
//! bounded frame, the argument values of the rows still inside it, so that
//! they can be taken back out as the frame moves on.

use std::collections::VecDeque;

use datafusion::arrow::array::ArrayRef;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::scalar::ScalarValue;

use crate::error::EngineError;
use crate::time::Millis;

/// The frame of `agg(...) OVER (... ORDER BY time <frame>)`, always ending
/// at the current row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `ROWS BETWEEN n PRECEDING AND CURRENT ROW` (`None`: UNBOUNDED).
    Rows { preceding: Option<u64> },
    /// `RANGE BETWEEN <interval> PRECEDING AND CURRENT ROW` in
    /// milliseconds (`None`: UNBOUNDED); rows of equal time are peers and
    /// share one result.
    Range { preceding: Option<Millis> },
}

impl Frame {
    pub(crate) fn is_bounded(self) -> bool {
        matches!(
            self,
            Frame::Rows { preceding: Some(_) } | Frame::Range { preceding: Some(_) }
        )
    }
}

/// How one aggregate follows the frame.
enum Running {
    /// Rows added (and, for a bounded frame, taken back) as they enter and
    /// leave it.
    Accumulating(Box<dyn Accumulator>),
    /// An aggregate that cannot take a row back (FIRST_VALUE, a DISTINCT
    /// one), over a bounded frame: computed afresh over the frame's rows.
    Recomputed,
}

/// Rows of one batch that entered the frame: their times and the
/// aggregates' distinct argument arrays.
struct Chunk {
    times: Vec<Millis>,
    inputs: Vec<ArrayRef>,
    /// Rows before this have left the frame.
    start: usize,
    /// Rows from this on have not entered it yet.
    end: usize,
}

/// Which of the distinct argument arrays each aggregate takes, and a
/// buffer to hand them over in, so that a row costs no allocation of its
/// own beyond the slices.
pub struct Arguments {
    pub of_aggregate: Vec<Vec<usize>>,
    buffer: Vec<ArrayRef>,
}

impl Arguments {
    pub fn new(of_aggregate: Vec<Vec<usize>>) -> Self {
        Arguments {
            of_aggregate,
            buffer: Vec::new(),
        }
    }

    fn of(&mut self, aggregate: usize, inputs: &[ArrayRef]) -> &[ArrayRef] {
        self.buffer.clear();
        self.buffer.extend(
            self.of_aggregate[aggregate]
                .iter()
                .map(|&i| inputs[i].clone()),
        );
        &self.buffer
    }
}

pub struct PartitionState {
    running: Vec<Running>,
    /// Only for bounded frames.
    frame_rows: VecDeque<Chunk>,
    rows_in_frame: u64,
    /// The time of the latest row, for dropping idle partitions.
    pub last_time: Millis,
    /// When the latest row arrived, for the state TTL.
    pub last_seen: std::time::Instant,
}

impl PartitionState {
    pub fn new(
        aggregates: &[std::sync::Arc<AggregateFunctionExpr>],
        frame: Frame,
    ) -> Result<Self, EngineError> {
        let running = aggregates
            .iter()
            .map(|aggregate| {
                if !frame.is_bounded() {
                    return Ok(Running::Accumulating(aggregate.create_accumulator()?));
                }
                Ok(match aggregate.create_sliding_accumulator() {
                    Ok(accumulator) => Running::Accumulating(accumulator),
                    Err(_) => Running::Recomputed,
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(PartitionState {
            running,
            frame_rows: VecDeque::new(),
            rows_in_frame: 0,
            last_time: Millis::MIN,
            last_seen: std::time::Instant::now(),
        })
    }

    /// Takes in one partition's new rows, in time order (ties in arrival
    /// order), with the distinct argument arrays of the aggregates, and
    /// pushes each row's value of every aggregate to `out`.
    pub fn advance(
        &mut self,
        aggregates: &[std::sync::Arc<AggregateFunctionExpr>],
        arguments: &mut Arguments,
        frame: Frame,
        times: &[Millis],
        inputs: Vec<ArrayRef>,
        out: &mut [Vec<ScalarValue>],
    ) -> Result<(), EngineError> {
        let rows = times.len();
        if rows == 0 {
            return Ok(());
        }
        let bounded = frame.is_bounded();
        let mut inputs = inputs;
        if let Frame::Rows { preceding: Some(_) } = frame {
            // A ROWS frame may hold a row for as long as its partition is
            // quiet: a copy, so as not to keep the whole batch alive. A
            // RANGE frame lets go of a batch's rows within its interval.
            inputs = inputs.iter().map(owned).collect::<Result<_, _>>()?;
        }
        if bounded {
            self.frame_rows.push_back(Chunk {
                times: times.to_vec(),
                inputs: inputs.clone(),
                start: 0,
                end: 0,
            });
        }
        let mut run_inputs: Vec<ArrayRef> = Vec::with_capacity(inputs.len());
        let mut row = 0;
        while row < rows {
            let time = times[row];
            let run_end = match frame {
                Frame::Rows { .. } => row + 1,
                Frame::Range { .. } => {
                    row + times[row..].iter().take_while(|&&t| t == time).count()
                }
            };
            let run = run_end - row;
            run_inputs.clear();
            run_inputs.extend(inputs.iter().map(|a| a.slice(row, run)));
            for (a, running) in self.running.iter_mut().enumerate() {
                if let Running::Accumulating(accumulator) = running {
                    accumulator.update_batch(arguments.of(a, &run_inputs))?;
                }
            }
            if bounded {
                if let Some(last) = self.frame_rows.back_mut() {
                    last.end = run_end;
                }
                self.rows_in_frame += run as u64;
                self.leave(arguments, frame, time)?;
            }
            for (a, running) in self.running.iter_mut().enumerate() {
                let value = match running {
                    Running::Accumulating(accumulator) => accumulator.evaluate()?,
                    Running::Recomputed => {
                        recompute(&aggregates[a], &self.frame_rows, &arguments.of_aggregate[a])?
                    }
                };
                out[a].extend(std::iter::repeat_n(value, run));
            }
            row = run_end;
        }
        self.last_time = times[rows - 1];
        self.last_seen = std::time::Instant::now();
        if bounded {
            self.merge_chunks()?;
        }
        Ok(())
    }

    /// Merges the newest chunk into the one before while that one holds no
    /// more rows, as a binary counter carries: a partition's frame stays in
    /// a few chunks however it arrived, and each row is copied a
    /// logarithmic number of times.
    fn merge_chunks(&mut self) -> Result<(), EngineError> {
        while self.frame_rows.len() >= 2 {
            let last = self.frame_rows.len() - 1;
            let live = |c: &Chunk| c.end - c.start;
            if live(&self.frame_rows[last - 1]) > live(&self.frame_rows[last]) {
                return Ok(());
            }
            let (Some(newer), Some(older)) =
                (self.frame_rows.pop_back(), self.frame_rows.pop_back())
            else {
                return Ok(());
            };
            let mut times = older.times[older.start..older.end].to_vec();
            times.extend_from_slice(&newer.times[newer.start..newer.end]);
            let inputs = older
                .inputs
                .iter()
                .zip(&newer.inputs)
                .map(|(a, b)| {
                    let a = a.slice(older.start, older.end - older.start);
                    let b = b.slice(newer.start, newer.end - newer.start);
                    Ok(datafusion::arrow::compute::concat(&[
                        a.as_ref(),
                        b.as_ref(),
                    ])?)
                })
                .collect::<Result<Vec<_>, EngineError>>()?;
            let end = times.len();
            self.frame_rows.push_back(Chunk {
                times,
                inputs,
                start: 0,
                end,
            });
        }
        Ok(())
    }

    /// Takes back the rows the frame of a row at `time` no longer holds.
    fn leave(
        &mut self,
        arguments: &mut Arguments,
        frame: Frame,
        time: Millis,
    ) -> Result<(), EngineError> {
        loop {
            let Some(front) = self.frame_rows.front_mut() else {
                return Ok(());
            };
            let leaving = match frame {
                Frame::Rows { preceding: Some(n) } => {
                    let excess = self.rows_in_frame.saturating_sub(n + 1) as usize;
                    excess.min(front.end - front.start)
                }
                Frame::Range {
                    preceding: Some(interval),
                } => {
                    let horizon = time.saturating_sub(interval);
                    front.times[front.start..front.end]
                        .iter()
                        .take_while(|&&t| t < horizon)
                        .count()
                }
                _ => 0,
            };
            if leaving > 0 {
                let slices: Vec<ArrayRef> = front
                    .inputs
                    .iter()
                    .map(|a| a.slice(front.start, leaving))
                    .collect();
                for (a, running) in self.running.iter_mut().enumerate() {
                    if let Running::Accumulating(accumulator) = running {
                        accumulator.retract_batch(arguments.of(a, &slices))?;
                    }
                }
                front.start += leaving;
                self.rows_in_frame -= leaving as u64;
            }
            if front.start == front.times.len() {
                self.frame_rows.pop_front();
                continue;
            }
            return Ok(());
        }
    }
}

/// The value of an aggregate over the rows now in the frame, from scratch.
fn recompute(
    aggregate: &AggregateFunctionExpr,
    frame_rows: &VecDeque<Chunk>,
    arguments: &[usize],
) -> Result<ScalarValue, EngineError> {
    let mut accumulator = aggregate.create_accumulator()?;
    for chunk in frame_rows {
        if chunk.end > chunk.start {
            let slices: Vec<ArrayRef> = arguments
                .iter()
                .map(|&i| chunk.inputs[i].slice(chunk.start, chunk.end - chunk.start))
                .collect();
            accumulator.update_batch(&slices)?;
        }
    }
    Ok(accumulator.evaluate()?)
}

/// What a checkpoint keeps of a partition. A bounded frame keeps its rows
/// (a bounded number) and rebuilds its accumulators from them on restore,
/// since a sliding MIN/MAX's intermediate state does not hold the rows it
/// must later take back; an unbounded frame keeps no rows, only its
/// accumulators' intermediate states.
impl PartitionState {
    /// The rows still in the frame, oldest first: their times and the
    /// distinct argument arrays (slices, none if the frame is empty).
    pub(crate) fn frame_rows(&self) -> (Vec<Millis>, Vec<Vec<ArrayRef>>) {
        let mut times = Vec::with_capacity(self.rows_in_frame as usize);
        let mut inputs = Vec::new();
        for chunk in &self.frame_rows {
            if chunk.end > chunk.start {
                times.extend_from_slice(&chunk.times[chunk.start..chunk.end]);
                inputs.push(
                    chunk
                        .inputs
                        .iter()
                        .map(|a| a.slice(chunk.start, chunk.end - chunk.start))
                        .collect(),
                );
            }
        }
        (times, inputs)
    }

    /// Each aggregate's intermediate state (unbounded frames). Taking it
    /// may consume an accumulator's state (DataFusion's `state` is called
    /// once in a query), so each accumulator is made anew from it, as a
    /// restore makes it: a job goes on alike whether it was restored or not.
    pub(crate) fn take_states(
        &mut self,
        aggregates: &[std::sync::Arc<AggregateFunctionExpr>],
    ) -> Result<Vec<Vec<ScalarValue>>, EngineError> {
        let mut states = Vec::with_capacity(self.running.len());
        for (running, aggregate) in self.running.iter_mut().zip(aggregates) {
            let Running::Accumulating(accumulator) = running else {
                return Err(EngineError::Runtime(
                    "an unbounded OVER frame recomputes an aggregate".into(),
                ));
            };
            let state = accumulator.state()?;
            let mut fresh = aggregate.create_accumulator()?;
            let arrays = state
                .iter()
                .map(|value| Ok(value.to_array()?))
                .collect::<Result<Vec<ArrayRef>, EngineError>>()?;
            fresh.merge_batch(&arrays)?;
            *accumulator = fresh;
            states.push(state);
        }
        Ok(states)
    }

    /// A partition as a checkpoint left it: the rows in its frame (bounded
    /// frames), which its accumulators take in again, or its accumulators'
    /// states (unbounded ones, one row of each state array per aggregate).
    /// The caller has checked the arrays' types.
    pub(crate) fn restored(
        aggregates: &[std::sync::Arc<AggregateFunctionExpr>],
        arguments: &mut Arguments,
        frame: Frame,
        last_time: Millis,
        times: Vec<Millis>,
        inputs: Vec<ArrayRef>,
        states: &[Vec<ArrayRef>],
    ) -> Result<Self, EngineError> {
        let mut partition = PartitionState::new(aggregates, frame)?;
        partition.last_time = last_time;
        if frame.is_bounded() {
            let rows = times.len();
            if rows > 0 {
                for (a, running) in partition.running.iter_mut().enumerate() {
                    if let Running::Accumulating(accumulator) = running {
                        accumulator.update_batch(arguments.of(a, &inputs))?;
                    }
                }
                partition.frame_rows.push_back(Chunk {
                    times,
                    inputs,
                    start: 0,
                    end: rows,
                });
            }
            partition.rows_in_frame = rows as u64;
            return Ok(partition);
        }
        for (running, state) in partition.running.iter_mut().zip(states) {
            if let Running::Accumulating(accumulator) = running {
                accumulator.merge_batch(state)?;
            }
        }
        Ok(partition)
    }
}

/// A copy of `array` in buffers of its own.
fn owned(array: &ArrayRef) -> Result<ArrayRef, EngineError> {
    use datafusion::arrow::array::{MutableArrayData, make_array};
    let data = array.to_data();
    let mut copy = MutableArrayData::new(vec![&data], false, array.len());
    copy.try_extend(0, 0, array.len())?;
    Ok(make_array(copy.freeze()))
}
