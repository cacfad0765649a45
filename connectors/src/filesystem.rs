//! The `filesystem` connector: a file or a directory of files, read in
//! byte ranges split at line ends so that every worker reads its share of
//! even a single large file; written as part files, one per worker.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::{KeepOnly, SinkProvider, SourceProvider, UnusedFields};
use runnel_engine::sink::BatchSink;
use runnel_engine::source::{BatchReader, Poll};
use runnel_engine::time::Watermark;

use crate::ConnectorError;
use crate::format::parquet::ParquetFile;
use crate::format::{Carrier, Decoder, Format};
use crate::options::Options;

/// Bytes read per poll: large enough to amortise the decoder call, small
/// enough to keep a worker responsive.
const CHUNK_BYTES: usize = 4 << 20;

#[derive(Clone)]
pub struct FileSource {
    files: Vec<PathBuf>,
    format: Format,
    schema: SchemaRef,
    keep: Option<KeepOnly>,
    unused: UnusedFields,
}

impl FileSource {
    pub fn new(options: &Options, schema: SchemaRef) -> Result<Self, ConnectorError> {
        let path = PathBuf::from(options.required("path")?);
        let format = Format::from_options(options, &schema, Carrier::Files)?;
        let files = list_files(&path)?;
        format.decoder(schema.clone())?;
        Ok(FileSource {
            files,
            format,
            schema,
            keep: None,
            unused: Vec::new(),
        })
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ConnectorError + '_ {
    move |source| ConnectorError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) fn list_files(path: &Path) -> Result<Vec<PathBuf>, ConnectorError> {
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
    fn keep_only(&self, keep: KeepOnly) -> Option<Arc<dyn SourceProvider>> {
        Some(Arc::new(FileSource {
            keep: Some(keep),
            ..self.clone()
        }))
    }

    fn skip_fields(&self, unused: UnusedFields) -> Option<Arc<dyn SourceProvider>> {
        Some(Arc::new(FileSource {
            unused,
            ..self.clone()
        }))
    }

    fn produces_changelog(&self) -> bool {
        self.format.is_changelog()
    }

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
            reading: PathBuf::new(),
            // A changelog's bad envelope fails the job naming its file.
            name_files: self.format.is_changelog(),
            decoder: self
                .format
                .decoder(self.schema.clone())?
                .keeping_only(self.keep.clone())
                .skipping(&self.unused),
            ready: Vec::new(),
            buffer: Vec::new(),
            carried: 0,
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
    /// The file of the lines being decoded, for errors that name it.
    reading: PathBuf,
    name_files: bool,
    decoder: Decoder,
    ready: Vec<RecordBatch>,
    buffer: Vec<u8>,
    /// Bytes at the front of `buffer`: the partial last line read so far.
    carried: usize,
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
                self.reading = path.clone();
                self.current = Some((path, file.take(end - start)));
            }
            let Some((path, reader)) = self.current.as_mut() else {
                continue;
            };
            // The partial line left last time stays at the front; the buffer
            // is reused so that no chunk pays for zeroing or reallocating.
            let carried = self.carried;
            if self.buffer.len() < carried + CHUNK_BYTES {
                self.buffer.resize(carried + CHUNK_BYTES, 0);
            }
            let n = read_full(reader, &mut self.buffer[carried..carried + CHUNK_BYTES])
                .map_err(io_error(path))
                .map_err(EngineError::from)?;
            let end = carried + n;
            let complete = if n == 0 {
                self.current = None;
                end
            } else {
                memchr::memrchr(b'\n', &self.buffer[..end]).map_or(0, |i| i + 1)
            };
            if complete > 0 {
                let decoded = self.decoder.decode_lines(&self.buffer[..complete]);
                let mut batches = match decoded {
                    Ok(batches) => batches,
                    Err(error) if self.name_files => {
                        return Err(EngineError::Connector {
                            connector: "filesystem",
                            message: format!("debezium-json: {}: {error}", self.reading.display()),
                        });
                    }
                    Err(error) => return Err(error.into()),
                };
                batches.reverse();
                self.ready = batches;
            }
            self.buffer.copy_within(complete..end, 0);
            self.carried = end - complete;
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
#[derive(Clone)]
pub struct FileSink {
    dir: PathBuf,
    format: Format,
    /// `PARTITIONED BY` columns: rows go to `col=value/` directories,
    /// without those columns, as Flink's filesystem sink writes them.
    partition_keys: Vec<String>,
}

impl FileSink {
    pub fn new(options: &Options, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let dir = PathBuf::from(options.required("path")?);
        let format = Format::from_options(options, schema, Carrier::Files)?;
        let partition_keys = options
            .get(runnel_engine::connector::PARTITION_KEYS)
            .map(|keys| keys.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        Ok(FileSink {
            dir,
            format,
            partition_keys,
        })
    }
}

impl SinkProvider for FileSink {
    fn sink(&self, worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        if self.partition_keys.is_empty() {
            return Ok(Box::new(self.writer(&self.dir, worker)?));
        }
        Ok(Box::new(PartitionedWriter {
            sink: self.clone(),
            worker,
            writers: HashMap::new(),
        }))
    }

    fn accepts_changelog(&self) -> bool {
        self.format.is_changelog()
    }

