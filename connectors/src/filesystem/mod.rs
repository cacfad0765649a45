//! The `filesystem` connector: a file or a directory of files, read in
//! byte ranges split at line ends so that every worker reads its share of
//! even a single large file (a changelog's files each whole by one worker,
//! in their order); written as part files, one per worker.
//!
//! - `reader`: a worker's ranges, read and decoded; `position`: where a
//!   reader stands, for checkpoints.
//! - `writer`: part files and partition directories; without checkpoints
//!   the sink writes `part-<worker>.<ext>` and syncs it at end of input.
//! - `committing`: the sink of a checkpointed job, which makes part files
//!   visible only once a checkpoint covers them (Flink's `FileSink`).

mod committing;
mod position;
mod reader;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use runnel_engine::EngineError;
use runnel_engine::connector::{KeepOnly, SinkProvider, SourceProvider, UnusedFields};
use runnel_engine::sink::BatchSink;
use runnel_engine::source::BatchReader;

pub use committing::{CommittingSink, STATE_KIND};

use crate::ConnectorError;
use crate::format::{Carrier, Format};
use crate::options::Options;
use reader::{FileReader, line_aligned_range, whole_file_range};
use writer::{FileWriter, PartitionedWriter};

/// What can go wrong taking or restoring a checkpoint of this connector.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("filesystem checkpoint state is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("{0}: a file whose name is not UTF-8 cannot be checkpointed")]
    NotUtf8(String),
    /// Only a reader made in a checkpointed job hands out every decoded
    /// row before its poll returns.
    #[error(
        "the file reader holds decoded rows it has not handed out; it was not made for a checkpointed job"
    )]
    RowsInHand,
}

impl From<CheckpointError> for EngineError {
    fn from(error: CheckpointError) -> Self {
        EngineError::Connector {
            connector: "filesystem",
            message: error.to_string(),
        }
    }
}

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
        if let Format::Avro(_) = format {
            return Err(ConnectorError::Option(
                "avro files are written by filesystem sinks, not read yet; a stream's avro records are read".into(),
            ));
        }
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

    fn checkpointable(&self) -> bool {
        true
    }

    fn reader(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        let mut ranges = Vec::new();
        for (i, path) in self.files.iter().enumerate() {
            // A changelog's meaning is in its order (a row inserted, then
            // deleted, then inserted again): each of its files is read
            // whole, by one worker, in its order.
            let range = match self.format.is_changelog() {
                true => whole_file_range(path, i % peers.max(1) == worker)?,
                false => line_aligned_range(path, worker, peers)?,
            };
            ranges.push(range);
        }
        let decoder = self
            .format
            .decoder(self.schema.clone())?
            .keeping_only(self.keep.clone())
            .skipping(&self.unused);
        Ok(Box::new(FileReader::new(
            ranges,
            decoder,
            self.format.is_changelog(),
            runnel_engine::checkpoint::worker::mode().is_some(),
        )))
    }
}

/// Writes part files into the `path` directory: `part-<worker>.<ext>`, or
/// in a checkpointed job one `part-<worker>-<n>.<ext>` per checkpoint.
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

    /// Worker `worker`'s sink in a checkpointed job; call it on the worker
    /// thread, with the dataflow's other operators (it registers its state
    /// with `runnel_engine::checkpoint::worker`).
    pub fn committing(&self, worker: usize) -> Result<CommittingSink, EngineError> {
        CommittingSink::new(self.clone(), worker)
    }

    /// Worker `worker`'s part file in `dir`.
    fn writer(&self, dir: &Path, worker: usize) -> Result<FileWriter, EngineError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        FileWriter::create(
            dir.join(format!("part-{worker}.{}", self.format.extension())),
            &self.format,
        )
    }
}

impl SinkProvider for FileSink {
    fn sink(&self, worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        if runnel_engine::checkpoint::worker::mode().is_some() {
            return Ok(Box::new(self.committing(worker)?));
        }
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

    fn checkpointable(&self) -> bool {
        true
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
    use std::fs::File;

    use datafusion::arrow::record_batch::RecordBatch;
    use runnel_engine::source::Poll;

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
