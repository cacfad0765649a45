//! Timestamp ranges over a stream's fragments, as ListFragments, GetClip
//! and HLS select them: by producer or server time, a fragment being in a
//! range when its start is, both ends included.

use runnel_video::{FragmentMeta, Stream, Video, VideoError};
use serde::{Deserialize, Serialize};

use super::invalid;
use crate::aws::AwsError;
use crate::aws::request::Req;

/// GetClip's and HLS's bound on a range's span.
const MAX_SPAN_MS: u64 = 24 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Clock {
    Producer,
    Server,
}

impl Clock {
    /// A selector's `FragmentSelectorType`; `default` when it may be left
    /// out.
    pub fn read(selector: &Req, default: Option<Clock>) -> Result<Clock, AwsError> {
        match (
            selector.opt_str("FragmentSelectorType")?.as_deref(),
            default,
        ) {
            (Some("PRODUCER_TIMESTAMP"), _) => Ok(Clock::Producer),
            (Some("SERVER_TIMESTAMP"), _) => Ok(Clock::Server),
            (None, Some(clock)) => Ok(clock),
            (other, _) => Err(invalid(format!(
                "FragmentSelectorType {} must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP",
                other.unwrap_or("(none)")
            ))),
        }
    }

    /// A fragment's start by this clock, in epoch ms.
    pub fn at(self, fragment: &FragmentMeta) -> u64 {
        match self {
            Clock::Producer => fragment.producer_ms,
            Clock::Server => fragment.server_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub clock: Clock,
    pub start_ms: u64,
    /// `None`: open-ended (HLS's LIVE_REPLAY).
    pub end_ms: Option<u64>,
}

impl TimeRange {
    /// A `TimestampRange`: `StartTimestamp` always, `EndTimestamp` when
    /// `end_required`, and not before the start.
    pub fn read(clock: Clock, range: &Req, end_required: bool) -> Result<TimeRange, AwsError> {
        let start_ms = range
            .opt_time_ms("StartTimestamp")?
            .ok_or_else(|| invalid("TimestampRange needs a StartTimestamp"))?;
        let end_ms = range.opt_time_ms("EndTimestamp")?;
        if end_required && end_ms.is_none() {
            return Err(invalid("TimestampRange needs an EndTimestamp"));
        }
        if end_ms.is_some_and(|end| end < start_ms) {
            return Err(invalid("EndTimestamp must not be before StartTimestamp"));
        }
        Ok(TimeRange {
            clock,
            start_ms,
            end_ms,
        })
    }

    /// GetClip's and HLS's stricter rule: the end later than the start,
    /// and within 24 hours of it.
    pub fn check_span(&self) -> Result<(), AwsError> {
        match self.end_ms {
            Some(end) if end <= self.start_ms => {
                Err(invalid("EndTimestamp must be later than StartTimestamp"))
            }
            Some(end) if end - self.start_ms > MAX_SPAN_MS => Err(invalid(
                "EndTimestamp must be within 24 hours of StartTimestamp",
            )),
            _ => Ok(()),
        }
    }

    pub fn contains(&self, fragment: &FragmentMeta) -> bool {
        let at = self.clock.at(fragment);
        at >= self.start_ms && self.end_ms.is_none_or(|end| at <= end)
    }
}

/// Every fragment of `stream` in `range`, in the order of the range's
/// clock. Of fragments with the same producer time only the newest is
/// kept, as Kinesis Video's playback does.
pub fn fragments_in(
    video: &Video,
    stream: &Stream,
    range: &TimeRange,
) -> Result<Vec<FragmentMeta>, VideoError> {
    let mut found = Vec::new();
    for fragment in video.fragments_from(stream, 0)? {
        let fragment = fragment?;
        // Server times only grow with the sequence: nothing later is in.
        if range.clock == Clock::Server && range.end_ms.is_some_and(|end| fragment.server_ms > end)
        {
            break;
        }
        if range.contains(&fragment) {
            found.push(fragment);
        }
    }
    if range.clock == Clock::Producer {
        found.sort_by_key(|f| (f.producer_ms, f.seq));
        found.dedup_by(|later, earlier| {
            if later.producer_ms == earlier.producer_ms {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
    }
    Ok(found)
}
