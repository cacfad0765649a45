//! One worker's share of the files: a byte range of each, split at line
//! ends, read a chunk at a time and decoded whole lines at a time.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::source::{BatchReader, Poll};

use super::io_error;
use super::position::{self, Range};
use crate::ConnectorError;
use crate::format::{BATCH_ROWS, Decoder};

/// Bytes read per read: large enough to amortise the decoder call, small
/// enough to keep a worker responsive.
const CHUNK_BYTES: usize = 4 << 20;

pub(super) struct FileReader {
    /// Ranges still to open, last first.
    ranges: Vec<Range>,
    current: Option<Open>,
    /// A changelog's bad envelope fails the job naming its file.
    name_files: bool,
    decoder: Decoder,
    /// In a checkpointed job every decoded line is handed out before
    /// `poll` returns, so that a byte offset says exactly which rows were
    /// read: a unit of at most `BATCH_ROWS` lines is decoded at a time and
    /// its rows given as one batch.
    exact: bool,
    /// Decoded batches not yet handed out, last first.
    ready: Vec<RecordBatch>,
    /// Reused, so that no chunk pays for zeroing or reallocating.
    buffer: Vec<u8>,
    /// `buffer[start..end]`: read and not yet decoded (at most a partial
    /// line, between reads).
    start: usize,
    end: usize,
}

/// The range being read.
struct Open {
    path: PathBuf,
    file: std::io::Take<File>,
    /// The file offset of `buffer[start]`: every line before it is decoded.
    offset: u64,
    /// Where the range ends.
    end: u64,
    /// Read to the end of the range: what is left in the buffer is its
    /// last line, which may lack a line end.
    eof: bool,
}

impl FileReader {
    /// `ranges` in reading order.
    pub(super) fn new(ranges: Vec<Range>, decoder: Decoder, name_files: bool, exact: bool) -> Self {
        let mut reader = FileReader {
            ranges: Vec::new(),
            current: None,
            name_files,
            decoder,
            exact,
            ready: Vec::new(),
            buffer: Vec::new(),
            start: 0,
            end: 0,
        };
        reader.reset(ranges);
        reader
    }

    fn reset(&mut self, ranges: Vec<Range>) {
        self.ranges = ranges
            .into_iter()
            .filter(|r| r.end > r.start)
            .rev()
            .collect();
        self.current = None;
        self.ready.clear();
        self.start = 0;
        self.end = 0;
    }

    fn open(range: Range) -> Result<Open, ConnectorError> {
        let mut file = File::open(&range.path).map_err(io_error(&range.path))?;
        file.seek(SeekFrom::Start(range.start))
            .map_err(io_error(&range.path))?;
        Ok(Open {
            file: file.take(range.end - range.start),
            offset: range.start,
            end: range.end,
            eof: false,
            path: range.path,
        })
    }

    /// How many bytes of `pending` to decode now: whole lines only, and
    /// in exact mode at most `BATCH_ROWS` of them.
    fn unit(&self, pending: &[u8]) -> usize {
        let last_line_end = if self.exact {
            memchr::memchr_iter(b'\n', pending).take(BATCH_ROWS).last()
        } else {
            memchr::memrchr(b'\n', pending)
        };
        last_line_end.map_or(0, |i| i + 1)
    }

    fn decode(&mut self, path: &Path, from: usize, to: usize) -> Result<(), EngineError> {
        let mut batches = match self.decoder.decode_lines(&self.buffer[from..to]) {
            Ok(batches) => batches,
            Err(error) if self.name_files => {
                return Err(EngineError::Connector {
                    connector: "filesystem",
                    message: format!("debezium-json: {}: {error}", path.display()),
                });
            }
            Err(error) => return Err(error.into()),
        };
        if self.exact && batches.len() > 1 {
            // A decoder may split a unit (a bad line retried line by line),
            // and a decoder's state may change how: one batch per unit keeps
            // the position a plain byte offset.
            let schema = batches[0].schema();
            batches = vec![datafusion::arrow::compute::concat_batches(
                &schema, &batches,
            )?];
        }
        batches.reverse();
        self.ready = batches;
        Ok(())
    }

