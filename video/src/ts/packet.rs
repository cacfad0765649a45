//! Transport stream packets: 188 bytes, a 4-byte header, then an optional
//! adaptation field and the payload. A payload longer than one packet
//! goes on in the next ones; the last is filled out with adaptation-field
//! stuffing, since a payload itself may not be padded.

pub const PACKET_LEN: usize = 188;
pub const SYNC_BYTE: u8 = 0x47;
const BODY_LEN: usize = PACKET_LEN - 4;

const DISCONTINUITY: u8 = 0x80;
const RANDOM_ACCESS: u8 = 0x40;
const PCR_FLAG: u8 = 0x10;

/// What the first packet of a payload carries in its adaptation field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    /// The program clock reference, in 90 kHz ticks (its 27 MHz extension
    /// is always 0).
    pub pcr: Option<u64>,
    /// A keyframe starts in this packet.
    pub random_access: bool,
}

/// One PID's packets within a segment, with its continuity counter.
pub struct Pid {
    pid: u16,
    counter: u8,
    /// Nothing written yet: segments are fetched one by one, in any
    /// order, so the first packet of each PID tells the demuxer not to
    /// expect its counter to follow the previous segment's.
    fresh: bool,
}

impl Pid {
    pub fn new(pid: u16) -> Pid {
        Pid {
            pid: pid & 0x1fff,
            counter: 0,
            fresh: true,
        }
    }

    /// `payload` (a PES packet or a pointer field and PSI section) as
    /// packets, the first starting the unit and carrying `extras`.
    pub fn write(&mut self, out: &mut Vec<u8>, payload: &[u8], extras: Extras) {
        let mut rest = payload;
        let mut first = true;
        while first || !rest.is_empty() {
            let mut field = Vec::new();
            if first {
                let mut flags = 0;
                if std::mem::take(&mut self.fresh) {
                    flags |= DISCONTINUITY;
                }
                if extras.random_access {
                    flags |= RANDOM_ACCESS;
                }
                if extras.pcr.is_some() {
                    flags |= PCR_FLAG;
                }
                if flags != 0 {
                    field.push(flags);
                }
                if let Some(pcr) = extras.pcr {
                    field.extend_from_slice(&pcr_bytes(pcr));
                }
            }
            let has_field = !field.is_empty();
            let room = BODY_LEN - if has_field { 1 + field.len() } else { 0 };
            let take = rest.len().min(room);
            let stuffing = room - take;
            match (has_field, stuffing) {
                (_, 0) => {}
                (true, n) => field.resize(field.len() + n, 0xff),
                // An adaptation field of length 0 is one byte.
                (false, 1) => {}
                (false, n) => {
                    field.push(0);
                    field.resize(n - 1, 0xff);
                }
            }
            let with_field = has_field || stuffing > 0;
            out.push(SYNC_BYTE);
            out.push(if first { 0x40 } else { 0 } | (self.pid >> 8) as u8);
            out.push(self.pid as u8);
            out.push(if with_field { 0x30 } else { 0x10 } | self.counter);
            if with_field {
                // At most 183: it is what is left of the body.
                out.push(field.len() as u8);
                out.extend_from_slice(&field);
            }
            out.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            self.counter = (self.counter + 1) & 0x0f;
            first = false;
        }
    }
}

/// program_clock_reference_base (33 bits), 6 reserved bits, and the
/// 9-bit extension, 0.
fn pcr_bytes(base: u64) -> [u8; 6] {
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) << 7) as u8 | 0x7e,
        0,
    ]
}
