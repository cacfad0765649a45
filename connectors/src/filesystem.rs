//! The `filesystem` connector: a file or a directory of files, read in
//! byte ranges split at line ends so that every worker reads its share of
//! even a single large file; written as part files, one per worker.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::{SinkProvider, SourceProvider};
use runnel_engine::sink::BatchSink;
use runnel_engine::source::{BatchReader, Poll};
use runnel_engine::time::Watermark;

use crate::ConnectorError;
use crate::format::{Decoder, Format, encode};
use crate::options::Options;

/// Bytes read per poll: large enough to amortise the decoder call, small
/// enough to keep a worker responsive.
const CHUNK_BYTES: usize = 4 << 20;

pub struct FileSource {
    files: Vec<PathBuf>,
    format: Format,
    schema: SchemaRef,
}

impl FileSource {
    pub fn new(options: &Options, schema: SchemaRef) -> Result<Self, ConnectorError> {
        let path = PathBuf::from(options.required("path")?);
        let format = Format::from_options(options)?;
        let files = list_files(&path)?;
        format.decoder(schema.clone())?;
        Ok(FileSource {
            files,
            format,
            schema,
        })
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ConnectorError + '_ {
    move |source| ConnectorError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn list_files(path: &Path) -> Result<Vec<PathBuf>, ConnectorError> {
    let metadata = std::fs::metadata(path).map_err(io_error(path))?;
    if metadata.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_error(path))? {
        let entry = entry.map_err(io_error(path))?;
        let name = entry.file_name();
        // Hidden and in-progress files, as Flink's file source skips them.
        if name.to_string_lossy().starts_with(['.', '_']) {
            continue;
        }
        if entry.file_type().map_err(io_error(path))?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

impl SourceProvider for FileSource {
    fn reader(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        let mut ranges = Vec::new();
        for path in &self.files {
            let (start, end) = line_aligned_range(path, worker, peers)?;
            if end > start {
                ranges.push((path.clone(), start, end));
            }
        }
        ranges.reverse();
        Ok(Box::new(FileReader {
            ranges,
            current: None,
            decoder: self.format.decoder(self.schema.clone())?,
            ready: Vec::new(),
            carry: Vec::new(),
        }))
    }
}

/// Worker `worker`'s share of `path`: from the first line start at or after
/// `worker/peers` of its length to the first at or after `(worker+1)/peers`.
fn line_aligned_range(
    path: &Path,
    worker: usize,
    peers: usize,
) -> Result<(u64, u64), ConnectorError> {
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
    Ok((boundary(worker)?, boundary(worker + 1)?))
}

struct FileReader {
    /// Ranges still to read, last first.
    ranges: Vec<(PathBuf, u64, u64)>,
    current: Option<(PathBuf, std::io::Take<File>)>,
    decoder: Decoder,
    ready: Vec<RecordBatch>,
    /// The partial last line of the previous chunk.
    carry: Vec<u8>,
}

impl BatchReader for FileReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        loop {
            if let Some(batch) = self.ready.pop() {
                return Ok(Poll::Batch(batch));
            }
            if self.current.is_none() {
                let Some((path, start, end)) = self.ranges.pop() else {
                    return Ok(Poll::Done);
                };
                let mut file = File::open(&path)
                    .map_err(io_error(&path))
                    .map_err(EngineError::from)?;
                file.seek(SeekFrom::Start(start))
                    .map_err(io_error(&path))
                    .map_err(EngineError::from)?;
                self.current = Some((path, file.take(end - start)));
            }
            let Some((path, reader)) = self.current.as_mut() else {
                continue;
            };
            let mut chunk = std::mem::take(&mut self.carry);
            let before = chunk.len();
            chunk.resize(before + CHUNK_BYTES, 0);
            let n = read_full(reader, &mut chunk[before..])
                .map_err(io_error(path))
                .map_err(EngineError::from)?;
            chunk.truncate(before + n);
            let at_end = n == 0;
            let complete = if at_end {
                self.current = None;
                chunk.len()
            } else {
                chunk.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
            };
            self.carry = chunk.split_off(complete);
            if !chunk.is_empty() {
                let mut batches = self.decoder.decode_lines(&chunk)?;
                batches.reverse();
                self.ready = batches;
            }
        }
    }
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

/// Writes `part-<worker>.<ext>` files into the `path` directory.
pub struct FileSink {
    dir: PathBuf,
    format: Format,
    extension: &'static str,
}

impl FileSink {
    pub fn new(options: &Options) -> Result<Self, ConnectorError> {
        let dir = PathBuf::from(options.required("path")?);
        let format = Format::from_options(options)?;
        let extension = match format {
            Format::Json { .. } => "json",
            Format::Csv { .. } => "csv",
        };
        Ok(FileSink {
            dir,
            format,
            extension,
        })
    }
}

impl SinkProvider for FileSink {
    fn sink(&self, worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(io_error(&self.dir))
            .map_err(EngineError::from)?;
        let path = self.dir.join(format!("part-{worker}.{}", self.extension));
        let file = File::create(&path)
            .map_err(io_error(&path))
            .map_err(EngineError::from)?;
        Ok(Box::new(FileWriter {
            path,
            out: BufWriter::new(file),
            format: self.format.clone(),
        }))
    }
}

struct FileWriter {
    path: PathBuf,
    out: BufWriter<File>,
    format: Format,
}

impl BatchSink for FileWriter {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        Ok(encode(&self.format, &batch, &mut self.out)?)
    }

    fn watermark(&mut self, watermark: Option<Watermark>) -> Result<(), EngineError> {
        if watermark.is_none() {
            let path = &self.path;
            self.out.flush().map_err(io_error(path))?;
            self.out.get_ref().sync_all().map_err(io_error(path))?;
        }
        Ok(())
    }
}

pub fn source(
    options: &Options,
    schema: SchemaRef,
) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
    Ok(Arc::new(FileSource::new(options, schema)?))
}

pub fn sink(options: &Options) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
    Ok(Arc::new(FileSink::new(options)?))
}
