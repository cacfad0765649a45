//! AWS event-stream framing (`application/vnd.amazon.eventstream`), the
//! body of a SubscribeToShard response: each message is a prelude (total
//! length, headers length, CRC32 of those 8 bytes), headers, the payload
//! and a CRC32 of everything before it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

/// Header value type 7: a UTF-8 string with a u16 length.
const STRING_TYPE: u8 = 7;

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE 802.3), as event-stream uses.
pub fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |c, b| {
        CRC_TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8)
    })
}

pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut header_bytes = Vec::new();
    for (name, value) in headers {
        // Header names and our values are short ASCII constants.
        header_bytes.push(name.len() as u8);
        header_bytes.extend_from_slice(name.as_bytes());
        header_bytes.push(STRING_TYPE);
        header_bytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        header_bytes.extend_from_slice(value.as_bytes());
    }
    let total = 12 + header_bytes.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Bytes::from(out)
}

pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

pub fn exception(kind: &str, content_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[
            (":message-type", "exception"),
            (":exception-type", kind),
            (":content-type", content_type),
        ],
        payload,
    )
}

/// A response body fed by a channel: each message sent is one frame.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|message| message.map(|bytes| Ok(http_body::Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn messages_carry_lengths_and_checksums() {
        let m = message(&[(":message-type", "event")], b"{}");
        let total = u32::from_be_bytes(m[..4].try_into().unwrap()) as usize;
        let headers = u32::from_be_bytes(m[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, m.len());
        assert_eq!(headers, 1 + 13 + 1 + 2 + 5);
        assert_eq!(crc32(&m[..8]).to_be_bytes(), m[8..12]);
        assert_eq!(crc32(&m[..total - 4]).to_be_bytes(), m[total - 4..]);
        assert_eq!(&m[total - 6..total - 4], b"{}");
    }
}
