//! The container that flows through Runnel's dataflows: one Arrow record
//! batch. Its record count is its row count, so timely's progress tracking
//! counts rows, and splitting a batch across workers preserves the count.

use std::io::Write;

use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use timely::container::{DrainContainer, PushInto, SizableContainer};
use timely::dataflow::channels::ContainerBytes;

/// A batch of `rows` rows: a query that reads no column of its input
/// (`SELECT 1 FROM t`) has batches whose only content is their row count.
pub fn with_rows(
    schema: datafusion::arrow::datatypes::SchemaRef,
    columns: Vec<datafusion::arrow::array::ArrayRef>,
    rows: usize,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)),
    )
}

#[derive(Clone, Default, Debug)]
pub struct Batch {
    batch: Option<RecordBatch>,
    /// The rows of a batch from a peer process that did not decode: timely
    /// counted them when they were sent, so they must count here too, or
    /// progress tracking would never see them arrive.
    undecoded_rows: usize,
}

impl Batch {
    pub fn new(batch: RecordBatch) -> Self {
        Batch {
            batch: Some(batch),
            undecoded_rows: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.batch
            .as_ref()
            .map_or(self.undecoded_rows, RecordBatch::num_rows)
    }

    pub fn take(&mut self) -> Option<RecordBatch> {
        self.undecoded_rows = 0;
        self.batch.take()
    }
}

impl timely::Accountable for Batch {
    fn record_count(&self) -> i64 {
        self.rows() as i64
    }
}

impl DrainContainer for Batch {
    type Item<'a> = RecordBatch;
    type DrainIter<'a> = std::option::IntoIter<RecordBatch>;
    fn drain(&mut self) -> Self::DrainIter<'_> {
        self.take().into_iter()
    }
}

impl SizableContainer for Batch {
    // One record batch per container: ship it as soon as it is set.
    fn at_capacity(&self) -> bool {
        self.batch.is_some()
    }
    fn ensure_capacity(&mut self, _stash: &mut Option<Self>) {}
}

impl PushInto<RecordBatch> for Batch {
    fn push_into(&mut self, batch: RecordBatch) {
        self.batch = Some(batch);
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = &'a RecordBatch;
    type IntoIter = std::option::Iter<'a, RecordBatch>;
    fn into_iter(self) -> Self::IntoIter {
        self.batch.iter()
    }
}

thread_local! {
    /// The first batch this worker thread could not decode, for the
    /// worker's loop to fail the job with (`take_decode_error`).
    static DECODE_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The error of a batch from a peer process that this thread could not
/// decode since the last call, if any.
pub fn take_decode_error() -> Option<String> {
    DECODE_ERROR.with(|slot| slot.borrow_mut().take())
}

fn decode_failed(rows: usize, problem: String) -> Batch {
    DECODE_ERROR.with(|slot| {
        slot.borrow_mut().get_or_insert_with(|| {
            format!("a batch from a peer process did not decode: {problem}")
        });
    });
    Batch {
        batch: None,
        undecoded_rows: rows,
    }
}

/// Between processes a batch travels as Arrow IPC: `[u64 LE length][u64 LE
/// rows][IPC stream][zero padding to 8 bytes]`. A frame that does not
/// decode (a peer of another version, a corrupted connection) becomes an
/// empty batch of the same row count, and the receiving worker fails the
/// job with the error: timely gives a container no way to refuse its bytes.
impl ContainerBytes for Batch {
    fn from_bytes(bytes: timely::bytes::arc::Bytes) -> Self {
        let word = |at: usize| {
            bytes
                .get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(|b| u64::from_le_bytes(b) as usize)
        };
        let (Some(len), Some(rows)) = (word(0), word(8)) else {
            return decode_failed(0, format!("a frame of {} bytes has no header", bytes.len()));
        };
        if len == 0 {
            return Batch::default();
        }
        let Some(ipc) = bytes.get(16..16usize.saturating_add(len)) else {
            return decode_failed(
                rows,
                format!(
                    "{len} bytes announced, {} present",
                    bytes.len().saturating_sub(16)
                ),
            );
        };
        let decoded = StreamReader::try_new(ipc, None)
            .map_err(|e| e.to_string())
            .and_then(|mut reader| match reader.next() {
                Some(Ok(batch)) => Ok(batch),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("an IPC stream without a batch".to_string()),
            });
        match decoded {
            Ok(batch) if batch.num_rows() == rows => Batch::new(batch),
            Ok(batch) => decode_failed(
                rows,
                format!("{} rows decoded, {rows} announced", batch.num_rows()),
            ),
            Err(problem) => decode_failed(rows, problem),
        }
    }

    fn length_in_bytes(&self) -> usize {
        16 + padded(self.batch.as_ref().map_or(0, |batch| encode(batch).len()))
    }

    fn into_bytes<W: Write>(&self, writer: &mut W) {
        let bytes = self.batch.as_ref().map(encode).unwrap_or_default();
        let result = writer
            .write_all(&(bytes.len() as u64).to_le_bytes())
            .and_then(|()| writer.write_all(&(self.rows() as u64).to_le_bytes()))
            .and_then(|()| writer.write_all(&bytes))
            .and_then(|()| writer.write_all(&[0u8; 8][..padded(bytes.len()) - bytes.len()]));
        result.expect("writing to timely's in-memory send buffer");
    }
}

fn padded(len: usize) -> usize {
    (len + 7) & !7
}

fn encode(batch: &RecordBatch) -> Vec<u8> {
    let mut writer =
        StreamWriter::try_new(Vec::new(), &batch.schema()).expect("IPC writer for a valid schema");
    writer.write(batch).expect("IPC encoding of a valid batch");
    writer.into_inner().expect("IPC stream end")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn a_batch_survives_the_trip_between_processes() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            ],
        )
        .unwrap();
        let container = Batch::new(batch.clone());
        let mut bytes = Vec::new();
        container.into_bytes(&mut bytes);
        assert_eq!(bytes.len(), container.length_in_bytes());
        assert_eq!(bytes.len() % 8, 0);
        let decoded = Batch::from_bytes(timely::bytes::arc::BytesMut::from(bytes).freeze());
        assert_eq!(decoded.batch, Some(batch));
        assert_eq!(take_decode_error(), None);
    }

    #[test]
    fn a_frame_that_does_not_decode_keeps_its_row_count_and_reports_an_error() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let mut bytes = Vec::new();
        Batch::new(batch).into_bytes(&mut bytes);
        for corrupt in [16, 20, 40, bytes.len() - 9] {
            let mut damaged = bytes.clone();
            damaged[corrupt] ^= 0xff;
            let decoded = Batch::from_bytes(timely::bytes::arc::BytesMut::from(damaged).freeze());
            if decoded.batch.is_none() {
                assert_eq!(decoded.rows(), 3);
                assert!(take_decode_error().is_some());
            }
        }
        let truncated =
            Batch::from_bytes(timely::bytes::arc::BytesMut::from(bytes[..30].to_vec()).freeze());
        assert_eq!(truncated.rows(), 3);
        assert!(take_decode_error().unwrap().contains("announced"));
        let empty = Batch::from_bytes(timely::bytes::arc::BytesMut::from(vec![1u8, 2]).freeze());
        assert_eq!(empty.rows(), 0);
        assert!(take_decode_error().unwrap().contains("no header"));
    }
}
