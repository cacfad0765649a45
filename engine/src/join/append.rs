//! A regular inner join of two append-only inputs without a state TTL.
//! Every row may still match a future row of the other side, so each side
//! keeps every batch it received, untouched, and one hash index from key
//! to (batch, row). A new batch probes the other side's index once per row
//! and gathers its partners from the kept batches: rows are never copied
//! into state, concatenated or re-indexed.
//!
//! It emits each pair at the time of the batch that completed it and holds
//! no capability, so a checkpoint of it is the kept batches alone.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, UInt32Array};
use datafusion::arrow::compute::{filter_record_batch, interleave_record_batch, take_record_batch};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::RowConverter;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::checkpoint::codec::{corrupt, fits_schema, new_state, open_state, seal};
use crate::checkpoint::encoding::{Reader, batches_from_bytes, put_batches_bytes, put_u32};
use crate::checkpoint::worker::Snapshot;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::fast_hash::HashMap;
use crate::join::interval::{IntervalJoin, Side};
use crate::join::kernel::{KeyedBatch, key_converter};
use crate::runtime::exchange;
use crate::time::Watermark;

/// One input's rows: the batches as they came, and where each key is.
#[derive(Default)]
struct Kept {
    batches: Vec<RecordBatch>,
    rows_by_key: HashMap<Box<[u8]>, Vec<(u32, u32)>>,
}

impl Kept {
    fn add(&mut self, keyed: KeyedBatch) {
        let batch_id = self.batches.len() as u32;
        for (row, key) in keyed.keys().enumerate() {
            let Some(key) = key else { continue };
            let at = (batch_id, row as u32);
            match self.rows_by_key.get_mut(key) {
                Some(rows) => rows.push(at),
                None => {
                    self.rows_by_key.insert(key.into(), vec![at]);
                }
            }
        }
        self.batches.push(keyed.batch);
    }

    /// The kept rows that match each row of `probe`: the probe's row
    /// indices, and the partners gathered into one batch.
    fn partners(&self, probe: &KeyedBatch) -> Result<Option<(Vec<u32>, RecordBatch)>, EngineError> {
        let mut probe_rows = Vec::new();
        let mut partners = Vec::new();
        // Gathering reads only the batches that hold partners: numbered
        // densely here, since it visits every batch it is given.
        let mut slot_of_batch: HashMap<u32, usize> = HashMap::default();
        let mut sources: Vec<&RecordBatch> = Vec::new();
        for (i, key) in probe.keys().enumerate() {
            let Some(found) = key.and_then(|key| self.rows_by_key.get(key)) else {
                continue;
            };
            for &(batch_id, row) in found {
                let slot = *slot_of_batch.entry(batch_id).or_insert_with(|| {
                    sources.push(&self.batches[batch_id as usize]);
                    sources.len() - 1
                });
                probe_rows.push(i as u32);
                partners.push((slot, row as usize));
            }
        }
        if probe_rows.is_empty() {
            return Ok(None);
        }
        Ok(Some((
            probe_rows,
            interleave_record_batch(&sources, &partners)?,
        )))
    }
}

struct State {
    spec: Arc<IntervalJoin>,
    context: Arc<JobContext>,
    converter: RowConverter,
    left: Kept,
    right: Kept,
    /// Each side's batch count at the last snapshot or restore, and the
    /// deltas taken since the last whole snapshot: a delta is the batches
    /// kept since, as state only ever grows.
    base: Option<((usize, usize), usize)>,
}

