//! Records the Kinesis Producer Library packs several user records into:
//! a 4-byte magic, an `AggregatedRecord` protocol buffer, and the MD5 of
//! that buffer. A record that is not one (no magic, a bad digest, a buffer
//! that does not parse) is a user record of its own, as the KCL reads it.

use md5::{Digest, Md5};

const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

/// Whether `data` starts as a KPL-aggregated record does: a check cheap
/// enough to make for every record read before `deaggregate`.
#[inline]
pub fn may_be_aggregated(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// The user records' data of an aggregated record, in order; `None` if
/// `data` is a plain record.
pub fn deaggregate(data: &[u8]) -> Option<Vec<&[u8]>> {
    let body = data.strip_prefix(&MAGIC)?;
    let split = body.len().checked_sub(DIGEST_LEN)?;
    let (message, digest) = body.split_at(split);
    if Md5::digest(message).as_slice() != digest {
        return None;
    }
    let mut records = Vec::new();
    let mut fields = Fields { bytes: message };
    while let Some(field) = fields.next_field()? {
        // Field 3 of AggregatedRecord: the repeated `Record` messages.
        if let (3, Value::Bytes(record)) = field {
            let mut inner = Fields { bytes: record };
            let mut user_data = None;
            while let Some(field) = inner.next_field()? {
                if let (3, Value::Bytes(bytes)) = field {
                    user_data = Some(bytes);
                }
            }
            records.push(user_data?);
        }
    }
    Some(records)
}

enum Value<'a> {
    Varint,
    Bytes(&'a [u8]),
    Fixed,
}

/// A protocol buffer's fields, read one at a time; `None` on bytes that
/// are not a well-formed message.
struct Fields<'a> {
    bytes: &'a [u8],
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(taken)
    }

    /// `Some(None)` at the end of the message.
    fn next_field(&mut self) -> Option<Option<(u64, Value<'a>)>> {
        if self.bytes.is_empty() {
            return Some(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => {
                self.varint()?;
                Value::Varint
            }
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return None,
        };
        Some(Some((key >> 3, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length_delimited(field: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![field << 3 | 2, u8::try_from(bytes.len()).unwrap()];
        out.extend_from_slice(bytes);
        out
    }

    fn aggregated(user_records: &[&[u8]]) -> Vec<u8> {
        let mut message = length_delimited(1, b"key");
        for data in user_records {
            // partition_key_index = 0, then the data.
            let mut record = vec![1 << 3, 0];
            record.extend(length_delimited(3, data));
            message.extend(length_delimited(3, &record));
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&message);
        out.extend_from_slice(&Md5::digest(&message));
        out
    }

    #[test]
    fn user_records_come_out_in_order_and_anything_else_is_plain() {
        let packed = aggregated(&[b"{\"k\": 1}", b"{\"k\": 2}"]);
        assert_eq!(
            deaggregate(&packed),
            Some(vec![&b"{\"k\": 1}"[..], &b"{\"k\": 2}"[..]])
        );
        assert_eq!(deaggregate(b"{\"k\": 1}"), None);
        let mut tampered = packed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(deaggregate(&tampered), None);
        // Any prefix of a packed record is refused, never a panic.
        for end in 0..packed.len() {
            assert_eq!(deaggregate(&packed[..end]), None);
        }
    }
}
