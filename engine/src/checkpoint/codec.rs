//! What operators' checkpoint states share: per-group columns as Arrow
//! IPC, read back with their count, types and lengths checked, so that
//! corrupt bytes are an error here and never an index out of bounds
//! later; the corrupt-state error; and the checksum every operator state
//! is sealed with (Arrow's IPC reader panics on some corrupt bytes).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType, Field, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::checkpoint::encoding::{batches_from_bytes, batches_to_bytes};
use crate::error::EngineError;

pub(crate) fn corrupt(what: &str) -> EngineError {
    EngineError::Runtime(format!("checkpoint is corrupt: {what}"))
}

/// A state followed by its CRC-32C. Arrow's IPC reader trusts the offsets
/// in what it reads and panics on some corrupt ones, so a state is checked
/// whole before any of it is read.
pub(crate) fn seal(mut state: Vec<u8>) -> Vec<u8> {
    let crc = crc32c(&state);
    state.extend_from_slice(&crc.to_le_bytes());
    state
}

/// A state's bytes so far: its layout `version` first, so that a later
/// layout can tell an older state apart.
pub(crate) fn new_state(version: u32) -> Vec<u8> {
    let mut out = Vec::new();
    crate::checkpoint::encoding::put_u32(&mut out, version);
    out
}

/// A sealed state of layout `version`, read past its checksum and
/// version; `what` names the state when it is of another version.
pub(crate) fn open_state<'a>(
    bytes: &'a [u8],
    version: u32,
    what: &str,
) -> Result<crate::checkpoint::encoding::Reader<'a>, EngineError> {
    let mut reader = crate::checkpoint::encoding::Reader::new(unseal(bytes)?);
    if reader.u32()? != version {
        return Err(corrupt(&format!("{what} state of another version")));
    }
    Ok(reader)
}

/// The state `seal` sealed, if its checksum holds.
pub(crate) fn unseal(bytes: &[u8]) -> Result<&[u8], EngineError> {
    let Some(split) = bytes.len().checked_sub(4) else {
        return Err(corrupt("a state shorter than its checksum"));
    };
    let (state, crc) = bytes.split_at(split);
    if crc32c(state).to_le_bytes() != crc {
        return Err(corrupt("an operator state fails its checksum"));
    }
    Ok(state)
}

/// CRC-32C (Castagnoli), eight bytes at a time (slicing-by-8), so that a
/// checkpoint of hundreds of MB is sealed in a tenth of a second, not in
/// the most part of one.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(8);
    let mut crc = !0u32;
    for word in &mut words {
        let low = crc ^ u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        let t = &CRC32C_SLICES;
        crc = t[7][(low & 0xFF) as usize]
            ^ t[6][((low >> 8) & 0xFF) as usize]
            ^ t[5][((low >> 16) & 0xFF) as usize]
            ^ t[4][(low >> 24) as usize]
            ^ t[3][word[4] as usize]
            ^ t[2][word[5] as usize]
            ^ t[1][word[6] as usize]
            ^ t[0][word[7] as usize];
    }
    !crc32c_bytes(crc, words.remainder())
}

