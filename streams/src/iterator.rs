//! Shard iterators: opaque base64 tokens that say where reading resumes.
//!
//! A token carries everything GetRecords needs, so the server keeps no
//! per-iterator state: the stream (by id, so a recreated stream does not
//! accept an old token), the shard, the next counter to read, a lower bound
//! on arrival time (AT_TIMESTAMP) and when the token was issued, for expiry.
//! Every token also carries a serial of its own, so no two are the same
//! text: each GetRecords hands out a new iterator, as Kinesis does, even
//! for the same position in the same millisecond.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const VERSION: u8 = 2;
const FIXED_LEN: usize = 1 + 8 + 4 + 8 + 8 + 8 + 8;

/// Serials start at the clock's nanoseconds, so tokens of a restarted
/// server do not repeat those of the one before.
static SERIAL: std::sync::LazyLock<AtomicU64> = std::sync::LazyLock::new(|| {
    AtomicU64::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    )
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IteratorToken {
    pub stream_id: u64,
    pub shard: u32,
    /// The first counter this iterator may return.
    pub position: u64,
    pub min_arrival_ms: u64,
    pub issued_ms: u64,
    pub stream_name: String,
}

impl IteratorToken {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(FIXED_LEN + self.stream_name.len() + 4);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.stream_id.to_be_bytes());
        bytes.extend_from_slice(&self.shard.to_be_bytes());
        bytes.extend_from_slice(&self.position.to_be_bytes());
        bytes.extend_from_slice(&self.min_arrival_ms.to_be_bytes());
        bytes.extend_from_slice(&self.issued_ms.to_be_bytes());
        bytes.extend_from_slice(&SERIAL.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        bytes.extend_from_slice(self.stream_name.as_bytes());
        let check = checksum(&bytes);
        bytes.extend_from_slice(&check.to_be_bytes());
        STANDARD.encode(bytes)
    }

    /// None for anything this server did not issue. A token in double
    /// quotes is taken, as Kinesis takes it.
    pub fn decode(text: &str) -> Option<Self> {
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        let bytes = STANDARD.decode(text).ok()?;
        if bytes.len() < FIXED_LEN + 4 || bytes[0] != VERSION {
            return None;
        }
        let (body, check) = bytes.split_at(bytes.len() - 4);
        if checksum(body).to_be_bytes() != check {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?))
        };
        Some(IteratorToken {
            stream_id: u64_at(1)?,
            shard: u32::from_be_bytes(body.get(9..13)?.try_into().ok()?),
            position: u64_at(13)?,
            min_arrival_ms: u64_at(21)?,
            issued_ms: u64_at(29)?,
            stream_name: String::from_utf8(body.get(FIXED_LEN..)?.to_vec()).ok()?,
        })
    }
}

/// FNV-1a, only to tell a mangled token from one we issued.
fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let token = IteratorToken {
            stream_id: 7,
            shard: 3,
            position: 123_456,
            min_arrival_ms: 0,
            issued_ms: 1_700_000_000_000,
            stream_name: "orders".into(),
        };
        let text = token.encode();
        assert!(text.len() <= 512);
        assert_eq!(IteratorToken::decode(&text), Some(token));
        let mut tampered = text.into_bytes();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            IteratorToken::decode(&String::from_utf8(tampered).unwrap()),
            None
        );
        assert_eq!(IteratorToken::decode("not base64!"), None);
    }

    #[test]
    fn the_same_position_twice_is_two_tokens_and_quotes_are_taken() {
        let token = IteratorToken {
            stream_id: 1,
            shard: 0,
            position: 5,
            min_arrival_ms: 0,
            issued_ms: 1_700_000_000_000,
            stream_name: "s".into(),
        };
        let (first, second) = (token.encode(), token.encode());
        assert_ne!(first, second);
        assert_eq!(IteratorToken::decode(&second), Some(token.clone()));
        assert_eq!(IteratorToken::decode(&format!("\"{first}\"")), Some(token));
    }
}
