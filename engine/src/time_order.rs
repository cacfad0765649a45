//! Rows held until the watermark has passed their own event time, then
//! given out in time order: what OVER aggregations and MATCH_RECOGNIZE
//! read, since neither may look at a row while an earlier one can still
//! arrive. Rows of equal time keep their arrival order.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use timely::dataflow::operators::{Capability, InputCapability};

use crate::error::EngineError;
use crate::rank::closed_time::{Stash, stash_batch};
use crate::time::{Millis, Watermark};

/// Rows of one input batch not yet given out, sorted by time (ties in
/// arrival order), so that each firing takes a prefix without copying.
struct Pending {
    /// Arrival order of the batch, which orders rows of equal time
    /// across batches.
    arrival: u64,
    rows: RecordBatch,
    times: Vec<Millis>,
}

/// The rows a firing gives out: the capability to send results at, the
/// rows (batches in arrival order) and their event times.
pub struct Ready {
    pub cap: Capability<Watermark>,
    pub batches: Vec<RecordBatch>,
    pub times: Vec<Millis>,
}

pub struct TimeOrder {
    time_column: usize,
    stash: Stash,
    /// Rows of closed times whose own time the watermark has not passed
    /// yet, by their earliest time: a firing looks only at those it can
    /// give out (a worker far ahead of the watermark holds many), held at
    /// a time no later than any of theirs.
    pending: BTreeMap<(Millis, u64), Pending>,
    held: Option<Capability<Watermark>>,
    arrivals: u64,
}

impl TimeOrder {
    pub fn new(time_column: usize) -> Self {
        TimeOrder {
            time_column,
            stash: Stash::new(),
            pending: BTreeMap::new(),
            held: None,
            arrivals: 0,
        }
    }

    pub fn accept(&mut self, cap: &InputCapability<Watermark>, batch: RecordBatch) {
        stash_batch(&mut self.stash, cap, batch);
    }

    pub fn clear(&mut self) {
        self.stash.clear();
        self.pending.clear();
        self.held = None;
    }

    /// The rows before `bound` (`None`: the input has ended), whenever a
    /// capability is held; a batch whose times cannot be read is an error
    /// (the other rows still go on).
    pub fn ready(&mut self, bound: Option<Watermark>) -> Result<Option<Ready>, EngineError> {
        let mut failure = None;
        while let Some(entry) = self.stash.first_entry() {
            if bound.is_some_and(|b| *entry.key() >= b) {
                break;
            }
            let (kept, batches) = entry.remove();
            if self.held.as_ref().is_none_or(|c| kept.time() < c.time()) {
                self.held = Some(kept);
            }
            for batch in batches {
                match by_time(&batch, self.time_column) {
                    Ok(Some((rows, times))) => {
                        self.pending.insert(
                            (times[0], self.arrivals),
                            Pending {
                                arrival: self.arrivals,
                                rows,
                                times,
                            },
                        );
                        self.arrivals += 1;
                    }
                    Ok(None) => {}
                    Err(error) => failure = Some(error),
                }
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        let Some(cap) = self.held.take() else {
            return Ok(None);
        };
        let mut ready: Vec<(u64, RecordBatch, Vec<Millis>)> = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if bound.is_some_and(|b| entry.key().0 >= b) {
                break;
            }
            let part = entry.remove();
            let cut = match bound {
                Some(b) => part.times.partition_point(|&t| t < b),
                None => part.times.len(),
            };
            ready.push((
                part.arrival,
                part.rows.slice(0, cut),
                part.times[..cut].to_vec(),
            ));
            if cut < part.times.len() {
                self.pending.insert(
                    (part.times[cut], part.arrival),
                    Pending {
                        arrival: part.arrival,
                        rows: part.rows.slice(cut, part.times.len() - cut),
                        times: part.times[cut..].to_vec(),
                    },
                );
            }
        }
        ready.sort_unstable_by_key(|(arrival, _, _)| *arrival);
        let (batches, times): (Vec<RecordBatch>, Vec<Vec<Millis>>) = ready
            .into_iter()
            .map(|(_, rows, times)| (rows, times))
            .unzip();
        Ok(Some(Ready {
            cap,
            batches,
            times: times.concat(),
        }))
    }

    /// Takes back a firing's capability, moved up to the earliest row
    /// still held, or drops it when none is.
    pub fn hold(&mut self, cap: Capability<Watermark>) {
        if let Some(((earliest, _), _)) = self.pending.first_key_value() {
            let mut cap = cap;
            if *earliest > *cap.time() {
                cap.downgrade(earliest);
            }
            self.held = Some(cap);
        }
    }
}

impl TimeOrder {
    /// Every row held, for a checkpoint, as a sealed per-time state: the
    /// rows already taken out of the stash (in arrival order) go first,
    /// under the earliest time any row is held at, so that a restore
    /// keeps equal times in their arrival order.
    pub fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let taken: Vec<RecordBatch> = {
            let mut parts: Vec<&Pending> = self.pending.values().collect();
            parts.sort_unstable_by_key(|p| p.arrival);
            parts.into_iter().map(|p| p.rows.clone()).collect()
        };
        let mut times: Vec<(Watermark, Vec<RecordBatch>)> = Vec::new();
        if let Some(((earliest, _), _)) = self.pending.first_key_value() {
            let at = self.held.as_ref().map_or(*earliest, |held| *held.time());
            let at = self.stash.keys().next().map_or(at, |first| at.min(*first));
            times.push((at, taken));
        }
        for (time, (_, batches)) in &self.stash {
            match times.first_mut() {
                Some((at, taken)) if at == time => taken.extend(batches.iter().cloned()),
                _ => times.push((*time, batches.clone())),
            }
        }
        crate::rank::closed_time::put_times(
            times
                .iter()
                .map(|(time, batches)| (*time, vec![batches.as_slice()])),
        )
        .map(crate::checkpoint::codec::seal)
    }

