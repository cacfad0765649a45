//! On-disk layout of records in `streams.records`.
//!
//! Key: stream id (u64) | shard index (u32) | counter (u64), all big-endian
//! so RocksDB's byte order is the shard's sequence order.
//!
//! Value, a block: the records one group commit wrote into one shard
//! (up to `BLOCK_BYTES`), keyed by the first one's counter, so that reading
//! costs one RocksDB entry per block rather than per record:
//! `BLOCK_MAGIC` | greatest arrival (u64) | last counter (u64) | count (u32),
//! then per record: counter (u64) | arrival (u64 ms) | flags (u8) |
//! partition key length (u16) | data length (u32) | partition key | data.
//!
//! Data dirs written before blocks hold one record per key: arrival time
//! (u64 ms) | flags (u8) | partition key length (u16) | partition key |
//! data. Such a value starts with a zero byte (an arrival time in
//! milliseconds is below 2^56), never `BLOCK_MAGIC`, and is read as a
//! block of one.

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
    /// Checked as UTF-8 only by those who need it as text: it was text
    /// when written.
    pub partition_key: &'a [u8],
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
    let partition_key = value.get(11..11 + key_len)?;
    let data = value.get(11 + key_len..)?;
    Some(RecordValue {
        arrival_ms,
        flags,
        partition_key,
        data,
    })
}

const BLOCK_MAGIC: u8 = 0xB1;
const BLOCK_HEADER: usize = 1 + 8 + 8 + 4;
const RECORD_HEADER: usize = 8 + 8 + 1 + 2 + 4;
/// A group commit's run of one shard is cut into blocks of about this
/// size: enough records (a thousand of 64 bytes) to make RocksDB's cost per
/// entry small, few enough that a read that wants a few records decodes
/// little.
pub const BLOCK_BYTES: usize = 64 << 10;

/// Records of one shard, in counter order, becoming one value.
pub struct BlockBuilder {
    bytes: Vec<u8>,
    count: u32,
    last_counter: u64,
    max_arrival: u64,
}

impl Default for BlockBuilder {
    fn default() -> Self {
        BlockBuilder {
            bytes: vec![0; BLOCK_HEADER],
            count: 0,
            last_counter: 0,
            max_arrival: 0,
        }
    }
}

impl BlockBuilder {
    pub fn push(
        &mut self,
        counter: u64,
        arrival_ms: u64,
        flags: u8,
        partition_key: &str,
        data: &[u8],
    ) {
        self.bytes.extend_from_slice(&counter.to_be_bytes());
        self.bytes.extend_from_slice(&arrival_ms.to_be_bytes());
        self.bytes.push(flags);
        // Partition keys are at most 256 characters, data at most 10 MiB.
        self.bytes
            .extend_from_slice(&(partition_key.len() as u16).to_be_bytes());
        self.bytes
            .extend_from_slice(&(data.len() as u32).to_be_bytes());
        self.bytes.extend_from_slice(partition_key.as_bytes());
        self.bytes.extend_from_slice(data);
        self.count += 1;
        self.last_counter = counter;
        self.max_arrival = self.max_arrival.max(arrival_ms);
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.bytes[0] = BLOCK_MAGIC;
        self.bytes[1..9].copy_from_slice(&self.max_arrival.to_be_bytes());
        self.bytes[9..17].copy_from_slice(&self.last_counter.to_be_bytes());
        self.bytes[17..21].copy_from_slice(&self.count.to_be_bytes());
        self.bytes
    }
}

pub struct BlockSummary {
    pub last_counter: u64,
    pub max_arrival_ms: u64,
    pub records: u64,
}

/// What a block's header says, without reading its records; `key` is the
/// block's key.
pub fn block_summary(key: &[u8], value: &[u8]) -> Option<BlockSummary> {
    if value.first() == Some(&BLOCK_MAGIC) {
        Some(BlockSummary {
            max_arrival_ms: u64::from_be_bytes(value.get(1..9)?.try_into().ok()?),
            last_counter: u64::from_be_bytes(value.get(9..17)?.try_into().ok()?),
            records: u64::from(u32::from_be_bytes(value.get(17..21)?.try_into().ok()?)),
        })
    } else {
        Some(BlockSummary {
            last_counter: key_counter(key)?,
            max_arrival_ms: value_arrival(value)?,
            records: 1,
        })
    }
}

