//! `'format' = 'parquet'`, for filesystem sinks: the batches' own schema,
//! one file per part, finished (its footer written) when the part closes.

use std::fs::File;

use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use runnel_engine::EngineError;

/// A part file being written; the writer is made at the first batch, whose
/// schema it takes.
pub struct ParquetFile {
    file: Option<File>,
    writer: Option<Box<ArrowWriter<File>>>,
}

impl ParquetFile {
    pub fn new(file: File) -> Self {
        ParquetFile {
            file: Some(file),
            writer: None,
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        if self.writer.is_none() {
            let Some(file) = self.file.take() else {
                return Err(parquet_error("the file is already closed".into()));
            };
            self.writer = Some(Box::new(
                ArrowWriter::try_new(file, batch.schema(), None)
                    .map_err(|e| parquet_error(e.to_string()))?,
            ));
        }
        match &mut self.writer {
            Some(writer) => writer
                .write(batch)
                .map_err(|e| parquet_error(e.to_string())),
            None => Ok(()),
        }
    }

    /// Writes the footer; the file, for the caller to sync.
    pub fn finish(&mut self) -> Result<Option<File>, EngineError> {
        match self.writer.take() {
            Some(writer) => writer
                .into_inner()
                .map(Some)
                .map_err(|e| parquet_error(e.to_string())),
            None => Ok(None),
        }
    }
}

fn parquet_error(message: String) -> EngineError {
    EngineError::Connector {
        connector: "filesystem",
        message: format!("parquet: {message}"),
    }
}
