//! Column buffers written by row index. A row that is not written (the
//! event is of another type) costs nothing until the batch is finished:
//! numbers are pre-zeroed, and string offsets are filled in bulk. The
//! struct's validity marks those rows null.

use datafusion::arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::error::ArrowError;

pub struct Longs {
    values: Vec<i64>,
}

impl Longs {
    pub fn new(rows: usize) -> Self {
        Longs {
            values: vec![0; rows],
        }
    }

    #[inline]
    pub fn set(&mut self, row: usize, value: i64) {
        self.values[row] = value;
    }

    pub fn finish(&mut self, nulls: &NullBuffer) -> Int64Array {
        Int64Array::new(
            ScalarBuffer::from(std::mem::take(&mut self.values)),
            Some(nulls.clone()),
        )
    }

    pub fn finish_timestamps(&mut self, nulls: &NullBuffer) -> TimestampMillisecondArray {
        TimestampMillisecondArray::new(
            ScalarBuffer::from(std::mem::take(&mut self.values)),
            Some(nulls.clone()),
        )
    }
}

pub struct Texts {
    /// `offsets[r + 1]` ends row `r`; valid up to `offsets[filled]`.
    offsets: Vec<i32>,
    filled: usize,
    data: Vec<u8>,
}

impl Texts {
    pub fn new(rows: usize, bytes: usize) -> Self {
        let offsets = vec![0; rows + 1];
        Texts {
            offsets,
            filled: 0,
            data: Vec::with_capacity(bytes),
        }
    }

    /// Rows before `row` not written are empty.
    #[inline]
    fn catch_up(&mut self, row: usize) {
        let end = self.data.len() as i32;
        for offset in &mut self.offsets[self.filled + 1..=row] {
            *offset = end;
        }
    }

    #[inline]
    pub fn set(&mut self, row: usize, value: &str) {
        self.set_parts(row, &[value]);
    }

    #[inline]
    pub fn set_parts(&mut self, row: usize, parts: &[&str]) {
        self.catch_up(row);
        for part in parts {
            self.data.extend_from_slice(part.as_bytes());
        }
        self.offsets[row + 1] = self.data.len() as i32;
        self.filled = row + 1;
    }

    pub fn finish(&mut self, nulls: &NullBuffer) -> Result<StringArray, ArrowError> {
        let rows = self.offsets.len() - 1;
        self.catch_up(rows);
        self.filled = 0;
        let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::take(&mut self.offsets)));
        StringArray::try_new(
            offsets,
            std::mem::take(&mut self.data).into(),
            Some(nulls.clone()),
        )
    }
}
