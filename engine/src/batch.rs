//! The container that flows through Runnel's dataflows: one Arrow record
//! batch. Its record count is its row count, so timely's progress tracking
//! counts rows, and splitting a batch across workers preserves the count.

use std::io::Write;

use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use timely::container::{DrainContainer, PushInto, SizableContainer};
use timely::dataflow::channels::ContainerBytes;

#[derive(Clone, Default, Debug)]
pub struct Batch(pub Option<RecordBatch>);

impl Batch {
    pub fn new(batch: RecordBatch) -> Self {
        Batch(Some(batch))
    }

    pub fn rows(&self) -> usize {
        self.0.as_ref().map_or(0, RecordBatch::num_rows)
    }

    pub fn take(&mut self) -> Option<RecordBatch> {
        self.0.take()
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
        self.0.take().into_iter()
    }
}

impl SizableContainer for Batch {
    // One record batch per container: ship it as soon as it is set.
    fn at_capacity(&self) -> bool {
        self.0.is_some()
    }
    fn ensure_capacity(&mut self, _stash: &mut Option<Self>) {}
}

impl PushInto<RecordBatch> for Batch {
    fn push_into(&mut self, batch: RecordBatch) {
        self.0 = Some(batch);
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = &'a RecordBatch;
    type IntoIter = std::option::Iter<'a, RecordBatch>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Between processes a batch travels as Arrow IPC: `[u64 LE length][IPC
/// stream][zero padding to 8 bytes]`. These bytes only ever come from another
/// Runnel worker of the same job, so a decoding failure is a bug, not input.
impl ContainerBytes for Batch {
    fn from_bytes(bytes: timely::bytes::arc::Bytes) -> Self {
        let len = u64::from_le_bytes(bytes[..8].try_into().expect("8-byte length prefix")) as usize;
        if len == 0 {
            return Batch(None);
        }
        let mut reader =
            StreamReader::try_new(&bytes[8..8 + len], None).expect("IPC stream from a peer worker");
        Batch(
            reader
                .next()
                .transpose()
                .expect("IPC batch from a peer worker"),
        )
    }

    fn length_in_bytes(&self) -> usize {
        8 + padded(self.0.as_ref().map_or(0, |batch| encode(batch).len()))
    }

    fn into_bytes<W: Write>(&self, writer: &mut W) {
        let bytes = self.0.as_ref().map(encode).unwrap_or_default();
        let result = writer
            .write_all(&(bytes.len() as u64).to_le_bytes())
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
        assert_eq!(decoded.0, Some(batch));
    }
}