impl State {
    /// Joins a new batch of `side` with everything the other side kept,
    /// then keeps it.
    fn arrive(
        &mut self,
        side: Side,
        batch: RecordBatch,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let join = &self.spec.join;
        let (keys, mine, other) = match side {
            Side::Left => (&join.left_keys, &mut self.left, &self.right),
            Side::Right => (&join.right_keys, &mut self.right, &self.left),
        };
        let keyed = KeyedBatch::new(batch, keys, &self.converter)?;
        let joined = match other.partners(&keyed)? {
            None => None,
            Some((probe_rows, partners)) => {
                let probed = take_record_batch(&keyed.batch, &UInt32Array::from(probe_rows))?;
                let (left, right) = match side {
                    Side::Left => (probed, partners),
                    Side::Right => (partners, probed),
                };
                let columns: Vec<ArrayRef> = left
                    .columns()
                    .iter()
                    .chain(right.columns())
                    .cloned()
                    .collect();
                let options = RecordBatchOptions::new().with_row_count(Some(left.num_rows()));
                let pairs = RecordBatch::try_new_with_options(
                    join.joined_schema.clone(),
                    columns,
                    &options,
                )?;
                let kept = match &join.filter {
                    None => pairs,
                    Some(filter) => {
                        let mask = filter.evaluate(&pairs)?.into_array(pairs.num_rows())?;
                        let mask =
                            mask.as_any()
                                .downcast_ref::<BooleanArray>()
                                .ok_or_else(|| {
                                    EngineError::Plan("a join condition must be boolean".into())
                                })?;
                        filter_record_batch(&pairs, mask)?
                    }
                };
                (kept.num_rows() > 0)
                    .then(|| {
                        RecordBatch::try_new(join.output_schema.clone(), kept.columns().to_vec())
                    })
                    .transpose()?
            }
        };
        JobContext::add(&self.context.state_rows, keyed.len());
        mine.add(keyed);
        Ok(joined)
    }

    /// `arrive` for a batch taken from an input; a failure fails the job.
    fn absorb(&mut self, side: Side, batch: Option<RecordBatch>) -> Option<Batch> {
        match self.arrive(side, batch?) {
            Ok(out) => out.map(Batch::new),
            Err(error) => {
                self.context.fail(error);
                None
            }
        }
    }
}

/// An append join's checkpoint, sealed: a version, then per side (left
/// first) its kept batches in arrival order, as runs of batches that share
/// a schema, each run one Arrow IPC stream. Batches stay as they came, so
/// the restored join gathers partners in the order the live one did. A
/// delta has the same layout with the batches kept since the one before.
const STATE_VERSION: u32 = 1;
const DELTA_VERSION: u32 = 0x8000_0001;

/// Deltas before a whole snapshot again: each checkpoint a chain spans
/// stays in storage, so the chain is bounded.
const MOST_DELTAS: usize = 256;

impl State {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        encode_batches(STATE_VERSION, &self.left.batches, &self.right.batches)
    }

    /// The batches are shared and never change, so the committer encodes
    /// them while the join goes on.
    fn snapshot_checkpoint(&mut self, delta_allowed: bool) -> Result<Snapshot, EngineError> {
        let counts = (self.left.batches.len(), self.right.batches.len());
        let (since, deltas, delta) = match self.base {
            Some((since, deltas)) if delta_allowed && deltas < MOST_DELTAS => {
                (since, deltas + 1, true)
            }
            _ => ((0, 0), 0, false),
        };
        let left = self
            .left
            .batches
            .get(since.0..)
            .unwrap_or_default()
            .to_vec();
        let right = self
            .right
            .batches
            .get(since.1..)
            .unwrap_or_default()
            .to_vec();
        let version = if delta { DELTA_VERSION } else { STATE_VERSION };
        self.base = Some((counts, deltas));
        Ok(Snapshot::Later {
            delta,
            encode: Box::new(move || encode_batches(version, &left, &right).map(seal)),
        })
    }

    /// Takes the batches a whole snapshot and the deltas after it held,
    /// indexing them anew.
    fn restore(&mut self, pieces: &[Vec<u8>]) -> Result<(), EngineError> {
        for (i, bytes) in pieces.iter().enumerate() {
            let mut reader = match i {
                0 => open_state(bytes, STATE_VERSION, "an append join")?,
                _ => open_state(bytes, DELTA_VERSION, "an append join delta")?,
            };
            for side in [Side::Left, Side::Right] {
                let rows = self.read_side(&mut reader, side)?;
                JobContext::add(&self.context.state_rows, rows);
            }
            if !reader.is_empty() {
                return Err(corrupt("trailing bytes after an append join state"));
            }
        }
        let counts = (self.left.batches.len(), self.right.batches.len());
        self.base = Some((counts, pieces.len().saturating_sub(1)));
        Ok(())
    }

    /// Keeps the batches of one side's part; returns their rows.
    fn read_side(&mut self, reader: &mut Reader<'_>, side: Side) -> Result<usize, EngineError> {
        let join = &self.spec.join;
        let (keys, schema, kept) = match side {
            Side::Left => (&join.left_keys, &join.left_schema, &mut self.left),
            Side::Right => (&join.right_keys, &join.right_schema, &mut self.right),
        };
        let mut rows = 0;
        for _ in 0..reader.u32()? {
            for batch in batches_from_bytes(reader.bytes()?)? {
                // The join reads kept columns by position.
                if !fits_schema(&batch, schema) {
                    return Err(corrupt("an append join batch has other columns"));
                }
                rows += batch.num_rows();
                kept.add(KeyedBatch::new(batch, keys, &self.converter)?);
            }
        }
        Ok(rows)
    }
}

