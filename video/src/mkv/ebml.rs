//! EBML's two variable-length integers (element ids keep their length
//! marker, sizes drop it) and the element ids Kinesis Video reads or
//! writes.

/// The all-ones size: an element whose end is found by what follows it
/// (live producers write Segments and Clusters so).
pub const UNKNOWN_SIZE: u64 = u64::MAX;

pub const EBML: u32 = 0x1A45_DFA3;
pub const DOC_TYPE: u32 = 0x4282;
pub const SEGMENT: u32 = 0x1853_8067;
pub const SEEK_HEAD: u32 = 0x114D_9B74;
pub const INFO: u32 = 0x1549_A966;
pub const TIMECODE_SCALE: u32 = 0x2A_D7B1;
pub const TRACKS: u32 = 0x1654_AE6B;
pub const TRACK_ENTRY: u32 = 0xAE;
pub const TRACK_NUMBER: u32 = 0xD7;
pub const TRACK_TYPE: u32 = 0x83;
pub const CODEC_ID: u32 = 0x86;
pub const CODEC_PRIVATE: u32 = 0x63A2;
pub const VIDEO: u32 = 0xE0;
pub const PIXEL_WIDTH: u32 = 0xB0;
pub const PIXEL_HEIGHT: u32 = 0xBA;
pub const CLUSTER: u32 = 0x1F43_B675;
pub const TIMECODE: u32 = 0xE7;
pub const SIMPLE_BLOCK: u32 = 0xA3;
pub const BLOCK_GROUP: u32 = 0xA0;
pub const BLOCK: u32 = 0xA1;
pub const REFERENCE_BLOCK: u32 = 0xFB;
pub const BLOCK_DURATION: u32 = 0x9B;
pub const CUES: u32 = 0x1C53_BB6B;
pub const TAGS: u32 = 0x1254_C367;
pub const TAG: u32 = 0x7373;
pub const TARGETS: u32 = 0x63C0;
pub const SIMPLE_TAG: u32 = 0x67C8;
pub const TAG_NAME: u32 = 0x45A3;
pub const TAG_STRING: u32 = 0x4487;
/// TagTrackUID, TagEditionUID, TagChapterUID, TagAttachmentUID: a Tag
/// whose Targets name one is about that, not the whole segment.
pub const TARGET_UIDS: [u32; 4] = [0x63C5, 0x63C9, 0x63C4, 0x63C6];
pub const CHAPTERS: u32 = 0x1043_A770;
pub const ATTACHMENTS: u32 = 0x1941_A469;
pub const VOID: u32 = 0xEC;
pub const CRC32: u32 = 0xBF;

/// The children of a Segment: seeing one ends a Cluster of unknown size.
pub fn is_top_level(id: u32) -> bool {
    matches!(
        id,
        EBML | SEGMENT | SEEK_HEAD | INFO | TRACKS | CLUSTER | CUES | TAGS | CHAPTERS | ATTACHMENTS
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vint {
    /// `(value, bytes it took)`.
    Done(u64, usize),
    /// More bytes are needed to tell.
    Short,
    /// The first byte is zero: no valid EBML integer starts so.
    Invalid,
}

/// An element id: 1 to 4 bytes with the length marker kept in the value.
pub fn read_id(bytes: &[u8]) -> Vint {
    let Some(&first) = bytes.first() else {
        return Vint::Short;
    };
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return Vint::Invalid;
    }
    if bytes.len() < len {
        return Vint::Short;
    }
    let value = bytes[..len]
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    Vint::Done(value, len)
}

/// An element size: 1 to 8 bytes, the marker removed; all ones is
/// `UNKNOWN_SIZE`.
pub fn read_size(bytes: &[u8]) -> Vint {
    let Some(&first) = bytes.first() else {
        return Vint::Short;
    };
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return Vint::Invalid;
    }
    if bytes.len() < len {
        return Vint::Short;
    }
    let marker_free = u64::from(first) & (0xFFu64 >> len);
    let value = bytes[1..len]
        .iter()
        .fold(marker_free, |acc, &b| (acc << 8) | u64::from(b));
    let all_ones = (1u64 << (7 * len)) - 1;
    if value == all_ones {
        Vint::Done(UNKNOWN_SIZE, len)
    } else {
        Vint::Done(value, len)
    }
}

