//! The bytes of a checkpoint: per worker, each operator's state under its
//! id. Length-prefixed, little-endian; a version byte first so that a
//! later layout can still read this one. Operators' own states are Arrow
//! IPC where they hold rows (`batches_to_bytes`).

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::EngineError;

const MAGIC: &[u8; 4] = b"RNCK";
const VERSION: u8 = 1;

/// One worker's operator states, by operator id.
pub type WorkerState = Vec<(String, Vec<u8>)>;

pub fn encode(workers: &[WorkerState]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    put_u32(&mut out, workers.len() as u32);
    for states in workers {
        put_u32(&mut out, states.len() as u32);
        for (id, bytes) in states {
            put_bytes(&mut out, id.as_bytes());
            put_bytes(&mut out, bytes);
        }
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<Vec<WorkerState>, EngineError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(4)? != MAGIC || reader.take(1)? != [VERSION] {
        return Err(corrupt("not a Runnel checkpoint of this version"));
    }
    let workers = reader.u32()?;
    let mut out = Vec::new();
    for _ in 0..workers {
        let count = reader.u32()?;
        let mut states = Vec::new();
        for _ in 0..count {
            let id = String::from_utf8(reader.bytes()?.to_vec())
                .map_err(|_| corrupt("an operator id is not UTF-8"))?;
            states.push((id, reader.bytes()?.to_vec()));
        }
        out.push(states);
    }
    if reader.at != bytes.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
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

    pub fn bytes(&mut self) -> Result<&'a [u8], EngineError> {
        let len = self.i64()?;
        let len = usize::try_from(len).map_err(|_| corrupt("negative length"))?;
        self.take(len)
    }

    pub fn is_empty(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Record batches of one schema as Arrow IPC.
pub fn batches_to_bytes(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, EngineError> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    for batch in batches {
        writer.write(batch)?;
    }
    Ok(writer.into_inner()?)
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
}