fn encode_batches(
    version: u32,
    left: &[RecordBatch],
    right: &[RecordBatch],
) -> Result<Vec<u8>, EngineError> {
    let mut out = new_state(version);
    put_batches(&mut out, left)?;
    put_batches(&mut out, right)?;
    Ok(out)
}

/// `batches` as a count of runs, then each run of equal schemas as IPC.
fn put_batches(out: &mut Vec<u8>, batches: &[RecordBatch]) -> Result<(), EngineError> {
    let runs: Vec<(&RecordBatch, &[RecordBatch])> = batches
        .chunk_by(|a, b| a.schema_ref() == b.schema_ref())
        .filter_map(|run| Some((run.first()?, run)))
        .collect();
    put_u32(out, runs.len() as u32);
    for (first, run) in runs {
        put_batches_bytes(out, first.schema_ref(), run)?;
    }
    Ok(())
}

/// Both sides' kept batches, as a checkpoint takes them.
struct Checkpointed(Rc<RefCell<State>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow().snapshot().map(seal)
    }

    fn snapshot_incremental(&self, delta_allowed: bool) -> Result<Snapshot, EngineError> {
        self.0.borrow_mut().snapshot_checkpoint(delta_allowed)
    }
}

/// Runs the join; `spec.expiry` is `Expiry::Never` (the interval join
/// hands such joins here).
pub fn append_join<'scope>(
    left: Stream<'scope, Watermark, Batch>,
    right: Stream<'scope, Watermark, Batch>,
    spec: Arc<IntervalJoin>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let converter = key_converter(&spec.join.left_keys, &spec.join.left_schema)?;
    let routes = (spec.left_route.clone(), spec.right_route.clone());
    Ok(
        left.binary::<_, CapacityContainerBuilder<Batch>, _, _, _, _>(
            right,
            exchange::by_key(routes.0),
            exchange::by_key(routes.1),
            "Join",
            move |_cap, _info| {
                let state = Rc::new(RefCell::new(State {
                    spec,
                    context: context.clone(),
                    converter,
                    left: Kept::default(),
                    right: Kept::default(),
                    base: None,
                }));
                let checkpointed = Rc::new(Checkpointed(state.clone()));
                let register = crate::checkpoint::worker::register_incremental;
                if let Some(pieces) = register("AppendJoin", checkpointed)
                    && let Err(error) = state.borrow_mut().restore(&pieces)
                {
                    context.fail(error);
                }
                move |left, right, output| {
                    let mut state = state.borrow_mut();
                    left.for_each(|cap, data| {
                        if let Some(mut out) = state.absorb(Side::Left, data.take()) {
                            output.session(&cap).give_container(&mut out);
                        }
                    });
                    right.for_each(|cap, data| {
                        if let Some(mut out) = state.absorb(Side::Right, data.take()) {
                            output.session(&cap).give_container(&mut out);
                        }
                    });
                }
            },
        ),
    )
}