    /// Takes back what `snapshot` gave; every time's capability is made
    /// anew from `initial`.
    pub fn restore(
        &mut self,
        bytes: &[u8],
        initial: &Capability<Watermark>,
    ) -> Result<(), EngineError> {
        self.clear();
        let times = crate::rank::closed_time::read_times(bytes, 1, initial)?;
        for (time, (cap, mut sides)) in times {
            self.stash
                .insert(time, (cap, sides.pop().unwrap_or_default()));
        }
        Ok(())
    }
}

/// `batch`'s rows with a time, in time order (a stable sort keeps arrival
/// order among equal times), and their times; `None` if no row has one.
fn by_time(
    batch: &RecordBatch,
    time_column: usize,
) -> Result<Option<(RecordBatch, Vec<Millis>)>, EngineError> {
    let times = event_millis(batch.column(time_column))?;
    let times = times.as_primitive::<Int64Type>();
    let mut order: Vec<u32> = (0..batch.num_rows() as u32)
        .filter(|&i| times.is_valid(i as usize))
        .collect();
    if order.is_empty() {
        return Ok(None);
    }
    order.sort_by_key(|&i| times.value(i as usize));
    let sorted_times: Vec<Millis> = order.iter().map(|&i| times.value(i as usize)).collect();
    let in_order = order.iter().enumerate().all(|(at, &i)| at == i as usize);
    let rows = match in_order {
        true => batch.clone(),
        false => take_record_batch(batch, &UInt32Array::from(order))?,
    };
    Ok(Some((rows, sorted_times)))
}

/// A time column as milliseconds (`Int64`), NULLs kept.
fn event_millis(column: &ArrayRef) -> Result<ArrayRef, EngineError> {
    let millis = cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    Ok(cast(&millis, &DataType::Int64)?)
}

/// Row indices of `keys`' rows grouped by partition (a hash lookup a row,
/// not a sort on key bytes), each group in time order (ties in their
/// order in `times`), and where each group starts (one more entry than
/// groups, the last the row count).
pub fn partition_order<'a>(
    key: impl Fn(usize) -> &'a [u8],
    times: &[Millis],
) -> (Vec<u32>, Vec<usize>) {
    let rows = times.len();
    let mut group_of: Vec<u32> = Vec::with_capacity(rows);
    let mut group_sizes: Vec<u32> = Vec::new();
    {
        let mut groups: crate::fast_hash::HashMap<&'a [u8], u32> = Default::default();
        for row in 0..rows {
            let next = group_sizes.len() as u32;
            let group = *groups.entry(key(row)).or_insert(next);
            if group == next {
                group_sizes.push(0);
            }
            group_sizes[group as usize] += 1;
            group_of.push(group);
        }
    }
    let mut group_starts: Vec<usize> = Vec::with_capacity(group_sizes.len() + 1);
    let mut at = 0usize;
    for &size in &group_sizes {
        group_starts.push(at);
        at += size as usize;
    }
    group_starts.push(at);
    let mut fill = group_starts.clone();
    let mut order = vec![0u32; rows];
    for (row, &group) in group_of.iter().enumerate() {
        order[fill[group as usize]] = row as u32;
        fill[group as usize] += 1;
    }
    for bounds in group_starts.windows(2) {
        // Stable: equal times keep their arrival order.
        order[bounds[0]..bounds[1]].sort_by_key(|&row| times[row as usize]);
    }
    (order, group_starts)
}
