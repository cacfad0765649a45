//! Request and response bodies in both AWS JSON encodings (JSON 1.1 and
//! CBOR).
//!
//! Requests are read into one JSON-shaped tree, checked against the
//! operation's input shape: a CBOR body is converted on the way in, by its
//! shape (byte strings become base64 text where blobs are expected, tag-1
//! timestamps in epoch milliseconds become epoch seconds), so every handler
//! reads fields one way. Responses are built as `Out`, which keeps blobs
//! and timestamps distinct until the encoding is chosen.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::aws::shapes::Model;
use crate::aws::{AwsError, Protocol};

pub fn serialization_error(message: impl Into<String>) -> AwsError {
    AwsError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "SerializationException",
        message,
    )
}

/// Decodes a request body for `operation` of the service `model`
/// describes into a JSON object, refusing members of the wrong type.
pub fn decode(
    protocol: Protocol,
    body: &[u8],
    model: &Model,
    operation: &str,
) -> Result<Map<String, Value>, AwsError> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    let input = model.input(operation);
    let value = match protocol {
        Protocol::Json => {
            let value = serde_json::from_slice::<Value>(body)
                .map_err(|e| serialization_error(format!("Malformed JSON request body: {e}")))?;
            if let Some(input) = input {
                model.check_json(input, &value)?;
            }
            value
        }
        Protocol::Cbor => {
            let mut reader = std::io::Cursor::new(body);
            let value: ciborium::Value = ciborium::from_reader(&mut reader)
                .map_err(|e| serialization_error(format!("Malformed CBOR request body: {e}")))?;
            // One value and nothing after it, as a JSON body must be.
            if reader.position() != body.len() as u64 {
                return Err(serialization_error(format!(
                    "Malformed CBOR request body: {} bytes after the request",
                    body.len() as u64 - reader.position()
                )));
            }
            model.cbor(input, value, 0)?
        }
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(serialization_error(
            "The request body must be an object (a JSON object or CBOR map)",
        )),
    }
}

