//! Top-N over an append-only input (`ROW_NUMBER() ... <= N`, keep-last
//! deduplication): each partition keeps only its N best rows, ordered by
//! their sort key in Arrow's row format, and a new row that enters the top
//! N retracts and re-emits the rows whose number it changes. Rows that can
//! never come back (an append-only input never retracts) need not be kept,
//! unlike in the differential top-N, which is kept for changelog inputs.
//!
//! Kept rows stay columnar: input batches are kept whole in an arena,
//! entries point into it, and output rows are gathered from it. Only the
//! sort key is encoded; a tie compares the rows' columns.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, DynComparator, UInt64Array, make_comparator};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::changelog::{RowKind, op_array};
use crate::checkpoint::codec::{corrupt, new_state, open_state, seal};
use crate::checkpoint::encoding::{batches_from_bytes, put_batches_bytes, put_bytes};
use crate::checkpoint::worker::Snapshot;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::fast_hash::HashMap;
use crate::runtime::exchange;
use crate::time::Watermark;
use crate::updating::top_n::{Codecs, TopN};

/// A kept row: its sort key and where the row is. Rows with equal sort
/// keys are ordered by their columns, so the result does not depend on
/// arrival order.
struct Entry {
    sort_key: Box<[u8]>,
    at: (u32, u32),
}

/// The batches kept rows live in, with how many kept rows each holds. A
/// batch is let go when none of its rows is kept; when the arena holds
/// more than twice the kept rows, the live rows of mostly dead batches are
/// gathered into a new one.
#[derive(Default)]
struct Arena {
    segments: Vec<Option<RecordBatch>>,
    live: Vec<u32>,
    held_rows: usize,
    live_rows: usize,
}

/// Below this many held rows the arena is never compacted.
const ARENA_SLACK: usize = 1 << 16;

impl Arena {
    fn push(&mut self, batch: RecordBatch) -> u32 {
        self.held_rows += batch.num_rows();
        self.segments.push(Some(batch));
        self.live.push(0);
        (self.segments.len() - 1) as u32
    }

    fn segment(&self, segment: u32) -> Result<&RecordBatch, EngineError> {
        self.segments
            .get(segment as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| EngineError::Runtime(format!("top-N: segment {segment} was let go")))
    }

    fn keep(&mut self, (segment, _): (u32, u32)) {
        self.live[segment as usize] += 1;
        self.live_rows += 1;
    }

    fn release(&mut self, (segment, _): (u32, u32)) {
        self.live[segment as usize] -= 1;
        self.live_rows -= 1;
    }

    /// Lets go of the batches no kept row is in.
    fn let_go_of_dead(&mut self) {
        for (segment, live) in self.segments.iter_mut().zip(&self.live) {
            if *live == 0
                && let Some(batch) = segment.take()
            {
                self.held_rows -= batch.num_rows();
            }
        }
    }

    /// Gathers rows by `(segment, row)` into one batch, reading only the
    /// segments named.
    fn gather(&self, at: impl Iterator<Item = (u32, u32)>) -> Result<RecordBatch, EngineError> {
        let mut slot_of: Vec<Option<usize>> = vec![None; self.segments.len()];
        let mut sources: Vec<&RecordBatch> = Vec::new();
        let mut indices: Vec<(usize, usize)> = Vec::new();
        for (segment, row) in at {
            let slot = match slot_of[segment as usize] {
                Some(slot) => slot,
                None => {
                    sources.push(self.segment(segment)?);
                    slot_of[segment as usize] = Some(sources.len() - 1);
                    sources.len() - 1
                }
            };
            indices.push((slot, row as usize));
        }
        Ok(interleave_record_batch(&sources, &indices)?)
    }
}

