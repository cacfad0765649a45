//! The bytes of a checkpoint: per worker, each operator's state under its
//! id. Length-prefixed, little-endian; a version byte first so that a
//! later layout can still read this one. Operators' own states are Arrow
//! IPC where they hold rows (`batches_to_bytes`).

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::EngineError;

const MAGIC: &[u8; 4] = b"RNCK";
/// Version 1 held one full state per operator; version 2 adds deltas
/// (incremental checkpoints) and the oldest checkpoint one depends on.
const VERSION_FULL_ONLY: u8 = 1;
const VERSION: u8 = 2;

/// One worker's operator states, by operator id, each whole.
pub type WorkerState = Vec<(String, Vec<u8>)>;

/// One operator's state in a checkpoint: `pieces` to apply in order, on
/// top of the same operator's entry in checkpoint `previous` if there is
/// one. A full state is one piece with no previous; an incremental one is
/// a delta on the previous checkpoint's; a savepoint resolves every
/// chain into pieces of its own, so that it stands alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub previous: Option<u64>,
    pub pieces: Vec<Vec<u8>>,
}

impl Entry {
    pub fn full(bytes: Vec<u8>) -> Self {
        Entry {
            previous: None,
            pieces: vec![bytes],
        }
    }
}

/// One worker's entries, by operator id.
pub type WorkerEntries = Vec<(String, Entry)>;

/// A decoded checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// The oldest checkpoint some entry's chain reaches back to, which
    /// storage must keep as long as it keeps this one.
    pub needs_from: Option<u64>,
    pub workers: Vec<WorkerEntries>,
}

/// A checkpoint of whole states only.
pub fn encode(workers: &[WorkerState]) -> Vec<u8> {
    encode_checkpoint(&Checkpoint {
        needs_from: None,
        workers: workers
            .iter()
            .map(|states| {
                states
                    .iter()
                    .map(|(id, bytes)| (id.clone(), Entry::full(bytes.clone())))
                    .collect()
            })
            .collect(),
    })
}

/// The states of a checkpoint of whole states only; one with deltas is
/// refused (resolve it against its storage first).
pub fn decode(bytes: &[u8]) -> Result<Vec<WorkerState>, EngineError> {
    decode_checkpoint(bytes)?
        .workers
        .into_iter()
        .map(|entries| {
            entries
                .into_iter()
                .map(
                    |(id, entry)| match (entry.previous, <[Vec<u8>; 1]>::try_from(entry.pieces)) {
                        (None, Ok([whole])) => Ok((id, whole)),
                        _ => Err(corrupt(
                            "a state is incremental where a whole one is wanted",
                        )),
                    },
                )
                .collect()
        })
        .collect()
}

pub fn encode_checkpoint(checkpoint: &Checkpoint) -> Vec<u8> {
    // Sized exactly: the pieces may be hundreds of MB, and each doubling
    // of a growing buffer would copy them again into fresh pages.
    let mut out = Vec::with_capacity(encoded_len(checkpoint));
    // Writing into a Vec cannot fail.
    let _ = write_checkpoint(checkpoint, &mut out);
    out
}

/// `encode_checkpoint`'s bytes, written to `out` piece by piece: storage
/// that writes a file need not gather them into one buffer first.
pub fn write_checkpoint(checkpoint: &Checkpoint, out: &mut dyn Write) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(MAGIC);
    head.push(VERSION);
    head.extend_from_slice(&checkpoint.needs_from.unwrap_or(0).to_le_bytes());
    put_u32(&mut head, checkpoint.workers.len() as u32);
    for entries in &checkpoint.workers {
        put_u32(&mut head, entries.len() as u32);
        for (id, entry) in entries {
            put_bytes(&mut head, id.as_bytes());
            head.extend_from_slice(&entry.previous.unwrap_or(0).to_le_bytes());
            put_u32(&mut head, entry.pieces.len() as u32);
            for piece in &entry.pieces {
                head.extend_from_slice(&(piece.len() as u64).to_le_bytes());
                out.write_all(&head)?;
                head.clear();
                out.write_all(piece)?;
            }
        }
    }
    out.write_all(&head)
}

pub fn encoded_len(checkpoint: &Checkpoint) -> usize {
    let entry_len = |(id, entry): &(String, Entry)| {
        8 + id.len() + 8 + 4 + entry.pieces.iter().map(|p| 8 + p.len()).sum::<usize>()
    };
    4 + 1
        + 8
        + 4
        + checkpoint
            .workers
            .iter()
            .map(|entries| 4 + entries.iter().map(entry_len).sum::<usize>())
            .sum::<usize>()
}

