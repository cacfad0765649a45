//! Part files and the `PARTITIONED BY` directories rows go to; the sink of
//! a job without checkpoints writes `part-<worker>.<ext>` straight away and
//! syncs it at end of input.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::sink::BatchSink;
use runnel_engine::time::Watermark;

use super::{FileSink, io_error};
use crate::format::Format;
use crate::format::avro::AvroFile;
use crate::format::parquet::ParquetFile;

pub(super) struct FileWriter {
    path: PathBuf,
    output: Output,
}

enum Output {
    Lines {
        out: BufWriter<File>,
        format: Format,
    },
    Parquet(ParquetFile),
    Avro(Box<AvroFile<BufWriter<File>>>),
}

impl FileWriter {
    /// Creates (or truncates) `path`, whose directory must exist.
    pub(super) fn create(path: PathBuf, format: &Format) -> Result<Self, EngineError> {
        let file = File::create(&path).map_err(io_error(&path))?;
        let output = match format {
            Format::Parquet => Output::Parquet(ParquetFile::new(file)),
            Format::Avro(avro) => {
                Output::Avro(Box::new(AvroFile::new(BufWriter::new(file), avro)?))
            }
            format => Output::Lines {
                out: BufWriter::new(file),
                format: format.clone(),
            },
        };
        Ok(FileWriter { path, output })
    }

    /// Flushes (a parquet file gets its footer) and syncs the file.
    pub(super) fn close(&mut self) -> Result<(), EngineError> {
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
            Output::Avro(file) => {
                file.finish()?
                    .get_ref()
                    .sync_all()
                    .map_err(io_error(path))?;
            }
        }
        Ok(())
    }
}

impl BatchSink for FileWriter {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        match &mut self.output {
            Output::Lines { out, format } => Ok(format.encode(&batch, out)?),
            Output::Parquet(file) => file.write(&batch),
            Output::Avro(file) => Ok(file.write(&batch)?),
        }
    }

    fn watermark(&mut self, watermark: Option<Watermark>) -> Result<(), EngineError> {
        if watermark.is_some() {
            return Ok(());
        }
        self.close()
    }
}

/// One part file per partition directory a worker has written to.
pub(super) struct PartitionedWriter {
    pub(super) sink: FileSink,
    pub(super) worker: usize,
    pub(super) writers: HashMap<String, FileWriter>,
}

impl BatchSink for PartitionedWriter {
    fn write(&mut self, batch: RecordBatch, time: Watermark) -> Result<(), EngineError> {
        for (path, rows) in split(&batch, &self.sink.partition_keys)? {
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

/// Flink's name for a NULL partition value (`partition.default-name`).
const DEFAULT_PARTITION: &str = "__DEFAULT_PARTITION__";

/// `batch`'s rows by the directory they go to (`col=value/...`, relative
/// to the sink's), without the partition columns, as Flink's filesystem
/// sink writes them; without partition keys, all of it to `""`.
pub(super) fn split(
    batch: &RecordBatch,
    partition_keys: &[String],
) -> Result<Vec<(String, RecordBatch)>, EngineError> {
    use datafusion::arrow::array::{Array, AsArray, UInt32Array};
    use datafusion::arrow::compute::{cast, take_record_batch};
    use datafusion::arrow::datatypes::DataType;
    if partition_keys.is_empty() {
        return Ok(vec![(String::new(), batch.clone())]);
    }
    let schema = batch.schema();
    let mut key_columns = Vec::with_capacity(partition_keys.len());
    for key in partition_keys {
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
        .filter(|&i| !partition_keys.contains(schema.field(i).name()))
        .collect();
    groups
        .into_iter()
        .map(|(path, rows)| {
            let rows = take_record_batch(batch, &UInt32Array::from(rows))?.project(&data)?;
            Ok((path, rows))
        })
        .collect()
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
