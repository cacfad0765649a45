//! A PES packet: one video access unit or audio frame behind a header
//! giving its presentation time and, when it differs, its decode time.

/// stream_id of the first MPEG video stream.
pub const VIDEO_STREAM_ID: u8 = 0xe0;
/// stream_id of the first MPEG audio stream.
pub const AUDIO_STREAM_ID: u8 = 0xc0;

/// The PES packet of `payload` on `stream_id`. PES_packet_length is 0,
/// "unbounded", when the packet is too long to state it, which a video
/// stream in a transport stream may do.
pub fn packet(stream_id: u8, pts: u64, dts: Option<u64>, payload: &[u8]) -> Vec<u8> {
    let header_data_len: u8 = if dts.is_some() { 10 } else { 5 };
    let mut out = Vec::with_capacity(payload.len() + 19);
    out.extend_from_slice(&[0, 0, 1, stream_id]);
    let length = u16::try_from(3 + usize::from(header_data_len) + payload.len()).unwrap_or(0);
    out.extend_from_slice(&length.to_be_bytes());
    // '10', not scrambled, data_alignment_indicator: each PES packet
    // starts with an access unit.
    out.push(0x84);
    out.push(if dts.is_some() { 0xc0 } else { 0x80 });
    out.push(header_data_len);
    match dts {
        Some(dts) => {
            timestamp(&mut out, 0b0011, pts);
            timestamp(&mut out, 0b0001, dts);
        }
        None => timestamp(&mut out, 0b0010, pts),
    }
    out.extend_from_slice(payload);
    out
}

/// A 33-bit timestamp in 5 bytes: a 4-bit prefix, then 3, 15 and 15 bits
/// each followed by a marker bit.
fn timestamp(out: &mut Vec<u8>, prefix: u8, ticks: u64) {
    out.extend_from_slice(&[
        (prefix << 4) | ((ticks >> 29) as u8 & 0x0e) | 1,
        (ticks >> 22) as u8,
        ((ticks >> 14) as u8 & 0xfe) | 1,
        (ticks >> 7) as u8,
        ((ticks << 1) as u8 & 0xfe) | 1,
    ]);
}

/// The timestamp `timestamp` wrote at `bytes`.
#[cfg(test)]
pub fn read_timestamp(bytes: &[u8]) -> u64 {
    (u64::from(bytes[0] >> 1 & 0x07) << 30)
        | (u64::from(bytes[1]) << 22)
        | (u64::from(bytes[2] >> 1) << 15)
        | (u64::from(bytes[3]) << 7)
        | u64::from(bytes[4] >> 1)
}