pub fn decode_checkpoint(bytes: &[u8]) -> Result<Checkpoint, EngineError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(4)? != MAGIC {
        return Err(corrupt("not a Runnel checkpoint"));
    }
    let version = reader.take(1)?[0];
    if version != VERSION && version != VERSION_FULL_ONLY {
        return Err(corrupt(
            "not a Runnel checkpoint of a version this one reads",
        ));
    }
    let incremental = version == VERSION;
    let needs_from = if incremental { reader.id()? } else { None };
    let workers = reader.u32()?;
    let mut out = Vec::new();
    for _ in 0..workers {
        let count = reader.u32()?;
        let mut entries = Vec::new();
        for _ in 0..count {
            let id = String::from_utf8(reader.bytes()?.to_vec())
                .map_err(|_| corrupt("an operator id is not UTF-8"))?;
            let entry = if incremental {
                let previous = reader.id()?;
                let pieces = reader.u32()?;
                if pieces == 0 {
                    return Err(corrupt("a state of no pieces"));
                }
                let pieces = (0..pieces)
                    .map(|_| reader.bytes().map(<[u8]>::to_vec))
                    .collect::<Result<Vec<_>, _>>()?;
                Entry { previous, pieces }
            } else {
                Entry::full(reader.bytes()?.to_vec())
            };
            entries.push((id, entry));
        }
        out.push(entries);
    }
    if reader.at != bytes.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(Checkpoint {
        needs_from,
        workers: out,
    })
}

/// The oldest checkpoint `bytes` depends on, read from its header alone.
pub fn needs_from(bytes: &[u8]) -> Result<Option<u64>, EngineError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(4)? != MAGIC {
        return Err(corrupt("not a Runnel checkpoint"));
    }
    match reader.take(1)?[0] {
        VERSION => reader.id(),
        _ => Ok(None),
    }
}

fn corrupt(what: &str) -> EngineError {
    EngineError::Runtime(format!("checkpoint is corrupt: {what}"))
}

pub fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_le_bytes());
}

pub fn put_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(&n.to_le_bytes());
}

pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads what `put_*` wrote, failing on truncation instead of panicking.
pub struct Reader<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], EngineError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| corrupt("truncated"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub fn u32(&mut self) -> Result<u32, EngineError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, EngineError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// A checkpoint id, 0 standing for none (ids start at 1).
    fn id(&mut self) -> Result<Option<u64>, EngineError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(Some(u64::from_le_bytes(a)).filter(|&id| id != 0))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], EngineError> {
        let len = self.i64()?;
        let len = usize::try_from(len).map_err(|_| corrupt("negative length"))?;
        self.take(len)
    }

    pub fn is_empty(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Reserved at most ahead of encoding (address space, not pages, until
/// written): a buffer grown by doubling copies the state again and again.
const RESERVE_AT_MOST: usize = 256 << 20;

/// Record batches of one schema as Arrow IPC, its buffers LZ4-compressed:
/// checkpoints of kept rows (strings most of all) shrink several times for
/// less CPU than writing the difference costs.
pub fn batches_to_bytes(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    write_batches(&mut out, schema, batches)?;
    Ok(out)
}

/// `put_bytes` of `batches_to_bytes`, encoded in place rather than
/// encoded and then copied.
pub fn put_batches_bytes(
    out: &mut Vec<u8>,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), EngineError> {
    let at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    write_batches(out, schema, batches)?;
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn write_batches(
    out: &mut Vec<u8>,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), EngineError> {
    let uncompressed: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    out.reserve(uncompressed.min(RESERVE_AT_MOST));
    let options = IpcWriteOptions::default()
        .try_with_compression(Some(datafusion::arrow::ipc::CompressionType::LZ4_FRAME))?;
    let mut writer = StreamWriter::try_new_with_options(out, schema, options)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(())
}

pub fn batches_from_bytes(bytes: &[u8]) -> Result<Vec<RecordBatch>, EngineError> {
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_truncation() {
        let workers = vec![vec![("Source#0".to_string(), vec![1, 2, 3])], vec![]];
        let bytes = encode(&workers);
        assert_eq!(decode(&bytes).unwrap(), workers);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn chains_round_trip_and_whole_states_only_decode_whole() {
        let checkpoint = Checkpoint {
            needs_from: Some(3),
            workers: vec![vec![
                ("Source#0".to_string(), Entry::full(vec![1])),
                (
                    "GroupAggregate#0".to_string(),
                    Entry {
                        previous: Some(4),
                        pieces: vec![vec![2, 3]],
                    },
                ),
            ]],
        };
        let bytes = encode_checkpoint(&checkpoint);
        assert_eq!(bytes.len(), encoded_len(&checkpoint));
        assert_eq!(decode_checkpoint(&bytes).unwrap(), checkpoint);
        assert_eq!(needs_from(&bytes).unwrap(), Some(3));
        assert!(decode(&bytes).is_err());
        for cut in 0..bytes.len() {
            assert!(decode_checkpoint(&bytes[..cut]).is_err());
        }
    }
}
