//! An interval join's checkpoint. Layout version 2: a version, a kind
//! (0 whole, 1 delta), then per side (left first): for a delta, the ids
//! of the chunks of the last snapshot gone since, and the chunks of the
//! last snapshot whose matched flags changed (id and flags); then the
//! chunks the piece holds whole (a whole state: all; a delta: those that
//! arrived since), each as its id, `max_time`, the time of its capability
//! (if it holds one), its matched flags (a byte a row) and its rows (Arrow
//! IPC). Version 1 (whole states without ids) still reads.
//!
//! A chunk's rows never change, so a snapshot hands them over as they are
//! and the committer encodes them (`Snapshot::Later`): the job waits only
//! for the flags to be copied. The arrival instants a TTL counts from are
//! not kept: restored rows count as arrived now, which gives them at most
//! the downtime as extra time to live.

use std::cell::RefCell;
use std::rc::Rc;

use datafusion::arrow::record_batch::RecordBatch;
use timely::dataflow::operators::Capability;

use super::{Chunk, Expiry, Side, State};
use crate::checkpoint::codec::{corrupt, new_state, seal, unseal};
use crate::checkpoint::encoding::{
    Reader, batches_from_bytes, put_batches_bytes, put_bytes, put_i64, put_u32,
};
use crate::checkpoint::worker::{OperatorState, Snapshot};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::join::kernel::KeyedBatch;
use crate::time::{Millis, Watermark};

const WHOLE_ONLY: u32 = 1;
const STATE_VERSION: u32 = 2;
const WHOLE: u8 = 0;
const DELTA: u8 = 1;

/// A whole snapshot after this many deltas, so that a restore reads few.
const DELTAS_PER_WHOLE: usize = 16;

/// One chunk as a checkpoint holds it: its rows are shared, never copied.
struct Saved {
    id: u64,
    max_time: Millis,
    cap_time: Option<Watermark>,
    matched: Vec<u8>,
    rows: RecordBatch,
}

impl Saved {
    fn of(chunk: &Chunk) -> Self {
        Saved {
            id: chunk.id,
            max_time: chunk.max_time,
            cap_time: chunk.cap.as_ref().map(|cap| *cap.time()),
            matched: flags(&chunk.matched),
            rows: chunk.rows.batch.clone(),
        }
    }

    fn put(&self, out: &mut Vec<u8>) -> Result<(), EngineError> {
        put_i64(out, self.id as i64);
        put_i64(out, self.max_time);
        match self.cap_time {
            Some(time) => {
                put_u32(out, 1);
                put_i64(out, time);
            }
            None => put_u32(out, 0),
        }
        put_bytes(out, &self.matched);
        put_batches_bytes(out, &self.rows.schema(), std::slice::from_ref(&self.rows))?;
        Ok(())
    }
}

fn flags(matched: &[bool]) -> Vec<u8> {
    matched.iter().map(|&m| u8::from(m)).collect()
}

/// One side's part of a snapshot.
#[derive(Default)]
struct SidePart {
    gone: Vec<u64>,
    flags: Vec<(u64, Vec<u8>)>,
    chunks: Vec<Saved>,
}

impl State {
    /// A delta where allowed and the chain is not too long or too large
    /// (the fresh rows at most half of all), else the whole state.
    fn snapshot_checkpoint(&mut self, delta_allowed: bool) -> Snapshot {
        let rows = |chunks: &[Chunk], fresh_only: bool| -> usize {
            chunks
                .iter()
                .filter(|c| c.fresh || !fresh_only)
                .map(|c| c.rows.len())
                .sum()
        };
        let all = rows(&self.left, false) + rows(&self.right, false);
        let fresh = rows(&self.left, true) + rows(&self.right, true);
        let delta = delta_allowed
            && self.deltas.is_some_and(|d| d < DELTAS_PER_WHOLE)
            && fresh * 2 <= all.max(1);
        let mut parts: [SidePart; 2] = Default::default();
        for (side, chunks) in [(Side::Left, &mut self.left), (Side::Right, &mut self.right)] {
            let part = &mut parts[side as usize];
            if delta {
                part.gone = std::mem::take(&mut self.gone[side as usize]);
            }
            for chunk in chunks.iter_mut() {
                if !delta || chunk.fresh {
                    part.chunks.push(Saved::of(chunk));
                } else if chunk.flags_changed {
                    part.flags.push((chunk.id, flags(&chunk.matched)));
                }
                chunk.fresh = false;
                chunk.flags_changed = false;
            }
        }
        self.gone = [Vec::new(), Vec::new()];
        self.deltas = Some(match delta {
            true => self.deltas.unwrap_or(0) + 1,
            false => 0,
        });
        Snapshot::Later {
            delta,
            encode: Box::new(move || encode(delta, &parts)),
        }
    }