    fn wants_update_before(&self) -> bool {
        self.accepts_changelog()
    }
}

impl FileSink {
    /// Worker `worker`'s part file in `dir`.
    fn writer(&self, dir: &Path, worker: usize) -> Result<FileWriter, EngineError> {
        std::fs::create_dir_all(dir)
            .map_err(io_error(dir))
            .map_err(EngineError::from)?;
        let path = dir.join(format!("part-{worker}.{}", self.format.extension()));
        let file = File::create(&path)
            .map_err(io_error(&path))
            .map_err(EngineError::from)?;
        let output = match &self.format {
            Format::Parquet => Output::Parquet(ParquetFile::new(file)),
            format => Output::Lines {
                out: BufWriter::new(file),
                format: format.clone(),
            },
        };
        Ok(FileWriter { path, output })
    }
}

struct FileWriter {
    path: PathBuf,
    output: Output,
}

/// One part file per partition directory a worker has written to.
struct PartitionedWriter {
    sink: FileSink,
    worker: usize,
    writers: HashMap<String, FileWriter>,
}

/// Flink's name for a NULL partition value (`partition.default-name`).
const DEFAULT_PARTITION: &str = "__DEFAULT_PARTITION__";

impl BatchSink for PartitionedWriter {
    fn write(&mut self, batch: RecordBatch, time: Watermark) -> Result<(), EngineError> {
        use datafusion::arrow::array::{Array, AsArray, UInt32Array};
        use datafusion::arrow::compute::{cast, take_record_batch};
        use datafusion::arrow::datatypes::DataType;
        let schema = batch.schema();
        let mut key_columns = Vec::with_capacity(self.sink.partition_keys.len());
        for key in &self.sink.partition_keys {
            let index = schema.index_of(key)?;
            key_columns.push((key, cast(batch.column(index), &DataType::Utf8)?));
        }
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for row in 0..batch.num_rows() {
            let path = key_columns
                .iter()
                .map(|(key, values)| {
                    let values = values.as_string::<i32>();
                    let value = if values.is_null(row) {
                        DEFAULT_PARTITION.to_string()
                    } else {
                        escape_path_name(values.value(row))
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("/");
            let next = groups.len();
            let group = *group_of.entry(path.clone()).or_insert(next);
            if group == next {
                groups.push((path, Vec::new()));
            }
            groups[group].1.push(row as u32);
        }
        let data: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| !self.sink.partition_keys.contains(schema.field(i).name()))
            .collect();
        for (path, rows) in groups {
            let rows = take_record_batch(&batch, &UInt32Array::from(rows))?.project(&data)?;
            let writer = match self.writers.entry(path) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let dir = self.sink.dir.join(entry.key());
                    entry.insert(self.sink.writer(&dir, self.worker)?)
                }
            };
            writer.write(rows, time)?;
        }
        Ok(())
    }

    fn watermark(&mut self, watermark: Option<Watermark>) -> Result<(), EngineError> {
        for writer in self.writers.values_mut() {
            writer.watermark(watermark)?;
        }
        Ok(())
    }
}

/// A partition value as a directory name, escaped as Flink's
/// `PartitionPathUtils.escapePathName` does (`10:00` -> `10%3A00`).
fn escape_path_name(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let escaped = c.is_ascii_control()
            || matches!(
                c,
                '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
            );
        if escaped {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

enum Output {
    Lines {
        out: BufWriter<File>,
        format: Format,
    },
    Parquet(ParquetFile),
}

impl BatchSink for FileWriter {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        match &mut self.output {
            Output::Lines { out, format } => Ok(format.encode(&batch, out)?),
            Output::Parquet(file) => file.write(&batch),
        }
    }

    fn watermark(&mut self, watermark: Option<Watermark>) -> Result<(), EngineError> {
        if watermark.is_some() {
            return Ok(());
        }
        let path = &self.path;
        match &mut self.output {
            Output::Lines { out, .. } => {
                out.flush().map_err(io_error(path))?;
                out.get_ref().sync_all().map_err(io_error(path))?;
            }
            Output::Parquet(file) => {
                if let Some(file) = file.finish()? {
                    file.sync_all().map_err(io_error(path))?;
                }
            }
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

pub fn sink(
    options: &Options,
    schema: &SchemaRef,
) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
    Ok(Arc::new(FileSink::new(options, schema)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn options(pairs: &[(&str, &str)]) -> Options {
        Options::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn batch(from: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from((from..from + 3).collect::<Vec<_>>())),
                Arc::new(TimestampMillisecondArray::from(vec![1, 2, 3])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_parquet_sink_writes_a_readable_file_at_end_of_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let sink = FileSink::new(
            &options(&[("path", path.to_str().unwrap()), ("format", "parquet")]),
            &batch(0).schema(),
        )
        .unwrap();
        let mut writer = sink.sink(1, 2).unwrap();
        writer.write(batch(0), 0).unwrap();
        writer.write(batch(10), 5).unwrap();
        writer.watermark(None).unwrap();
        let file = File::open(path.join("part-1.parquet")).unwrap();
        let read: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let rows: usize = read.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 6);
        assert_eq!(read[0].schema(), batch(0).schema());
    }

    #[test]
    fn a_file_split_across_workers_is_read_once_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let text: String = (0..1000).map(|i| format!("{{\"k\": {i}}}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let source = FileSource::new(
            &options(&[("path", path.to_str().unwrap()), ("format", "json")]),
            schema,
        )
        .unwrap();
        let mut seen = Vec::new();
        for worker in 0..3 {
            let mut reader = source.reader(worker, 3).unwrap();
            while let Poll::Batch(b) = reader.poll().unwrap() {
                let keys = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                seen.extend(keys.values().iter().copied());
            }
        }
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<i64>>());
    }

    #[test]
    fn parquet_is_refused_as_a_source_format() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let err = FileSource::new(&options(&[("path", "/"), ("format", "parquet")]), schema)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("parquet is written by filesystem sinks"),
            "{err}"
        );
    }
}
