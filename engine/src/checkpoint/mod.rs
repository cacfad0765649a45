//! Checkpoints: a consistent cut of a running job (every source's
//! position, every operator's state, what exactly-once sinks hold back),
//! taken while the job runs and restored after a crash.
//!
//! The mechanism is a pause and drain, not Flink's barriers: Runnel's
//! timely timestamps are watermarks, so a barrier cannot travel as a time
//! of its own, and a record in flight carries no epoch. Instead every
//! worker stops its sources (`worker::paused`), keeps stepping until no
//! message is in flight on any channel (timely's own message log counts
//! each send and receive: `coordinator`), and only then asks each
//! operator for its state. With the sources still and the channels empty,
//! the states and the sources' positions describe the same prefix of the
//! input. Progress updates may still be in flight: they only say that a
//! window may fire, and since the restored sources restore the same
//! watermark, the window fires after a restore as it would have without
//! one.

pub mod chain;
pub(crate) mod codec;
pub mod committer;
pub mod coordinator;
pub mod encoding;
pub mod peers;
pub mod storage;
pub mod worker;

use std::time::Duration;

pub use committer::CheckpointStats;
pub use coordinator::Coordinator;
pub use storage::{CheckpointStorage, MemoryStorage, OutputRecord, SinkOutput, StoredCheckpoint};

pub const INTERVAL: &str = "execution.checkpointing.interval";
pub const MIN_PAUSE: &str = "execution.checkpointing.min-pause";
pub const MODE: &str = "execution.checkpointing.mode";
pub const RETAINED: &str = "state.checkpoints.num-retained";
pub const TIMEOUT: &str = "execution.checkpointing.timeout";
pub const INCREMENTAL: &str = "execution.checkpointing.incremental";
pub const TOLERABLE_FAILURES: &str = "execution.checkpointing.tolerable-failed-checkpoints";
/// Flink's older name for `INCREMENTAL`.
pub const INCREMENTAL_OLD: &str = "state.backend.incremental";

/// Flink's `execution.checkpointing.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sinks into this server's own streams hold their records back until
    /// the checkpoint that covers them is durable.
    ExactlyOnce,
    /// Sinks write at once; after a restore, records written since the
    /// last checkpoint are written again.
    AtLeastOnce,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    pub interval: Duration,
    /// The least time between the end of one checkpoint and the start of
    /// the next.
    pub min_pause: Duration,
    pub mode: Mode,
    /// How many completed checkpoints are kept.
    pub retained: usize,
    /// A checkpoint whose drain takes longer fails (and with it the job,
    /// as Flink's default of no tolerable failed checkpoints has it).
    pub timeout: Duration,
    /// Operators that can give deltas (the GROUP BY) checkpoint only what
    /// changed since the last checkpoint. On unless a script turns it off:
    /// unlike RocksDB's in Flink, Runnel's deltas cost no more to take.
    pub incremental: bool,
    /// Consecutive failed checkpoints the job goes on after (Flink's
    /// default: none). What a failed one's exactly-once sinks held is
    /// committed with the next.
    pub tolerable_failures: u32,
}

impl CheckpointConfig {
    /// The checkpointing a script's `SET` statements ask for, if any:
    /// Flink checkpoints only when an interval is set.
    pub fn from_settings(
        settings: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<Self>, String> {
        let Some(interval) = settings.get(INTERVAL) else {
            return Ok(None);
        };
        let interval = duration(INTERVAL, interval)?;
        if interval.is_zero() {
            return Ok(None);
        }
        let min_pause = match settings.get(MIN_PAUSE) {
            Some(text) => duration(MIN_PAUSE, text)?,
            None => Duration::ZERO,
        };
        let mode = match settings.get(MODE).map(|m| m.trim().to_ascii_uppercase()) {
            None => Mode::ExactlyOnce,
            Some(m) if m == "EXACTLY_ONCE" => Mode::ExactlyOnce,
            Some(m) if m == "AT_LEAST_ONCE" => Mode::AtLeastOnce,
            Some(other) => {
                return Err(format!(
                    "'{MODE}' must be EXACTLY_ONCE or AT_LEAST_ONCE, got '{other}'"
                ));
            }
        };
        let retained = match settings.get(RETAINED) {
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    format!("'{RETAINED}' must be a whole number of at least 1, got '{text}'")
                })?,
            None => 1,
        };
        let timeout = match settings.get(TIMEOUT) {
            Some(text) => duration(TIMEOUT, text)?,
            None => Duration::from_secs(600),
        };
        let incremental = match settings.get(INCREMENTAL).or(settings.get(INCREMENTAL_OLD)) {
            None => true,
            Some(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(format!(
                        "'{INCREMENTAL}' must be true or false, got '{text}'"
                    ));
                }
            },
        };
        let tolerable_failures = match settings.get(TOLERABLE_FAILURES) {
            None => 0,
            Some(text) => text.trim().parse::<u32>().map_err(|_| {
                format!("'{TOLERABLE_FAILURES}' must be a whole number, got '{text}'")
            })?,
        };
        Ok(Some(CheckpointConfig {
            interval,
            min_pause,
            mode,
            retained,
            timeout,
            incremental,
            tolerable_failures,
        }))
    }
}

/// Flink's duration syntax: `10 s`, `500 ms`, `1 min`, `2h`, or bare
/// milliseconds.
pub fn duration(key: &str, text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("'{key}' must be a duration such as '10 s', got '{text}'");
    let number: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => number,
        "s" | "sec" | "secs" | "second" | "seconds" => number * 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => number * 60_000,
        "h" | "hour" | "hours" => number * 3_600_000,
        "d" | "day" | "days" => number * 86_400_000,
        _ => return Err(bad()),
    };
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flink_durations_and_modes() {
        let settings = [
            (INTERVAL.to_string(), "10 s".to_string()),
            (MODE.to_string(), "at_least_once".to_string()),
            (RETAINED.to_string(), "3".to_string()),
        ]
        .into_iter()
        .collect();
        let config = CheckpointConfig::from_settings(&settings).unwrap().unwrap();
        assert_eq!(config.interval, Duration::from_secs(10));
        assert_eq!(config.mode, Mode::AtLeastOnce);
        assert_eq!(config.retained, 3);
        assert_eq!(duration("k", "1 min"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("k", "250"), Ok(Duration::from_millis(250)));
        assert!(duration("k", "soon").is_err());
        assert!(
            CheckpointConfig::from_settings(&Default::default())
                .unwrap()
                .is_none()
        );
    }
}