/// A block's track number: a size-style integer.
pub fn read_track(bytes: &[u8]) -> Option<(u64, usize)> {
    match read_size(bytes) {
        Vint::Done(value, len) if value != UNKNOWN_SIZE => Some((value, len)),
        _ => None,
    }
}

pub fn unsigned(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Iterates the children of an element body read whole, as
/// `(id, payload)`; `None` ends it early when the body is malformed.
pub fn children(body: &[u8]) -> impl Iterator<Item = Option<(u32, &[u8])>> + '_ {
    let mut at = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= body.len() {
            return None;
        }
        let rest = &body[at..];
        let parsed = match (read_id(rest), rest) {
            (Vint::Done(id, id_len), _) => match read_size(&rest[id_len..]) {
                Vint::Done(size, size_len)
                    if size != UNKNOWN_SIZE
                        && (size as usize) <= rest.len() - id_len - size_len =>
                {
                    let start = id_len + size_len;
                    Some((
                        id as u32,
                        &rest[start..start + size as usize],
                        start + size as usize,
                    ))
                }
                _ => None,
            },
            _ => None,
        };
        match parsed {
            Some((id, payload, len)) => {
                at += len;
                Some(Some((id, payload)))
            }
            None => {
                failed = true;
                Some(None)
            }
        }
    })
}

pub fn write_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = (id.leading_zeros() / 8) as usize;
    out.extend_from_slice(&bytes[skip.min(3)..]);
}

/// A size in 8 bytes: written before its content is known, and always
/// valid.
pub fn write_size8(out: &mut Vec<u8>, size: u64) {
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
}

pub fn write_unknown_size(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
}

pub fn write_element(out: &mut Vec<u8>, id: u32, payload: &[u8]) {
    write_id(out, id);
    write_size8(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

pub fn write_uint(out: &mut Vec<u8>, id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = ((value.leading_zeros() / 8) as usize).min(7);
    write_element(out, id, &bytes[skip..]);
}

/// Writes an element whose payload `fill` appends, then patches its size.
pub fn write_nested(out: &mut Vec<u8>, id: u32, fill: impl FnOnce(&mut Vec<u8>)) {
    write_id(out, id);
    let size_at = out.len();
    write_size8(out, 0);
    let start = out.len();
    fill(out);
    let size = (out.len() - start) as u64;
    out[size_at + 1..size_at + 8].copy_from_slice(&size.to_be_bytes()[1..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_marker_and_sizes_drop_it() {
        assert_eq!(
            read_id(&[0x1A, 0x45, 0xDF, 0xA3]),
            Vint::Done(0x1A45DFA3, 4)
        );
        assert_eq!(read_id(&[0xA3]), Vint::Done(0xA3, 1));
        assert_eq!(read_id(&[0x1A, 0x45]), Vint::Short);
        assert_eq!(read_id(&[0x00]), Vint::Invalid);
        assert_eq!(read_size(&[0x81]), Vint::Done(1, 1));
        assert_eq!(read_size(&[0x40, 0x02]), Vint::Done(2, 2));
        assert_eq!(read_size(&[0xFF]), Vint::Done(UNKNOWN_SIZE, 1));
        assert_eq!(
            read_size(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Vint::Done(UNKNOWN_SIZE, 8)
        );
        assert_eq!(read_size(&[0x00, 0x01]), Vint::Invalid);
    }

    #[test]
    fn written_elements_read_back() {
        let mut out = Vec::new();
        write_uint(&mut out, TIMECODE, 1_733_500_000_000);
        write_nested(&mut out, TAGS, |out| write_element(out, TAG_NAME, b"x"));
        let read: Vec<_> = children(&out).collect();
        assert_eq!(read.len(), 2);
        let (id, payload) = read[0].expect("timecode");
        assert_eq!((id, unsigned(payload)), (TIMECODE, Some(1_733_500_000_000)));
        assert_eq!(read[1].expect("tags").0, TAGS);
    }
}