/// A 200 answer whose body is JSON 1.1 text.
pub fn json_ok(text: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = (axum::http::StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}

/// A response value.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Blob(Vec<u8>),
    /// Epoch milliseconds.
    Time(u64),
    List(Vec<Out>),
    Map(Vec<(&'static str, Out)>),
}

impl Out {
    pub fn map(fields: Vec<(&'static str, Out)>) -> Out {
        Out::Map(fields)
    }

    pub fn str(text: impl Into<String>) -> Out {
        Out::Str(text.into())
    }

    pub fn strs<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Out {
        Out::List(items.into_iter().map(|s| Out::Str(s.into())).collect())
    }

    pub fn empty() -> Out {
        Out::Map(Vec::new())
    }

    pub fn encode(&self, protocol: Protocol) -> Vec<u8> {
        match protocol {
            Protocol::Json => {
                let mut text = String::with_capacity(256);
                self.write_json(&mut text);
                text.into_bytes()
            }
            Protocol::Cbor => {
                let mut bytes = Vec::with_capacity(256);
                // Writing into a Vec cannot fail.
                let _ = ciborium::into_writer(&self.to_cbor(), &mut bytes);
                bytes
            }
        }
    }

    fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            Out::Null => out.push_str("null"),
            Out::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Out::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Out::Str(s) => write_json_string(out, s),
            Out::Blob(b) => {
                out.push('"');
                STANDARD.encode_string(b, out);
                out.push('"');
            }
            Out::Time(ms) => {
                let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
            }
            Out::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Out::Map(fields) => {
                out.push('{');
                let mut first = true;
                for (key, value) in fields {
                    if *value == Out::Null {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_json_string(out, key);
                    out.push(':');
                    value.write_json(out);
                }
                out.push('}');
            }
        }
    }

    fn to_cbor(&self) -> ciborium::Value {
        use ciborium::Value as C;
        match self {
            Out::Null => C::Null,
            Out::Bool(b) => C::Bool(*b),
            Out::Int(i) => C::Integer((*i).into()),
            Out::Str(s) => C::Text(s.clone()),
            Out::Blob(b) => C::Bytes(b.clone()),
            Out::Time(ms) => C::Tag(1, Box::new(C::Integer((*ms).into()))),
            Out::List(items) => C::Array(items.iter().map(Out::to_cbor).collect()),
            Out::Map(fields) => C::Map(
                fields
                    .iter()
                    .filter(|(_, v)| *v != Out::Null)
                    .map(|(k, v)| (C::Text((*k).to_string()), v.to_cbor()))
                    .collect(),
            ),
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    // serde_json's escaping, written straight into the buffer.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::shapes::KINESIS;

    #[test]
    fn cbor_bytes_and_timestamps_become_the_json_forms() {
        use ciborium::Value as C;
        let body = C::Map(vec![
            (C::Text("Data".into()), C::Bytes(b"hi".to_vec())),
            (
                C::Text("Timestamp".into()),
                C::Tag(1, Box::new(C::Integer(1_500.into()))),
            ),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&body, &mut bytes).unwrap();
        let map = decode(Protocol::Cbor, &bytes, &KINESIS, "PutRecords").unwrap();
        assert_eq!(map["Data"], "aGk=");
        assert_eq!(map["Timestamp"], 1.5);
    }

    #[test]
    fn responses_encode_blobs_and_times_per_protocol() {
        let out = Out::map(vec![
            ("Data", Out::Blob(b"hi".to_vec())),
            ("At", Out::Time(1_500)),
            ("Gone", Out::Null),
        ]);
        assert_eq!(
            String::from_utf8(out.encode(Protocol::Json)).unwrap(),
            r#"{"Data":"aGk=","At":1.500}"#
        );
        let cbor: ciborium::Value = ciborium::from_reader(&out.encode(Protocol::Cbor)[..]).unwrap();
        let map = cbor.as_map().unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map[0].1, ciborium::Value::Bytes(b"hi".to_vec()));
        assert_eq!(
            map[1].1,
            ciborium::Value::Tag(1, Box::new(ciborium::Value::Integer(1_500.into())))
        );
    }

    /// What the fuzz targets (`fuzz/`) check, at CI scale: no body, however
    /// malformed, makes the decoders or field readers panic. Bodies are
    /// random bytes and random splices of valid requests, from a fixed seed.
    #[test]
    fn malformed_bodies_never_panic() {
        let seeds: [&[u8]; 3] = [
            br#"{"StreamName":"s","Records":[{"Data":"eA==","PartitionKey":"k","ExplicitHashKey":"7"}],"Limit":5,"Timestamp":1.5,"Tags":{"a":"b"}}"#,
            &[0xa3, 0x64, b'D', b'a', b't', b'a', 0x41, 0x78, 0x69, b'T', b'i', b'm', b'e', b's', b't', b'a', b'm', b'p', 0xc1, 0x19, 0x05, 0xdc, 0x65, b'L', b'i', b'm', b'i', b't', 0x05],
            br#"{"Records":[{"Data":null},{"PartitionKey":7},[1,2]],"Tags":[],"Timestamp":-1e308}"#,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let seed = seeds[round % seeds.len()];
            let mut body = seed.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % (body.len() + 1);
                match next() % 3 {
                    0 if at < body.len() => body[at] = next() as u8,
                    1 => body.insert(at, next() as u8),
                    _ => body.truncate(at),
                }
            }
            if round % 5 == 0 {
                body = (0..next() % 64).map(|_| next() as u8).collect();
            }
            for protocol in [Protocol::Json, Protocol::Cbor] {
                if let Ok(map) = decode(protocol, &body, &KINESIS, "PutRecords") {
                    let mut req = super::super::request::Req::new(map);
                    let _ = req.opt_blob("Data");
                    let _ = req.opt_time_ms("Timestamp");
                    let _ = req.int_range("Limit", "limit", 1, 10_000);
                    let _ = req.opt_str_map("Tags");
                    if let Ok(Some(records)) = req.take_list("Records") {
                        for record in records {
                            if let Ok(mut r) = super::super::request::Req::from_owned(record) {
                                let _ = r.str_len("PartitionKey", "partitionKey", 1, 256);
                                let _ = r.opt_blob("Data");
                                let _ = r.finish();
                            }
                        }
                    }
                    let _ = req.finish();
                }
            }
        }
    }

    #[test]
    fn a_cbor_body_with_bytes_after_its_map_is_refused() {
        let mut bytes = Vec::new();
        ciborium::into_writer(
            &ciborium::Value::Map(vec![(
                ciborium::Value::Text("StreamName".into()),
                ciborium::Value::Text("s".into()),
            )]),
            &mut bytes,
        )
        .unwrap();
        decode(Protocol::Cbor, &bytes, &KINESIS, "DescribeStream").unwrap();
        bytes.push(0x01);
        let error = decode(Protocol::Cbor, &bytes, &KINESIS, "DescribeStream").unwrap_err();
        assert_eq!(error.kind, "SerializationException");
        assert!(
            error.message.contains("after the request"),
            "{}",
            error.message
        );
    }

    #[test]
    fn garbage_is_a_serialization_error_not_a_panic() {
        for body in [&b"{"[..], b"[1]", b"\xff\xff"] {
            assert_eq!(
                decode(Protocol::Json, body, &KINESIS, "PutRecords")
                    .unwrap_err()
                    .kind,
                "SerializationException"
            );
            assert!(decode(Protocol::Cbor, body, &KINESIS, "PutRecords").is_err());
        }
    }
}
