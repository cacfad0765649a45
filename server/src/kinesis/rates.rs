//! Records and bytes per second in and out of each stream over the last
//! five minutes, for the console's chart: a ring of one-second buckets per
//! stream. Puts count what was accepted; reads count what GetRecords and
//! SubscribeToShard handed out.
//!
//! Counting sits on the hot path of every put and read, so it takes one
//! read lock of the stream map and one uncontended mutex per call (not per
//! record), and allocates only for a stream's first call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many seconds the ring keeps.
pub const WINDOW_SECONDS: usize = 300;

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// The epoch second these counts are of; a bucket of an older second
    /// is stale and counts as zero.
    second: u64,
    records_in: u64,
    bytes_in: u64,
    records_out: u64,
    bytes_out: u64,
}

/// One stream's ring.
pub struct StreamRates {
    buckets: Mutex<Box<[Bucket; WINDOW_SECONDS]>>,
}

impl Default for StreamRates {
    fn default() -> Self {
        StreamRates {
            buckets: Mutex::new(Box::new([Bucket::default(); WINDOW_SECONDS])),
        }
    }
}

/// Which way records went.
#[derive(Clone, Copy)]
pub enum Direction {
    In,
    Out,
}

impl StreamRates {
    pub fn add(&self, direction: Direction, records: u64, bytes: u64) {
        self.add_at(now_second(), direction, records, bytes);
    }

    fn add_at(&self, second: u64, direction: Direction, records: u64, bytes: u64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = &mut buckets[(second % WINDOW_SECONDS as u64) as usize];
        if bucket.second != second {
            *bucket = Bucket {
                second,
                ..Bucket::default()
            };
        }
        match direction {
            Direction::In => {
                bucket.records_in += records;
                bucket.bytes_in += bytes;
            }
            Direction::Out => {
                bucket.records_out += records;
                bucket.bytes_out += bytes;
            }
        }
    }

    /// The `seconds` whole seconds before `now` (the running second is
    /// left out: its counts are still growing), oldest first.
    pub fn series(&self, now: u64, seconds: usize) -> Series {
        let seconds = seconds.min(WINDOW_SECONDS);
        let buckets = **self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut series = Series {
            end: now,
            records_in: Vec::with_capacity(seconds),
            bytes_in: Vec::with_capacity(seconds),
            records_out: Vec::with_capacity(seconds),
            bytes_out: Vec::with_capacity(seconds),
        };
        for back in (1..=seconds as u64).rev() {
            let Some(second) = now.checked_sub(back) else {
                series.push(&Bucket::default());
                continue;
            };
            let bucket = &buckets[(second % WINDOW_SECONDS as u64) as usize];
            if bucket.second == second {
                series.push(bucket);
            } else {
                series.push(&Bucket::default());
            }
        }
        series
    }
}

/// Per-second counts, oldest first; the last is of the second before `end`.
#[derive(Debug, serde::Serialize, PartialEq, Eq)]
pub struct Series {
    /// Epoch second the series ends at (exclusive).
    pub end: u64,
    pub records_in: Vec<u64>,
    pub bytes_in: Vec<u64>,
    pub records_out: Vec<u64>,
    pub bytes_out: Vec<u64>,
}

impl Series {
    fn push(&mut self, bucket: &Bucket) {
        self.records_in.push(bucket.records_in);
        self.bytes_in.push(bucket.bytes_in);
        self.records_out.push(bucket.records_out);
        self.bytes_out.push(bucket.bytes_out);
    }
}

/// Every stream's ring, by stream name.
#[derive(Default)]
pub struct Rates {
    streams: RwLock<HashMap<String, Arc<StreamRates>>>,
}

impl Rates {
    pub fn add(&self, stream: &str, direction: Direction, records: u64, bytes: u64) {
        if records == 0 {
            return;
        }
        self.of(stream).add(direction, records, bytes);
    }

    /// The stream's ring, made on first use.
    pub fn of(&self, stream: &str) -> Arc<StreamRates> {
        if let Some(rates) = self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(stream)
        {
            return rates.clone();
        }
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(stream.to_string())
            .or_default()
            .clone()
    }

    /// The stream's last `seconds`, zeros for a stream nothing went
    /// through yet.
    pub fn series(&self, stream: &str, seconds: usize) -> Series {
        let now = now_second();
        match self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(stream)
        {
            Some(rates) => rates.series(now, seconds),
            None => StreamRates::default().series(now, seconds),
        }
    }

    /// A deleted stream's counts go with it, so a new stream of the name
    /// starts from zero.
    pub fn forget(&self, stream: &str) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(stream);
    }
}

fn now_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_second_and_stale_buckets_read_as_zero() {
        let rates = StreamRates::default();
        rates.add_at(1_000, Direction::In, 3, 30);
        rates.add_at(1_000, Direction::In, 2, 20);
        rates.add_at(1_001, Direction::Out, 4, 40);
        // 1_300 shares 1_000's bucket: it replaces the old second's counts.
        rates.add_at(1_300, Direction::In, 1, 10);
        let series = rates.series(1_302, 5);
        assert_eq!(series.records_in, [0, 0, 0, 1, 0]);
        assert_eq!(series.bytes_in, [0, 0, 0, 10, 0]);
        // 1_301 shares 1_001's bucket, which holds a second 300 s older.
        assert_eq!(series.records_out, [0, 0, 0, 0, 0]);
        let series = rates.series(1_002, 3);
        assert_eq!(series.records_in, [0, 0, 0]);
        assert_eq!(series.records_out, [0, 0, 4]);
        assert_eq!(series.end, 1_002);
    }

    #[test]
    fn the_running_second_is_left_out_and_windows_are_capped() {
        let rates = StreamRates::default();
        rates.add_at(50, Direction::In, 7, 70);
        assert_eq!(rates.series(50, 2).records_in, [0, 0]);
        assert_eq!(rates.series(51, 2).records_in, [0, 7]);
        assert_eq!(rates.series(51, 10_000).records_in.len(), WINDOW_SECONDS);
        // Seconds before the epoch are zeros, not a panic.
        assert_eq!(rates.series(1, 3).records_in, [0, 0, 0]);
    }

    #[test]
    fn a_forgotten_stream_starts_again_from_zero() {
        let rates = Rates::default();
        rates.add("s", Direction::In, 1, 1);
        rates.forget("s");
        assert!(rates.series("s", 5).records_in.iter().all(|&n| n == 0));
    }
}