    /// A whole state (or a version-1 one) and the deltas on it, in order;
    /// capabilities are made anew from the operator's initial one.
    pub(super) fn restore_chain(
        &mut self,
        pieces: &[Vec<u8>],
        initial: &Capability<Watermark>,
    ) -> Result<(), EngineError> {
        for (i, piece) in pieces.iter().enumerate() {
            let mut reader = Reader::new(unseal(piece)?);
            match (reader.u32()?, i) {
                (WHOLE_ONLY, 0) => self.read_version_1(&mut reader, initial)?,
                (STATE_VERSION, _) => {
                    let kind = reader.take(1)?[0];
                    match (kind, i) {
                        (WHOLE, 0) | (DELTA, 1..) => self.apply(&mut reader, kind, initial)?,
                        _ => return Err(corrupt("an interval join state out of its chain")),
                    }
                }
                _ => return Err(corrupt("an interval join state of another version")),
            }
            if !reader.is_empty() {
                return Err(corrupt("trailing bytes after an interval join state"));
            }
        }
        let rows: usize = self
            .left
            .iter()
            .chain(&self.right)
            .map(|c| c.rows.len())
            .sum();
        JobContext::add(&self.context.state_rows, rows);
        self.next_id = self
            .left
            .iter()
            .chain(&self.right)
            .map(|c| c.id + 1)
            .max()
            .unwrap_or(0);
        // What was restored is the base the next delta builds on.
        self.deltas = Some(0);
        Ok(())
    }

    fn apply(
        &mut self,
        reader: &mut Reader<'_>,
        kind: u8,
        initial: &Capability<Watermark>,
    ) -> Result<(), EngineError> {
        for side in [Side::Left, Side::Right] {
            if kind == DELTA {
                let mut gone = std::collections::HashSet::new();
                for _ in 0..reader.u32()? {
                    gone.insert(reader.i64()? as u64);
                }
                let chunks = self.chunks(side);
                let before = chunks.len();
                chunks.retain(|c| !gone.contains(&c.id));
                if before - chunks.len() != gone.len() {
                    return Err(corrupt("an interval join delta drops a chunk it lacks"));
                }
                for _ in 0..reader.u32()? {
                    let id = reader.i64()? as u64;
                    let matched = read_flags(reader.bytes()?)?;
                    let chunk = self
                        .chunks(side)
                        .iter_mut()
                        .find(|c| c.id == id)
                        .ok_or_else(|| corrupt("an interval join delta flags a chunk it lacks"))?;
                    if chunk.matched.len() != matched.len() {
                        return Err(corrupt("an interval join chunk's flags and rows differ"));
                    }
                    chunk.matched = matched;
                }
            }
            for _ in 0..reader.u32()? {
                let id = reader.i64()? as u64;
                let chunk = self.read_chunk(reader, side, initial, id)?;
                if self.chunks(side).iter().any(|c| c.id == id) {
                    return Err(corrupt("an interval join chunk twice"));
                }
                self.chunks(side).push(chunk);
            }
        }
        Ok(())
    }

    fn read_version_1(
        &mut self,
        reader: &mut Reader<'_>,
        initial: &Capability<Watermark>,
    ) -> Result<(), EngineError> {
        let mut id = 0;
        for side in [Side::Left, Side::Right] {
            for _ in 0..reader.u32()? {
                let chunk = self.read_chunk(reader, side, initial, id)?;
                self.chunks(side).push(chunk);
                id += 1;
            }
        }
        Ok(())
    }

