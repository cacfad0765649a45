//! What the index keeps: streams by name, fragments by stream and
//! sequence, and the Info and Tracks each fragment was sent under.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::segments::Location;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMeta {
    pub id: u64,
    pub name: String,
    pub arn: String,
    pub device_name: Option<String>,
    pub media_type: Option<String>,
    pub kms_key_id: String,
    pub version: String,
    pub created_ms: u64,
    pub retention_hours: u32,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FragmentMeta {
    pub seq: u64,
    pub at: Location,
    pub header: u64,
    /// The Cluster's timecode as sent, which acknowledgements echo.
    pub timecode_ms: i64,
    pub producer_ms: u64,
    pub server_ms: u64,
    pub duration_ms: u64,
    pub frames: u32,
    pub keyframes: u32,
}

pub fn fragment_key(stream_id: u64, seq: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&stream_id.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

pub fn seq_of_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(8..16)?.try_into().ok()?))
}

/// The next sequence number of a stream, kept beside its metadata and
/// written with each fragment, so numbers are never reused even after
/// retention removed every fragment.
pub fn next_seq_key(stream_id: u64) -> Vec<u8> {
    let mut key = b"\0seq".to_vec();
    key.extend_from_slice(&stream_id.to_be_bytes());
    key
}

pub const NEXT_STREAM_ID_KEY: &[u8] = b"\0next_stream_id";

/// Fragment numbers are decimal, as Kinesis Video's are: the stream's id
/// above the fragment's sequence, so a number names its stream too.
pub fn fragment_number(stream_id: u64, seq: u64) -> String {
    ((u128::from(stream_id) << 64) | u128::from(seq)).to_string()
}

pub fn parse_fragment_number(text: &str) -> Option<(u64, u64)> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u128 = text.parse().ok()?;
    Some(((value >> 64) as u64, value as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_numbers_name_their_stream_and_sequence() {
        let number = fragment_number(3, 41);
        assert_eq!(parse_fragment_number(&number), Some((3, 41)));
        assert!(fragment_number(3, 42) > number);
        assert_eq!(parse_fragment_number("12x"), None);
        assert_eq!(parse_fragment_number(""), None);
    }
}
