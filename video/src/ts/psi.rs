//! The program tables at the start of every segment: the PAT naming the
//! one program's PMT, and the PMT naming its streams and PCR PID.

/// Each table as a packet payload: a pointer_field of 0 (the section
/// starts at once), then the section.
fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    // The 5 bytes after the length, the body and the CRC.
    let length = (5 + body.len() + 4) as u16;
    let mut out = vec![0, table_id];
    // section_syntax_indicator, '0', reserved '11'.
    out.extend_from_slice(&(0xb000 | length).to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    // reserved '11', version 0, current_next_indicator; section 0 of 0.
    out.extend_from_slice(&[0xc1, 0, 0]);
    out.extend_from_slice(body);
    let crc = crc32(&out[1..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Program 1's PMT is at `pmt_pid`.
pub fn pat(pmt_pid: u16) -> Vec<u8> {
    let mut body = 1u16.to_be_bytes().to_vec();
    body.extend_from_slice(&(0xe000 | pmt_pid).to_be_bytes());
    // transport_stream_id 1.
    section(0x00, 1, &body)
}

/// Program 1: the elementary `streams` (PID, stream_type), the PCR on
/// `pcr_pid`.
pub fn pmt(pcr_pid: u16, streams: &[(u16, u8)]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + 5 * streams.len());
    body.extend_from_slice(&(0xe000 | pcr_pid).to_be_bytes());
    body.extend_from_slice(&0xf000u16.to_be_bytes()); // no program info
    for &(pid, stream_type) in streams {
        body.push(stream_type);
        body.extend_from_slice(&(0xe000 | pid).to_be_bytes());
        body.extend_from_slice(&0xf000u16.to_be_bytes()); // no ES info
    }
    section(0x02, 1, &body)
}

/// CRC-32/MPEG-2: polynomial 0x04C11DB7, initial value all ones, neither
/// input nor output reflected, no final XOR. Over a whole section, its
/// CRC included, it is 0.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}
