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
    /// Each frame's time, size, keyframe flag and track, packed
    /// (`FrameIndex`), so that a frames table without `payload` reads the
    /// index, not the video. Empty in entries written before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub frame_index: String,
    /// Its bytes in the segment are encrypted (under the server's key).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    /// The producer's metadata is stored as a Tags element of this many
    /// bytes before the Cluster body at `at`, so that it is encrypted with
    /// the video. 0: none (and in entries written before metadata was
    /// kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tags_len: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One frame in a `FragmentMeta::frame_index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedFrame {
    /// After the fragment's start.
    pub offset_ms: i32,
    pub len: u32,
    pub keyframe: bool,
    pub track: u8,
}

const INDEXED_FRAME_BYTES: usize = 10;

/// Packs frames as 10 bytes each (offset, length, flags, track), base64.
pub fn pack_frames(frames: impl Iterator<Item = IndexedFrame>) -> String {
    let mut bytes = Vec::new();
    for frame in frames {
        bytes.extend_from_slice(&frame.offset_ms.to_be_bytes());
        bytes.extend_from_slice(&frame.len.to_be_bytes());
        bytes.push(u8::from(frame.keyframe));
        bytes.push(frame.track);
    }
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

/// The frames `pack_frames` packed; `None` if the text is not such.
pub fn unpack_frames(text: &str) -> Option<Vec<IndexedFrame>> {
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).ok()?;
    if bytes.len() % INDEXED_FRAME_BYTES != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INDEXED_FRAME_BYTES)
            .map(|b| IndexedFrame {
                offset_ms: i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                len: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                keyframe: b[8] != 0,
                track: b[9],
            })
            .collect(),
    )
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
    fn frame_indexes_unpack_to_what_was_packed() {
        let frames = vec![
            IndexedFrame {
                offset_ms: 0,
                len: 30_000,
                keyframe: true,
                track: 1,
            },
            IndexedFrame {
                offset_ms: -5,
                len: 7,
                keyframe: false,
                track: 2,
            },
        ];
        assert_eq!(
            unpack_frames(&pack_frames(frames.iter().copied())),
            Some(frames)
        );
        assert_eq!(unpack_frames("AAAA"), None);
    }

    #[test]
    fn fragment_numbers_name_their_stream_and_sequence() {
        let number = fragment_number(3, 41);
        assert_eq!(parse_fragment_number(&number), Some((3, 41)));
        assert!(fragment_number(3, 42) > number);
        assert_eq!(parse_fragment_number("12x"), None);
        assert_eq!(parse_fragment_number(""), None);
    }
}