fn crc32c_bytes(crc: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(crc, |crc, &byte| {
        CRC32C[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// `CRC32C_SLICES[k][b]`: the CRC of byte `b` followed by `k` zero bytes.
static CRC32C_SLICES: [[u32; 256]; 8] = crc32c_slices();

const fn crc32c_slices() -> [[u32; 256]; 8] {
    let mut slices = [[0u32; 256]; 8];
    slices[0] = crc32c_table();
    let mut k = 1;
    while k < 8 {
        let mut b = 0;
        while b < 256 {
            let previous = slices[k - 1][b];
            slices[k][b] = (previous >> 8) ^ slices[0][(previous & 0xFF) as usize];
            b += 1;
        }
        k += 1;
    }
    slices
}

static CRC32C: [u32; 256] = crc32c_table();

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// Columns of equal length as one IPC batch.
pub(crate) fn columns_to_bytes(columns: Vec<ArrayRef>) -> Result<Vec<u8>, EngineError> {
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let rows = columns.first().map_or(0, |c| c.len());
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)?;
    batches_to_bytes(&schema, &[batch])
}

/// What `columns_to_bytes` wrote: columns of `types`, each `rows` long if
/// that is given.
pub(crate) fn columns_from_bytes(
    bytes: &[u8],
    rows: Option<usize>,
    types: &[DataType],
) -> Result<Vec<ArrayRef>, EngineError> {
    let batches = batches_from_bytes(bytes)?;
    let [batch] = batches.as_slice() else {
        return Err(corrupt("a grouped state is not one batch"));
    };
    if batch.num_columns() != types.len() {
        return Err(corrupt("a grouped state has other columns"));
    }
    if rows.is_some_and(|rows| rows != batch.num_rows()) {
        return Err(corrupt("a grouped state has another number of groups"));
    }
    for (column, expected) in batch.columns().iter().zip(types) {
        if !column.data_type().equals_datatype(expected) {
            return Err(corrupt(&format!(
                "a grouped state column is {}, not {expected}",
                column.data_type()
            )));
        }
    }
    Ok(batch.columns().to_vec())
}

/// Whether `batch` has `schema`'s column types, in order: operators read
/// restored rows by position, so rows of another shape must be refused
/// before they are read.
pub(crate) fn fits_schema(batch: &RecordBatch, schema: &Schema) -> bool {
    batch.num_columns() == schema.fields().len()
        && batch
            .columns()
            .iter()
            .zip(schema.fields())
            .all(|(column, field)| column.data_type().equals_datatype(field.data_type()))
}

/// The values of a column `columns_from_bytes` checked, nulls ignored.
pub(crate) fn values<T: ArrowPrimitiveType>(
    column: &ArrayRef,
) -> Result<Vec<T::Native>, EngineError> {
    column
        .as_primitive_opt::<T>()
        .map(|array| array.values().to_vec())
        .ok_or_else(|| corrupt("a grouped state column has another type"))
}

/// The values of a column `columns_from_bytes` checked, nulls as `None`.
pub(crate) fn options<T: ArrowPrimitiveType>(
    column: &ArrayRef,
) -> Result<Vec<Option<T::Native>>, EngineError> {
    column
        .as_primitive_opt::<T>()
        .map(|array| array.iter().collect())
        .ok_or_else(|| corrupt("a grouped state column has another type"))
}

/// Several byte strings as one (`put_bytes` each).
pub(crate) fn concat_parts(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        crate::checkpoint::encoding::put_bytes(&mut out, part);
    }
    out
}

/// What `concat_parts` wrote, which must be `count` parts.
pub(crate) fn split_parts(bytes: &[u8], count: usize) -> Result<Vec<&[u8]>, EngineError> {
    let mut reader = crate::checkpoint::encoding::Reader::new(bytes);
    let parts = (0..count)
        .map(|_| reader.bytes())
        .collect::<Result<Vec<_>, _>>()?;
    if !reader.is_empty() {
        return Err(corrupt("trailing bytes after a grouped state"));
    }
    Ok(parts)
}

/// The first `len` of `values`, padded with `fill`: states grow their
/// vectors only when a group's rows reach them.
pub(crate) fn padded<T: Clone>(values: &[T], len: usize, fill: T) -> impl Iterator<Item = T> + '_ {
    values
        .iter()
        .cloned()
        .chain(std::iter::repeat(fill))
        .take(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnolis_and_seals_every_byte() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        let sealed = seal(b"some state".to_vec());
        assert_eq!(unseal(&sealed).ok(), Some(&b"some state"[..]));
        for at in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[at] ^= 1;
            assert!(unseal(&flipped).is_err());
            assert!(unseal(&sealed[..at]).is_err());
        }
    }

    #[test]
    fn eight_bytes_at_a_time_agrees_with_one_at_a_time() {
        let bytes: Vec<u8> = (0u32..1000).map(|i| (i * 7919 % 251) as u8).collect();
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 999, 1000] {
            let expected = !crc32c_bytes(!0u32, &bytes[..len]);
            assert_eq!(crc32c(&bytes[..len]), expected, "{len} bytes");
        }
    }
}