struct State {
    spec: Arc<TopN>,
    limit: usize,
    codecs: Codecs,
    order: RowConverter,
    kept: HashMap<Vec<u8>, Vec<Entry>>,
    arena: Arena,
    /// Once checkpointed or restored: the partitions whose kept rows
    /// changed since, and the deltas since the last whole snapshot.
    changed: Option<(crate::fast_hash::HashSet<Vec<u8>>, usize)>,
}

/// A row looking for its place: its sort key and where it is.
struct Candidate<'a> {
    sort_key: &'a [u8],
    at: (u32, u32),
}

/// What placing a row among kept entries reads.
struct Placement<'a> {
    arena: &'a Arena,
    limit: usize,
    /// Column comparators from a kept row's segment to the new rows' one,
    /// made at a segment's first tie in a batch.
    comparators: RefCell<HashMap<u32, Vec<DynComparator>>>,
}

impl Placement<'_> {
    /// Where a new row goes among a partition's entries, or `None` if it
    /// is not among the first N.
    fn place(
        &self,
        entries: &[Entry],
        candidate: &Candidate<'_>,
    ) -> Result<Option<usize>, EngineError> {
        if entries.len() == self.limit
            && let Some(last) = entries.last()
            && self.compare(last, candidate)? != Ordering::Greater
        {
            return Ok(None);
        }
        // The first entry that sorts after the new row.
        let (mut low, mut high) = (0, entries.len());
        while low < high {
            let middle = (low + high) / 2;
            if self.compare(&entries[middle], candidate)? == Ordering::Greater {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        Ok(Some(low))
    }

    /// How a kept entry sorts against a new row: by sort key, then, in a
    /// tie, by the rows' columns in order.
    fn compare(&self, entry: &Entry, candidate: &Candidate<'_>) -> Result<Ordering, EngineError> {
        match (*entry.sort_key).cmp(candidate.sort_key) {
            Ordering::Equal => self.compare_rows(entry.at, candidate.at),
            unequal => Ok(unequal),
        }
    }

    /// `right` is a row of the newest segment, which all candidates are in.
    fn compare_rows(&self, left: (u32, u32), right: (u32, u32)) -> Result<Ordering, EngineError> {
        let mut comparators = self.comparators.borrow_mut();
        let columns = match comparators.entry(left.0) {
            hashbrown::hash_map::Entry::Occupied(made) => made.into_mut(),
            hashbrown::hash_map::Entry::Vacant(vacant) => {
                let left_batch = self.arena.segment(left.0)?;
                let right_batch = self.arena.segment(right.0)?;
                let made = left_batch
                    .columns()
                    .iter()
                    .zip(right_batch.columns())
                    .map(|(l, r)| make_comparator(l.as_ref(), r.as_ref(), SortOptions::default()))
                    .collect::<Result<Vec<_>, _>>()?;
                vacant.insert(made)
            }
        };
        for compare in columns.iter() {
            match compare(left.1 as usize, right.1 as usize) {
                Ordering::Equal => {}
                unequal => return Ok(unequal),
            }
        }
        Ok(Ordering::Equal)
    }
}

/// The output being built: rows (where they are), numbers and kinds.
#[derive(Default)]
struct Changes {
    rows: Vec<(u32, u32)>,
    ranks: Vec<u64>,
    kinds: Vec<RowKind>,
}

impl State {
    fn absorb(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>, EngineError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(None);
        }
        let partition_keys = self.partition_keys(batch)?;
        let key = |i: usize| partition_keys.as_ref().map_or(&[][..], |k| k.row(i).data());
        let order_rows = self.order_rows(batch)?;
        let sort_key = |i: usize| order_rows.as_ref().map_or(&[][..], |o| o.row(i).data());
        let segment = self.arena.push(batch.clone());
        let placement = Placement {
            arena: &self.arena,
            limit: self.limit,
            comparators: RefCell::default(),
        };
        let mut changes = Changes::default();
        // Rows that entered (+1) and left (-1) in this batch, applied to
        // the arena's counts once placement no longer reads it.
        let mut moves: Vec<((u32, u32), bool)> = Vec::new();
        for i in 0..n {
            let candidate = Candidate {
                sort_key: sort_key(i),
                at: (segment, i as u32),
            };
            let entries = self
                .kept
                .entry_ref(key(i))
                .or_insert_with(|| Vec::with_capacity(self.limit.min(16)));
            let Some(at) = placement.place(entries, &candidate)? else {
                continue;
            };
            if let Some((changed, _)) = &mut self.changed
                && !changed.contains(key(i))
            {
                changed.insert(key(i).to_vec());
            }
            // Every row from `at` on changes its number (or leaves).
            for (rank, entry) in entries.iter().enumerate().skip(at) {
                changes.rows.push(entry.at);
                changes.ranks.push(rank as u64 + 1);
                changes.kinds.push(RowKind::UpdateBefore);
            }
            let had = entries.len();
            entries.insert(
                at,
                Entry {
                    sort_key: sort_key(i).into(),
                    at: (segment, i as u32),
                },
            );
            moves.push(((segment, i as u32), true));
            if entries.len() > self.limit
                && let Some(left) = entries.pop()
            {
                moves.push((left.at, false));
            }
            for (rank, entry) in entries.iter().enumerate().skip(at) {
                changes.rows.push(entry.at);
                changes.ranks.push(rank as u64 + 1);
                let kind = if rank < had {
                    RowKind::UpdateAfter
                } else {
                    RowKind::Insert
                };
                changes.kinds.push(kind);
            }
        }
        let out = self.output(changes)?;
        for (at, entered) in moves {
            if entered {
                self.arena.keep(at);
            } else {
                self.arena.release(at);
            }
        }
        self.arena.let_go_of_dead();
        if self.arena.held_rows > 2 * self.arena.live_rows + ARENA_SLACK {
            self.compact()?;
        }
        Ok(out)
    }

    fn partition_keys(&self, batch: &RecordBatch) -> Result<Option<Rows>, EngineError> {
        if self.spec.partition.is_empty() {
            return Ok(None);
        }
        let keys: Vec<ArrayRef> = self
            .spec
            .partition
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        Ok(Some(self.codecs.keys.convert_columns(&keys)?))
    }

    fn order_rows(&self, batch: &RecordBatch) -> Result<Option<Rows>, EngineError> {
        if self.spec.order.is_empty() {
            return Ok(None);
        }
        let n = batch.num_rows();
        let columns = self
            .spec
            .order
            .iter()
            .map(|(e, _)| e.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(self.order.convert_columns(&columns)?))
    }

    fn output(&self, changes: Changes) -> Result<Option<RecordBatch>, EngineError> {
        if changes.rows.is_empty() {
            return Ok(None);
        }
        let rows = self.arena.gather(changes.rows.into_iter())?;
        let mut columns = rows.columns().to_vec();
        columns.push(Arc::new(UInt64Array::from(changes.ranks)));
        columns.push(op_array(&changes.kinds));
        let options = RecordBatchOptions::new().with_row_count(Some(changes.kinds.len()));
        Ok(Some(RecordBatch::try_new_with_options(
            self.spec.output_schema.clone(),
            columns,
            &options,
        )?))
    }

    /// Gathers the live rows into one segment and points the entries at it.
    /// Gathers the kept rows of batches that are mostly dead into one new
    /// batch, so each row is copied about once however long it is kept.
    fn compact(&mut self) -> Result<(), EngineError> {
        let arena = &mut self.arena;
        let sparse: Vec<bool> = arena
            .segments
            .iter()
            .zip(&arena.live)
            .map(|(batch, &live)| {
                batch
                    .as_ref()
                    .is_some_and(|b| (live as usize) * 2 < b.num_rows())
            })
            .collect();
        if !sparse.contains(&true) {
            return Ok(());
        }
        let moving = |entry: &&mut Entry| sparse[entry.at.0 as usize];
        let gathered = arena.gather(
            self.kept
                .values()
                .flatten()
                .filter(|entry| sparse[entry.at.0 as usize])
                .map(|entry| entry.at),
        )?;
        let target = arena.push(gathered);
        for (row, entry) in self.kept.values_mut().flatten().filter(moving).enumerate() {
            arena.release(entry.at);
            entry.at = (target, row as u32);
            arena.keep(entry.at);
        }
        arena.let_go_of_dead();
        Ok(())
    }
}