    fn chunks(&mut self, side: Side) -> &mut Vec<Chunk> {
        match side {
            Side::Left => &mut self.left,
            Side::Right => &mut self.right,
        }
    }

    fn read_chunk(
        &self,
        reader: &mut Reader<'_>,
        side: Side,
        initial: &Capability<Watermark>,
        id: u64,
    ) -> Result<Chunk, EngineError> {
        let max_time = reader.i64()?;
        let cap_time = match reader.u32()? {
            0 => None,
            1 => Some(reader.i64()?),
            _ => return Err(corrupt("an interval join chunk's capability flag")),
        };
        let holds_time = matches!(self.spec.expiry, Expiry::Interval { .. });
        if cap_time.is_some() != holds_time {
            return Err(corrupt("an interval join chunk's capability"));
        }
        let matched = read_flags(reader.bytes()?)?;
        let batch = self.read_rows(reader.bytes()?, side)?;
        if batch.num_rows() != matched.len() {
            return Err(corrupt("an interval join chunk's rows and flags differ"));
        }
        let keys = match side {
            Side::Left => &self.spec.join.left_keys,
            Side::Right => &self.spec.join.right_keys,
        };
        let rows = KeyedBatch::new(batch, keys, &self.converter)?;
        let cap = cap_time
            .map(|time| {
                initial
                    .try_delayed(&time)
                    .ok_or_else(|| corrupt("an interval join chunk's time"))
            })
            .transpose()?;
        Ok(Chunk {
            index: rows.index(),
            rows,
            matched,
            max_time,
            arrived: std::time::Instant::now(),
            cap,
            id,
            fresh: false,
            flags_changed: false,
        })
    }

    /// One chunk's rows, which must have the side's column types: the
    /// join reads them by position.
    fn read_rows(&self, bytes: &[u8], side: Side) -> Result<RecordBatch, EngineError> {
        let schema = match side {
            Side::Left => &self.spec.join.left_schema,
            Side::Right => &self.spec.join.right_schema,
        };
        let mut batches = batches_from_bytes(bytes)?;
        let (Some(batch), true) = (batches.pop(), batches.is_empty()) else {
            return Err(corrupt("an interval join chunk is not one batch"));
        };
        let fits = batch.num_columns() == schema.fields().len()
            && batch
                .columns()
                .iter()
                .zip(schema.fields())
                .all(|(column, field)| column.data_type() == field.data_type());
        if !fits {
            return Err(corrupt("an interval join chunk has other columns"));
        }
        Ok(batch)
    }
}

fn read_flags(bytes: &[u8]) -> Result<Vec<bool>, EngineError> {
    bytes
        .iter()
        .map(|&flag| match flag {
            0 | 1 => Ok(flag == 1),
            _ => Err(corrupt("an interval join chunk's matched flags")),
        })
        .collect()
}

fn encode(delta: bool, parts: &[SidePart; 2]) -> Result<Vec<u8>, EngineError> {
    let mut out = new_state(STATE_VERSION);
    out.push(if delta { DELTA } else { WHOLE });
    for part in parts {
        if delta {
            put_u32(&mut out, part.gone.len() as u32);
            for id in &part.gone {
                put_i64(&mut out, *id as i64);
            }
            put_u32(&mut out, part.flags.len() as u32);
            for (id, flags) in &part.flags {
                put_i64(&mut out, *id as i64);
                put_bytes(&mut out, flags);
            }
        }
        put_u32(&mut out, part.chunks.len() as u32);
        for chunk in &part.chunks {
            chunk.put(&mut out)?;
        }
    }
    Ok(seal(out))
}

/// Both sides' kept rows, as a checkpoint takes them.
pub(super) struct Checkpointed(pub(super) Rc<RefCell<State>>);

impl OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow_mut().snapshot_checkpoint(false).into_bytes()
    }

    fn snapshot_incremental(&self, delta_allowed: bool) -> Result<Snapshot, EngineError> {
        Ok(self.0.borrow_mut().snapshot_checkpoint(delta_allowed))
    }
}
