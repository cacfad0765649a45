//! A file reader's checkpoint position: the byte ranges it has still to
//! read, in reading order. The first starts where the reader stands in
//! the current file (the first line not handed out); files it is done with
//! are not in it. A restored reader reads exactly these ranges, so files
//! added to the directory since the job started are not read, as in
//! Flink's bounded file source.
//!
//! Layout (`runnel_engine::checkpoint::encoding`'s little-endian
//! primitives): a version byte, a `u32` count, then per range its path
//! (UTF-8) and its start and end offsets as `i64`.

use std::path::PathBuf;

use runnel_engine::EngineError;
use runnel_engine::checkpoint::encoding::{Reader, put_bytes, put_i64, put_u32};

use super::CheckpointError;

const VERSION: u8 = 1;

/// Bytes `start..end` of `path`; `start` is at a line start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Range {
    pub path: PathBuf,
    pub start: u64,
    pub end: u64,
}

pub(super) fn encode(ranges: &[&Range]) -> Result<Vec<u8>, CheckpointError> {
    let mut out = vec![VERSION];
    put_u32(&mut out, ranges.len() as u32);
    for range in ranges {
        let path = range
            .path
            .to_str()
            .ok_or_else(|| CheckpointError::NotUtf8(range.path.display().to_string()))?;
        put_bytes(&mut out, path.as_bytes());
        put_i64(&mut out, offset(range.start)?);
        put_i64(&mut out, offset(range.end)?);
    }
    Ok(out)
}

pub(super) fn decode(bytes: &[u8]) -> Result<Vec<Range>, EngineError> {
    let mut reader = Reader::new(bytes);
    if reader.take(1)? != [VERSION] {
        return Err(
            CheckpointError::Corrupt("an unknown version of a file reader's position").into(),
        );
    }
    let count = reader.u32()?;
    let mut ranges = Vec::new();
    for _ in 0..count {
        let path = std::str::from_utf8(reader.bytes()?)
            .map_err(|_| CheckpointError::Corrupt("a path that is not UTF-8"))?;
        let start = u64::try_from(reader.i64()?);
        let end = u64::try_from(reader.i64()?);
        let (Ok(start), Ok(end)) = (start, end) else {
            return Err(CheckpointError::Corrupt("a negative file offset").into());
        };
        if end < start {
            return Err(CheckpointError::Corrupt("a range that ends before it starts").into());
        }
        ranges.push(Range {
            path: PathBuf::from(path),
            start,
            end,
        });
    }
    if !reader.is_empty() {
        return Err(
            CheckpointError::Corrupt("trailing bytes after a file reader's position").into(),
        );
    }
    Ok(ranges)
}

fn offset(n: u64) -> Result<i64, CheckpointError> {
    i64::try_from(n).map_err(|_| CheckpointError::Corrupt("a file offset beyond i64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_truncation() {
        let ranges = [
            Range {
                path: PathBuf::from("/data/a.csv"),
                start: 10,
                end: 400,
            },
            Range {
                path: PathBuf::from("/data/b.csv"),
                start: 0,
                end: 7,
            },
        ];
        let bytes = encode(&ranges.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(decode(&bytes).unwrap(), ranges);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