/// A top-N's checkpoint: a version, then every kept row as one Arrow IPC
/// batch (empty if none), partition by partition in rank order. Partition
/// and sort keys are computed from the rows again, and the entries of a
/// partition are put back in the order they came.
/// A delta has the same layout, with the kept rows of the partitions that
/// changed since the snapshot before: each replaces its partition.
const STATE_VERSION: u32 = 1;
const DELTA_VERSION: u32 = 0x8000_0001;

/// Deltas before a whole snapshot again, to bound a restore's chain.
const MOST_DELTAS: usize = 16;

impl State {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let rows = self.rows_of(self.kept.values())?;
        encode_rows(STATE_VERSION, rows.as_ref())
    }

    /// The rows of `partitions`, in rank order; `None` if there are none.
    fn rows_of<'k>(
        &self,
        partitions: impl Iterator<Item = &'k Vec<Entry>>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let mut at = partitions.flatten().map(|entry| entry.at).peekable();
        if at.peek().is_none() {
            return Ok(None);
        }
        self.arena.gather(at).map(Some)
    }

    /// The changed partitions' rows when allowed and fewer than half, else
    /// every kept row; the rows are gathered here and encoded by the
    /// committer.
    fn snapshot_checkpoint(&mut self, delta_allowed: bool) -> Result<Snapshot, EngineError> {
        let delta = delta_allowed
            && self.changed.as_ref().is_some_and(|(changed, deltas)| {
                *deltas < MOST_DELTAS && changed.len() <= self.kept.len() / 2
            });
        let rows = match (&self.changed, delta) {
            (Some((changed, _)), true) => {
                self.rows_of(changed.iter().filter_map(|key| self.kept.get(key)))?
            }
            _ => self.rows_of(self.kept.values())?,
        };
        let deltas = match (&self.changed, delta) {
            (Some((_, deltas)), true) => deltas + 1,
            _ => 0,
        };
        self.changed = Some((Default::default(), deltas));
        let version = if delta { DELTA_VERSION } else { STATE_VERSION };
        Ok(Snapshot::Later {
            delta,
            encode: Box::new(move || encode_rows(version, rows.as_ref()).map(seal)),
        })
    }

    /// A whole state, then the deltas on it in order.
    fn restore(&mut self, pieces: &[Vec<u8>]) -> Result<(), EngineError> {
        for (i, bytes) in pieces.iter().enumerate() {
            let mut reader = match i {
                0 => open_state(bytes, STATE_VERSION, "a top-N")?,
                _ => open_state(bytes, DELTA_VERSION, "a top-N delta")?,
            };
            let rows = reader.bytes()?;
            if !reader.is_empty() {
                return Err(corrupt("trailing bytes after a top-N state"));
            }
            if rows.is_empty() {
                continue;
            }
            for batch in batches_from_bytes(rows)? {
                if i > 0 {
                    self.forget_partitions_of(&batch)?;
                }
                self.restore_rows(batch)?;
            }
        }
        self.changed = Some((Default::default(), pieces.len().saturating_sub(1)));
        Ok(())
    }

    /// Empties the partitions `batch`'s rows belong to, which a delta's
    /// rows replace.
    fn forget_partitions_of(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let keys = self.partition_keys(batch)?;
        for i in 0..batch.num_rows() {
            let key = keys.as_ref().map_or(&[][..], |k| k.row(i).data());
            if let Some(entries) = self.kept.get_mut(key) {
                for entry in entries.drain(..) {
                    self.arena.release(entry.at);
                }
            }
        }
        Ok(())
    }

    fn restore_rows(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        let input = self.spec.input_schema.fields();
        let fits = batch.num_columns() == input.len()
            && batch
                .columns()
                .iter()
                .zip(input.iter())
                .all(|(column, field)| column.data_type() == field.data_type());
        if !fits {
            return Err(corrupt("top-N rows with other columns"));
        }
        let partition_keys = self.partition_keys(&batch)?;
        let order_rows = self.order_rows(&batch)?;
        let segment = self.arena.push(batch);
        for i in 0..self.arena.segment(segment)?.num_rows() {
            let key = partition_keys.as_ref().map_or(&[][..], |k| k.row(i).data());
            let sort_key = order_rows.as_ref().map_or(&[][..], |o| o.row(i).data());
            let entries = self.kept.entry_ref(key).or_default();
            let in_order = entries
                .last()
                .is_none_or(|last| *last.sort_key <= *sort_key);
            if entries.len() == self.limit || !in_order {
                return Err(corrupt("a top-N partition out of order or over its limit"));
            }
            let at = (segment, i as u32);
            entries.push(Entry {
                sort_key: sort_key.into(),
                at,
            });
            self.arena.keep(at);
        }
        self.arena.let_go_of_dead();
        Ok(())
    }
}

