//! A bounded cost per request. Every AWS body is read whole before it is
//! decoded, so the bytes of the bodies being read at once are capped (a
//! body takes its share of `MEMORY` before it is read), and a body is
//! counted before it is decoded into a tree: a 16 MiB body of tiny JSON
//! values would otherwise become hundreds of megabytes of nodes.

use axum::http::StatusCode;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::AwsError;
use super::Protocol;
use super::codec::serialization_error;

/// The largest body an AWS request may have: a 5 MiB PutRecords grows by
/// base64.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Bodies read at once may hold this much, in `UNIT`s.
const MEMORY: usize = 256 * 1024 * 1024;
const UNIT: usize = 64 * 1024;

/// More values than any request of the services has: PutRecords and
/// PutRecordBatch are 500 records of a few fields each.
pub const MAX_VALUES: usize = 100_000;

pub struct Budget {
    units: Semaphore,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            units: Semaphore::new(MEMORY / UNIT),
        }
    }
}

impl Budget {
    /// Waits until a body of `length` bytes (the largest allowed when the
    /// length is not announced) may be read.
    pub async fn reserve(&self, length: Option<u64>) -> Option<SemaphorePermit<'_>> {
        let bytes = length.map_or(MAX_REQUEST_BYTES, |l| (l as usize).min(MAX_REQUEST_BYTES));
        let units = bytes.div_ceil(UNIT).max(1) as u32;
        self.units.acquire_many(units).await.ok()
    }
}

pub fn too_large(bytes: usize) -> AwsError {
    AwsError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLargeException",
        format!(
            "Request body of more than {bytes} bytes exceeds the {MAX_REQUEST_BYTES}-byte limit"
        ),
    )
}

/// Refuses a body with more values than any request has, before it is
/// decoded: JSON by its separators, CBOR by its item headers.
pub fn check_values(protocol: Protocol, body: &[u8]) -> Result<(), AwsError> {
    let values = match protocol {
        Protocol::Json => json_values(body),
        Protocol::Cbor => cbor_values(body)?,
    };
    if values > MAX_VALUES {
        return Err(serialization_error(format!(
            "The request has more than {MAX_VALUES} values"
        )));
    }
    Ok(())
}

/// An upper bound of the values in a JSON text: one per separator or
/// opening bracket outside strings, plus one.
fn json_values(body: &[u8]) -> usize {
    let mut count = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b'[' | b'{' | b':' => count += 1,
                _ => {}
            }
        }
    }
    count
}

/// The items of a CBOR value, read from its headers without building it.
/// A declared length past the end of the body is malformed.
fn cbor_values(body: &[u8]) -> Result<usize, AwsError> {
    let malformed = || serialization_error("Malformed CBOR request body");
    let mut at = 0usize;
    let mut count = 0usize;
    // Items still expected at each open level; `None` for an
    // indefinite-length container, which ends at a break.
    let mut open: Vec<Option<u64>> = Vec::new();
    loop {
        if let Some(Some(0)) = open.last() {
            open.pop();
            continue;
        }
        if open.is_empty() && count > 0 {
            return Ok(count);
        }
        let &initial = body.get(at).ok_or_else(malformed)?;
        at += 1;
        if initial == 0xff {
            match open.pop() {
                Some(None) => continue,
                _ => return Err(malformed()),
            }
        }
        if let Some(Some(left)) = open.last_mut() {
            *left -= 1;
        }
        count += 1;
        if count > MAX_VALUES {
            return Ok(count);
        }
        let major = initial >> 5;
        let info = initial & 0x1f;
        let argument: Option<u64> = match info {
            0..=23 => Some(u64::from(info)),
            24..=27 => {
                let width = 1usize << (info - 24);
                let bytes = body.get(at..at + width).ok_or_else(malformed)?;
                at += width;
                Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
            }
            31 => None,
            _ => return Err(malformed()),
        };
        match (major, argument) {
            (0 | 1, Some(_)) | (7, _) => {}
            (2 | 3, Some(length)) => {
                let length = usize::try_from(length).map_err(|_| malformed())?;
                if body.len() - at < length {
                    return Err(malformed());
                }
                at += length;
            }
            // Indefinite strings are chunks of definite ones up to a break.
            (2 | 3, None) | (4, None) | (5, None) => open.push(None),
            (4, Some(items)) => open.push(Some(items)),
            (5, Some(pairs)) => open.push(Some(pairs.checked_mul(2).ok_or_else(malformed)?)),
            (6, Some(_)) => open.push(Some(1)),
            _ => return Err(malformed()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_counted_outside_strings() {
        assert_eq!(json_values(br#"{"a":[1,2,3],"b":"x,y:[{"}"#), 8);
        let many = format!("[{}0]", "0,".repeat(MAX_VALUES));
        assert!(check_values(Protocol::Json, many.as_bytes()).is_err());
        assert!(check_values(Protocol::Json, br#"{"StreamName":"s"}"#).is_ok());
    }

    #[test]
    fn cbor_items_are_counted_from_their_headers() {
        let mut bytes = Vec::new();
        ciborium::into_writer(
            &ciborium::Value::Map(vec![
                (
                    ciborium::Value::Text("a".into()),
                    ciborium::Value::Array(vec![1.into(), 2.into()]),
                ),
                (
                    ciborium::Value::Text("b".into()),
                    ciborium::Value::Tag(1, Box::new(5.into())),
                ),
            ]),
            &mut bytes,
        )
        .unwrap();
        assert_eq!(cbor_values(&bytes).unwrap(), 8);
        // An array that claims more items than there are bytes.
        assert!(cbor_values(&[0x9b, 0, 0, 0, 1, 0, 0, 0, 0]).is_err());
        // A byte string longer than the body.
        assert!(cbor_values(&[0x5a, 0xff, 0xff, 0xff, 0xff, 1]).is_err());
        // Many small items.
        let mut many = vec![0x9a];
        many.extend_from_slice(&(MAX_VALUES as u32 + 1).to_be_bytes());
        many.extend(std::iter::repeat_n(0u8, MAX_VALUES + 1));
        assert!(check_values(Protocol::Cbor, &many).is_err());
    }
}