/// The records of the block stored under `key`, each with its counter;
/// `None` for a malformed block.
pub fn block_records<'a>(
    key: &[u8],
    value: &'a [u8],
) -> Option<impl Iterator<Item = Option<(u64, RecordValue<'a>)>> + 'a> {
    let (mut rest, mut remaining, single) = if value.first() == Some(&BLOCK_MAGIC) {
        let count = u32::from_be_bytes(value.get(17..21)?.try_into().ok()?);
        (value.get(BLOCK_HEADER..)?, count, None)
    } else {
        (
            &value[..0],
            0,
            Some((key_counter(key)?, decode_value(value)?)),
        )
    };
    let blocked = std::iter::from_fn(move || {
        if remaining == 0 {
            return None;
        }
        remaining -= 1;
        let record = (|| {
            let header = rest.get(..RECORD_HEADER)?;
            let counter = u64::from_be_bytes(header[..8].try_into().ok()?);
            let arrival_ms = u64::from_be_bytes(header[8..16].try_into().ok()?);
            let flags = header[16];
            let key_len = usize::from(u16::from_be_bytes(header[17..19].try_into().ok()?));
            let data_len = u32::from_be_bytes(header[19..23].try_into().ok()?) as usize;
            let body = rest.get(RECORD_HEADER..RECORD_HEADER + key_len + data_len)?;
            let partition_key = &body[..key_len];
            rest = &rest[RECORD_HEADER + key_len + data_len..];
            Some((
                counter,
                RecordValue {
                    arrival_ms,
                    flags,
                    partition_key,
                    data: &body[key_len..],
                },
            ))
        })();
        if record.is_none() {
            remaining = 0;
        }
        Some(record)
    });
    Some(single.map(Some).into_iter().chain(blocked))
}

/// Just the arrival time of a one-record value (the layout before blocks).
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
    fn blocks_round_trip_and_old_values_read_as_blocks_of_one() {
        let mut block = BlockBuilder::default();
        block.push(7, 100, 0, "a", b"first");
        block.push(8, 105, FLAG_ENCRYPTED, "", b"");
        block.push(9, 103, 0, "c", b"third");
        let value = block.finish();
        let key = record_key(1, 2, 7);
        let summary = block_summary(&key, &value).unwrap();
        assert_eq!(
            (
                summary.last_counter,
                summary.max_arrival_ms,
                summary.records
            ),
            (9, 105, 3)
        );
        let records: Vec<_> = block_records(&key, &value)
            .unwrap()
            .map(|r| {
                let (counter, r) = r.unwrap();
                (counter, r.arrival_ms, r.flags, r.partition_key, r.data)
            })
            .collect();
        assert_eq!(
            records,
            [
                (7, 100, 0, &b"a"[..], &b"first"[..]),
                (8, 105, FLAG_ENCRYPTED, &b""[..], &b""[..]),
                (9, 103, 0, &b"c"[..], &b"third"[..])
            ]
        );
        // A cut block gives what it has, then says it is malformed.
        let cut: Vec<_> = block_records(&key, &value[..value.len() - 2])
            .unwrap()
            .collect();
        assert_eq!(cut.len(), 3);
        assert!(cut[2].is_none());

        let old = encode_value(42, 0, "key", b"data");
        let key = record_key(1, 2, 11);
        let summary = block_summary(&key, &old).unwrap();
        assert_eq!(
            (
                summary.last_counter,
                summary.max_arrival_ms,
                summary.records
            ),
            (11, 42, 1)
        );
        let (counter, record) = block_records(&key, &old).unwrap().next().unwrap().unwrap();
        assert_eq!(
            (counter, record.partition_key, record.data),
            (11, &b"key"[..], &b"data"[..])
        );
    }

    proptest::proptest! {
        /// Whatever bytes a value holds (a torn or corrupt block), reading
        /// it ends without a panic: records, then at most one `None`.
        #[test]
        fn any_value_is_read_without_a_panic(
            value in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            magic in proptest::bool::ANY,
        ) {
            let mut value = value;
            if magic && !value.is_empty() {
                value[0] = BLOCK_MAGIC;
            }
            let key = record_key(1, 2, 3);
            let _ = block_summary(&key, &value);
            if let Some(records) = block_records(&key, &value) {
                let read: Vec<_> = records.collect();
                proptest::prop_assert!(read.iter().filter(|r| r.is_none()).count() <= 1);
            }
        }

        #[test]
        fn blocks_give_back_what_was_pushed(
            records in proptest::collection::vec(
                (proptest::num::u64::ANY, "[a-z]{0,8}", proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                1..20,
            ),
        ) {
            let mut block = BlockBuilder::default();
            for (i, (arrival, key, data)) in records.iter().enumerate() {
                block.push(100 + i as u64, *arrival, 0, key, data);
            }
            let value = block.finish();
            let key = record_key(1, 2, 100);
            let read: Vec<_> = block_records(&key, &value)
                .unwrap()
                .map(|r| r.map(|(counter, r)| (counter, r.arrival_ms, r.partition_key.to_vec(), r.data.to_vec())))
                .collect();
            let expected: Vec<_> = records
                .iter()
                .enumerate()
                .map(|(i, (arrival, key, data))| Some((100 + i as u64, *arrival, key.as_bytes().to_vec(), data.clone())))
                .collect();
            proptest::prop_assert_eq!(read, expected);
            let summary = block_summary(&key, &value).unwrap();
            proptest::prop_assert_eq!(summary.records, records.len() as u64);
            proptest::prop_assert_eq!(summary.last_counter, 99 + records.len() as u64);
        }
    }

    #[test]
    fn values_round_trip() {
        let v = encode_value(42, 0, "key", b"data");
        let r = decode_value(&v).unwrap();
        assert_eq!(
            (r.arrival_ms, r.partition_key, r.data),
            (42, &b"key"[..], &b"data"[..])
        );
        assert_eq!(value_arrival(&v), Some(42));
        assert!(decode_value(&v[..5]).is_none());
    }
}
