//! A kinesis reader's position in a checkpoint: per shard it owns, where
//! reading resumes, how many rows past that it already handed out, and
//! whether the shard is done. Binary, with the engine's length-prefixed
//! helpers and a version byte first.

use std::collections::BTreeMap;

use runnel_engine::EngineError;
use runnel_engine::checkpoint::encoding::{Reader, put_bytes, put_i64, put_u32};
use runnel_streams::IteratorStart;

const VERSION: u8 = 1;

/// Where a shard resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    TrimHorizon,
    /// Records that arrived at or after these epoch milliseconds: a shard
    /// started at `LATEST` is pinned to when it started, so that a restore
    /// does not skip what came since.
    AtTimestamp(u64),
    /// After a record every row of which was handed out.
    After(String),
}

impl Resume {
    pub fn start(&self) -> IteratorStart {
        match self {
            Resume::TrimHorizon => IteratorStart::TrimHorizon,
            Resume::AtTimestamp(ms) => IteratorStart::AtTimestamp(*ms),
            Resume::After(sequence) => IteratorStart::AfterSequence(sequence.clone()),
        }
    }

    pub fn sequence(&self) -> Option<&str> {
        match self {
            Resume::After(sequence) => Some(sequence),
            _ => None,
        }
    }
}

/// One shard as far as its reader handed it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPosition {
    pub resume: Resume,
    /// Rows handed out past `resume`: the first of a page whose other rows
    /// were still queued. A restored reader reads the page again and drops
    /// that many.
    pub rows: u64,
    pub finished: bool,
}

impl ShardPosition {
    pub fn at(resume: Resume) -> Self {
        ShardPosition {
            resume,
            rows: 0,
            finished: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderPosition {
    /// Shards below this index existed when the job was first submitted:
    /// they start at the table's initial position, later ones at their
    /// beginning. Kept so that shards opened while the job was down are
    /// not taken for initial ones.
    pub initial_below: u32,
    pub shards: BTreeMap<u32, ShardPosition>,
}

const TRIM_HORIZON: u8 = 0;
const AT_TIMESTAMP: u8 = 1;
const AFTER: u8 = 2;

impl ReaderPosition {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        put_u32(&mut out, self.initial_below);
        put_u32(&mut out, self.shards.len() as u32);
        for (index, shard) in &self.shards {
            put_u32(&mut out, *index);
            out.push(u8::from(shard.finished));
            match &shard.resume {
                Resume::TrimHorizon => out.push(TRIM_HORIZON),
                Resume::AtTimestamp(ms) => {
                    out.push(AT_TIMESTAMP);
                    put_i64(&mut out, *ms as i64);
                }
                Resume::After(sequence) => {
                    out.push(AFTER);
                    put_bytes(&mut out, sequence.as_bytes());
                }
            }
            put_i64(&mut out, shard.rows as i64);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EngineError> {
        let mut reader = Reader::new(bytes);
        if reader.take(1)? != [VERSION] {
            return Err(corrupt("an unknown version"));
        }
        let initial_below = reader.u32()?;
        let count = reader.u32()?;
        let mut shards = BTreeMap::new();
        for _ in 0..count {
            let index = reader.u32()?;
            let finished = reader.take(1)? == [1];
            let resume = match reader.take(1)? {
                [TRIM_HORIZON] => Resume::TrimHorizon,
                [AT_TIMESTAMP] => Resume::AtTimestamp(reader.i64()? as u64),
                [AFTER] => Resume::After(
                    String::from_utf8(reader.bytes()?.to_vec())
                        .map_err(|_| corrupt("a sequence number that is not text"))?,
                ),
                _ => return Err(corrupt("an unknown kind of position")),
            };
            let rows = u64::try_from(reader.i64()?).map_err(|_| corrupt("a negative row count"))?;
            shards.insert(
                index,
                ShardPosition {
                    resume,
                    rows,
                    finished,
                },
            );
        }
        if reader.at != bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(ReaderPosition {
            initial_below,
            shards,
        })
    }
}

fn corrupt(what: &str) -> EngineError {
    EngineError::Runtime(format!(
        "the kinesis source's checkpointed position is corrupt: {what}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_refuse_garbage() {
        let position = ReaderPosition {
            initial_below: 3,
            shards: [
                (
                    0,
                    ShardPosition {
                        resume: Resume::After("18446744073709551617".into()),
                        rows: 0,
                        finished: true,
                    },
                ),
                (
                    2,
                    ShardPosition {
                        resume: Resume::AtTimestamp(1_700_000_000_000),
                        rows: 0,
                        finished: false,
                    },
                ),
                (
                    4,
                    ShardPosition {
                        resume: Resume::TrimHorizon,
                        rows: 8192,
                        finished: false,
                    },
                ),
            ]
            .into_iter()
            .collect(),
        };
        let bytes = position.encode();
        assert_eq!(ReaderPosition::decode(&bytes).ok(), Some(position));
        assert!(ReaderPosition::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(ReaderPosition::decode(&[9]).is_err());
        assert!(ReaderPosition::decode(&[]).is_err());
    }
}