fn encode_rows(version: u32, rows: Option<&RecordBatch>) -> Result<Vec<u8>, EngineError> {
    let mut out = new_state(version);
    match rows {
        None => put_bytes(&mut out, &[]),
        Some(rows) => put_batches_bytes(&mut out, &rows.schema(), std::slice::from_ref(rows))?,
    }
    Ok(out)
}

/// The kept rows, as a checkpoint takes them.
struct Checkpointed(Rc<RefCell<State>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow().snapshot().map(seal)
    }

    fn snapshot_incremental(&self, delta_allowed: bool) -> Result<Snapshot, EngineError> {
        self.0.borrow_mut().snapshot_checkpoint(delta_allowed)
    }
}

/// Runs the top-N; `spec.limit` must be set (an unlimited numbering keeps
/// every row, which the differential top-N does).
pub fn append_top_n<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<TopN>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let limit = spec
        .limit
        .ok_or_else(|| EngineError::Plan("an append-only top-N needs a limit".into()))?;
    let schema = &spec.input_schema;
    let codecs = spec.codecs()?;
    let order = RowConverter::new(
        spec.order
            .iter()
            .map(|(e, options)| Ok(SortField::new_with_options(e.data_type(schema)?, *options)))
            .collect::<Result<Vec<_>, EngineError>>()?,
    )?;
    let route = spec.partition.clone();
    Ok(input.unary::<CapacityContainerBuilder<Batch>, _, _, _>(
        exchange::by_key(route),
        "TopN",
        move |_cap, _info| {
            let state = Rc::new(RefCell::new(State {
                spec,
                limit,
                codecs,
                order,
                kept: HashMap::default(),
                arena: Arena::default(),
                changed: None,
            }));
            let checkpointed = Rc::new(Checkpointed(state.clone()));
            let register = crate::checkpoint::worker::register_incremental;
            if let Some(pieces) = register("TopN", checkpointed)
                && let Err(error) = state.borrow_mut().restore(&pieces)
            {
                context.fail(error);
            }
            move |input, output| {
                let mut state = state.borrow_mut();
                input.for_each(|cap, data| {
                    let Some(batch) = data.take() else { return };
                    match state.absorb(&batch) {
                        Ok(Some(out)) => output.session(&cap).give_container(&mut Batch::new(out)),
                        Ok(None) => {}
                        Err(error) => context.fail(error),
                    }
                });
            }
        },
    ))
}
