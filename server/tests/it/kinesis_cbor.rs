//! Kinesis over CBOR, as the Java SDK and the KCL speak it: blobs as byte
//! strings, timestamps as tag 1 epoch milliseconds, errors as CBOR maps.

use ciborium::Value;

use crate::harness::{RunnelServer, agent};

fn map(fields: Vec<(&str, Value)>) -> Value {
    Value::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Value::Text(k.into()), v))
            .collect(),
    )
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn field<'a>(value: &'a Value, name: &str) -> &'a Value {
    value
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(name)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no field {name} in {value:?}"))
}

fn call(server: &RunnelServer, op: &str, body: Value) -> (u16, Value) {
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).unwrap();
    let mut response = agent()
        .post(&server.url())
        .header("X-Amz-Target", format!("Kinesis_20131202.{op}"))
        .header("Content-Type", "application/x-amz-cbor-1.1")
        .send(&bytes[..])
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/x-amz-cbor-1.1"
    );
    let bytes = response.body_mut().read_to_vec().unwrap();
    (status, ciborium::from_reader(&bytes[..]).unwrap())
}

#[test]
fn cbor_requests_and_responses_carry_bytes_and_millisecond_timestamps() {
    let server = RunnelServer::start();
    let (status, _) = call(
        &server,
        "CreateStream",
        map(vec![
            ("StreamName", text("c")),
            ("ShardCount", Value::Integer(1.into())),
        ]),
    );
    assert_eq!(status, 200);
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 1;
    let payload = vec![0u8, 159, 146, 150, 255];
    let (status, put) = call(
        &server,
        "PutRecord",
        map(vec![
            ("StreamName", text("c")),
            ("PartitionKey", text("k")),
            ("Data", Value::Bytes(payload.clone())),
        ]),
    );
    assert_eq!(status, 200, "{put:?}");
    let sequence = field(&put, "SequenceNumber").as_text().unwrap().to_string();

    let (_, it) = call(
        &server,
        "GetShardIterator",
        map(vec![
            ("StreamName", text("c")),
            ("ShardId", text("shardId-000000000000")),
            ("ShardIteratorType", text("AT_TIMESTAMP")),
            (
                "Timestamp",
                Value::Tag(1, Box::new(Value::Integer(before_ms.into()))),
            ),
        ]),
    );
    let (status, out) = call(
        &server,
        "GetRecords",
        map(vec![("ShardIterator", field(&it, "ShardIterator").clone())]),
    );
    assert_eq!(status, 200);
    let records = field(&out, "Records").as_array().unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(field(record, "Data"), &Value::Bytes(payload));
    assert_eq!(
        field(record, "SequenceNumber").as_text(),
        Some(sequence.as_str())
    );
    match field(record, "ApproximateArrivalTimestamp") {
        Value::Tag(1, inner) => {
            let ms = u64::try_from(i128::from(inner.as_integer().unwrap())).unwrap();
            assert!(ms >= before_ms && ms < before_ms + 60_000, "{ms}");
        }
        other => panic!("timestamp is not tag 1: {other:?}"),
    }

    let (status, err) = call(
        &server,
        "DescribeStream",
        map(vec![("StreamName", text("nope"))]),
    );
    assert_eq!(status, 400);
    assert_eq!(
        field(&err, "__type").as_text(),
        Some("ResourceNotFoundException")
    );
    let (status, err) = call(
        &server,
        "CreateStream",
        map(vec![("StreamName", text("bad name"))]),
    );
    assert_eq!(status, 400);
    assert_eq!(field(&err, "__type").as_text(), Some("ValidationException"));
}
