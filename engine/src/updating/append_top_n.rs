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

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt64Array, make_comparator};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::exchange;
use crate::fast_hash::HashMap;
use crate::time::Watermark;
use crate::updating::changelog::{RowKind, op_array};
use crate::updating::top_n::{Codecs, TopN};

/// A kept row: its sort key and where the row is. Rows with equal sort
/// keys are ordered by their columns, so the result does not depend on
/// arrival order.
struct Entry {
    sort_key: Box<[u8]>,
    at: (u32, u32),
}

/// The batches kept rows live in. Rows that left the top N stay until the
/// arena holds twice the live rows, then the live ones are gathered into
/// one batch.
#[derive(Default)]
struct Arena {
    segments: Vec<RecordBatch>,
    held_rows: usize,
}

/// Below this many held rows the arena is never compacted.
const ARENA_SLACK: usize = 1 << 16;

impl Arena {
    fn push(&mut self, batch: RecordBatch) -> u32 {
        self.held_rows += batch.num_rows();
        self.segments.push(batch);
        (self.segments.len() - 1) as u32
    }

    /// Gathers rows by `(segment, row)` into one batch, reading only the
    /// segments named.
    fn gather(&self, at: impl Iterator<Item = (u32, u32)>) -> Result<RecordBatch, EngineError> {
        let mut slot_of: Vec<Option<usize>> = vec![None; self.segments.len()];
        let mut sources: Vec<&RecordBatch> = Vec::new();
        let indices: Vec<(usize, usize)> = at
            .map(|(segment, row)| {
                let slot = *slot_of[segment as usize].get_or_insert_with(|| {
                    sources.push(&self.segments[segment as usize]);
                    sources.len() - 1
                });
                (slot, row as usize)
            })
            .collect();
        Ok(interleave_record_batch(&sources, &indices)?)
    }
}

struct State {
    spec: Arc<TopN>,
    limit: usize,
    codecs: Codecs,
    order: RowConverter,
    kept: HashMap<Box<[u8]>, Vec<Entry>>,
    live_rows: usize,
    arena: Arena,
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

    fn compare_rows(&self, left: (u32, u32), right: (u32, u32)) -> Result<Ordering, EngineError> {
        let left_batch = &self.arena.segments[left.0 as usize];
        let right_batch = &self.arena.segments[right.0 as usize];
        for (l, r) in left_batch.columns().iter().zip(right_batch.columns()) {
            let compare = make_comparator(l.as_ref(), r.as_ref(), SortOptions::default())?;
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
        let mut changes = Changes::default();
        for i in 0..n {
            let candidate = Candidate {
                sort_key: sort_key(i),
                at: (segment, i as u32),
            };
            if !self.kept.contains_key(key(i)) {
                self.kept
                    .insert(key(i).into(), Vec::with_capacity(self.limit.min(16)));
            }
            let Some(entries) = self.kept.get_mut(key(i)) else {
                continue;
            };
            let placement = Placement {
                arena: &self.arena,
                limit: self.limit,
            };
            let Some(at) = placement.place(entries, &candidate)? else {
                continue;
            };
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
            entries.truncate(self.limit);
            self.live_rows += entries.len() - had;
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
        if self.arena.held_rows > 2 * self.live_rows + ARENA_SLACK {
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
    fn compact(&mut self) -> Result<(), EngineError> {
        let live = self
            .arena
            .gather(self.kept.values().flatten().map(|entry| entry.at))?;
        for (row, entry) in self.kept.values_mut().flatten().enumerate() {
            entry.at = (0, row as u32);
        }
        self.arena = Arena::default();
        self.arena.push(live);
        Ok(())
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
            let mut state = State {
                spec,
                limit,
                codecs,
                order,
                kept: HashMap::default(),
                live_rows: 0,
                arena: Arena::default(),
            };
            move |input, output| {
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
