//! On-disk layout of records in `streams.records`.
//!
//! Key: stream id (u64) | shard index (u32) | counter (u64), all big-endian
//! so RocksDB's byte order is the shard's sequence order. Value: arrival
//! time (u64 ms) | flags (u8) | partition key length (u16) | partition key |
//! data.

pub const KEY_LEN: usize = 20;
pub const FLAG_ENCRYPTED: u8 = 1;

pub fn record_key(stream: u64, shard: u32, counter: u64) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key[..8].copy_from_slice(&stream.to_be_bytes());
    key[8..12].copy_from_slice(&shard.to_be_bytes());
    key[12..].copy_from_slice(&counter.to_be_bytes());
    key
}

/// The key just past every record of `stream`'s `shard`.
pub fn shard_end(stream: u64, shard: u32) -> [u8; KEY_LEN] {
    match shard.checked_add(1) {
        Some(next) => record_key(stream, next, 0),
        None => record_key(stream.saturating_add(1), 0, 0),
    }
}

pub fn stream_range(stream: u64) -> ([u8; KEY_LEN], [u8; KEY_LEN]) {
    (
        record_key(stream, 0, 0),
        record_key(stream.saturating_add(1), 0, 0),
    )
}

pub fn key_counter(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(12..KEY_LEN)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

pub struct RecordValue<'a> {
    pub arrival_ms: u64,
    pub flags: u8,
    pub partition_key: &'a str,
    pub data: &'a [u8],
}

pub fn encode_value(arrival_ms: u64, flags: u8, partition_key: &str, data: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(11 + partition_key.len() + data.len());
    value.extend_from_slice(&arrival_ms.to_be_bytes());
    value.push(flags);
    // Partition keys are at most 256 characters, far below u16::MAX bytes.
    value.extend_from_slice(&(partition_key.len() as u16).to_be_bytes());
    value.extend_from_slice(partition_key.as_bytes());
    value.extend_from_slice(data);
    value
}

pub fn decode_value(value: &[u8]) -> Option<RecordValue<'_>> {
    let arrival_ms = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let flags = *value.get(8)?;
    let key_len = usize::from(u16::from_be_bytes(value.get(9..11)?.try_into().ok()?));
    let partition_key = std::str::from_utf8(value.get(11..11 + key_len)?).ok()?;
    let data = value.get(11 + key_len..)?;
    Some(RecordValue {
        arrival_ms,
        flags,
        partition_key,
        data,
    })
}

/// Just the arrival time, for trimming without decoding the rest.
pub fn value_arrival(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_stream_then_shard_then_counter() {
        let mut keys = [
            record_key(1, 2, 5),
            record_key(1, 1, u64::MAX),
            record_key(0, 9, 9),
            record_key(1, 2, 4),
        ];
        keys.sort();
        assert_eq!(key_counter(&keys[0]), Some(9));
        assert_eq!(keys[1], record_key(1, 1, u64::MAX));
        assert_eq!(keys[2], record_key(1, 2, 4));
        assert!(record_key(1, 2, u64::MAX) < shard_end(1, 2));
    }

    #[test]
    fn values_round_trip() {
        let v = encode_value(42, 0, "key", b"data");
        let r = decode_value(&v).unwrap();
        assert_eq!(
            (r.arrival_ms, r.partition_key, r.data),
            (42, "key", &b"data"[..])
        );
        assert_eq!(value_arrival(&v), Some(42));
        assert!(decode_value(&v[..5]).is_none());
    }
}