    /// Keeps the partial line at the front of the buffer and reads the
    /// next chunk after it.
    fn read_chunk(&mut self) -> Result<(), EngineError> {
        let Some(open) = self.current.as_mut() else {
            return Ok(());
        };
        self.buffer.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buffer.len() < self.end + CHUNK_BYTES {
            self.buffer.resize(self.end + CHUNK_BYTES, 0);
        }
        let n = read_full(
            &mut open.file,
            &mut self.buffer[self.end..self.end + CHUNK_BYTES],
        )
        .map_err(io_error(&open.path))?;
        open.eof = n == 0;
        self.end += n;
        Ok(())
    }
}

impl BatchReader for FileReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        loop {
            if let Some(batch) = self.ready.pop() {
                return Ok(Poll::Batch(batch));
            }
            let Some(open) = self.current.as_ref() else {
                let Some(range) = self.ranges.pop() else {
                    return Ok(Poll::Done);
                };
                self.current = Some(Self::open(range)?);
                self.start = 0;
                self.end = 0;
                continue;
            };
            let (eof, path) = (open.eof, open.path.clone());
            let pending = &self.buffer[self.start..self.end];
            let unit = if eof {
                pending.len()
            } else {
                self.unit(pending)
            };
            if unit > 0 {
                let from = self.start;
                self.start += unit;
                if let Some(open) = self.current.as_mut() {
                    open.offset += unit as u64;
                }
                self.decode(&path, from, from + unit)?;
            } else if eof {
                self.current = None;
            } else {
                self.read_chunk()?;
            }
        }
    }

    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        if !self.ready.is_empty() {
            return Err(super::CheckpointError::RowsInHand.into());
        }
        let current = self.current.as_ref().map(|open| Range {
            path: open.path.clone(),
            start: open.offset,
            end: open.end,
        });
        let ranges: Vec<&Range> = current.iter().chain(self.ranges.iter().rev()).collect();
        Ok(Some(position::encode(&ranges)?))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        let ranges = position::decode(position)?;
        self.reset(ranges);
        Ok(())
    }
}

/// Worker `worker`'s share of `path`: from the first line start at or after
/// `worker/peers` of its length to the first at or after `(worker+1)/peers`.
pub(super) fn line_aligned_range(
    path: &Path,
    worker: usize,
    peers: usize,
) -> Result<Range, ConnectorError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let len = file.metadata().map_err(io_error(path))?.len();
    let mut boundary = |nth: usize| -> Result<u64, ConnectorError> {
        let guess = len * nth as u64 / peers as u64;
        if guess == 0 || guess >= len {
            return Ok(guess.min(len));
        }
        // The line that contains byte `guess - 1` belongs to the previous share.
        file.seek(SeekFrom::Start(guess - 1))
            .map_err(io_error(path))?;
        let mut position = guess - 1;
        let mut buf = [0u8; 8192];
        loop {
            let n = file.read(&mut buf).map_err(io_error(path))?;
            if n == 0 {
                return Ok(len);
            }
            if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
                return Ok(position + i as u64 + 1);
            }
            position += n as u64;
        }
    };
    Ok(Range {
        path: path.to_path_buf(),
        start: boundary(worker)?,
        end: boundary(worker + 1)?,
    })
}

/// All of the file at `path` for the worker that reads it whole, nothing
/// for the others.
pub(super) fn whole_file_range(path: &Path, mine: bool) -> Result<Range, ConnectorError> {
    let len = std::fs::metadata(path).map_err(io_error(path))?.len();
    Ok(Range {
        path: path.to_path_buf(),
        start: if mine { 0 } else { len },
        end: len,
    })
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
