//! What a load record carries in its first bytes, so a reader anywhere
//! knows when it was meant to be sent and which one it is: a magic, the
//! intended send time (µs since the epoch), the producer and its counter.

pub const HEADER_BYTES: usize = 24;
const MAGIC: &[u8; 4] = b"RNB1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sent_micros: u64,
    pub producer: u32,
    pub seq: u64,
}

impl Stamp {
    /// One id per record of the run, for missing and duplicate counts.
    pub fn id(&self) -> u64 {
        (u64::from(self.producer) << 40) | self.seq
    }
}

pub fn encode(stamp: Stamp, size: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(size.max(HEADER_BYTES));
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&stamp.producer.to_be_bytes());
    data.extend_from_slice(&stamp.sent_micros.to_be_bytes());
    data.extend_from_slice(&stamp.seq.to_be_bytes());
    data.resize(size.max(HEADER_BYTES), b'.');
    data
}

/// None for a record this tool did not write.
pub fn decode(data: &[u8]) -> Option<Stamp> {
    if data.len() < HEADER_BYTES || &data[..4] != MAGIC {
        return None;
    }
    let u64_at = |at: usize| data[at..at + 8].try_into().ok().map(u64::from_be_bytes);
    Some(Stamp {
        producer: u32::from_be_bytes(data[4..8].try_into().ok()?),
        sent_micros: u64_at(8)?,
        seq: u64_at(16)?,
    })
}

pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_foreign_data_is_not_one() {
        let stamp = Stamp {
            sent_micros: 1_765_000_000_000_000,
            producer: 3,
            seq: 77,
        };
        let data = encode(stamp, 100);
        assert_eq!(data.len(), 100);
        assert_eq!(decode(&data), Some(stamp));
        assert_eq!(decode(b"{\"hello\": 1}"), None);
        assert_eq!(encode(stamp, 1).len(), HEADER_BYTES);
    }
}
