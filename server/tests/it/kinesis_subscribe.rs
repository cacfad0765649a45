//! SubscribeToShard over HTTP/2 cleartext, driven by curl (nghttp2):
//! event-stream frames with valid checksums, `initial-response` first,
//! records as they arrive, and the shard's children when a reshard ends it.

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::harness::{RunnelServer, agent};

fn call(server: &RunnelServer, op: &str, body: Value) -> Value {
    let mut response = agent()
        .post(&server.url())
        .header("X-Amz-Target", format!("Kinesis_20131202.{op}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .send(body.to_string())
        .unwrap();
    assert_eq!(response.status(), 200, "{op}");
    response.body_mut().read_json().unwrap()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// (headers, payload) of every frame, checking both checksums.
fn frames(mut bytes: &[u8]) -> Vec<(Vec<(String, String)>, Value)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let total = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        let header_len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let frame = &bytes[..total];
        assert_eq!(
            crc32(&frame[..8]).to_be_bytes(),
            frame[8..12],
            "prelude crc"
        );
        assert_eq!(
            crc32(&frame[..total - 4]).to_be_bytes(),
            frame[total - 4..],
            "message crc"
        );
        let mut headers = Vec::new();
        let mut h = &frame[12..12 + header_len];
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8(h[1..1 + n].to_vec()).unwrap();
            assert_eq!(h[1 + n], 7, "string header");
            let len = u16::from_be_bytes(h[2 + n..4 + n].try_into().unwrap()) as usize;
            let value = String::from_utf8(h[4 + n..4 + n + len].to_vec()).unwrap();
            headers.push((name, value));
            h = &h[4 + n + len..];
        }
        let payload: Value = serde_json::from_slice(&frame[12 + header_len..total - 4]).unwrap();
        out.push((headers, payload));
        bytes = &bytes[total..];
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[test]
fn subscribe_to_shard_streams_events_over_h2c_until_a_reshard_ends_the_shard() {
    let server = RunnelServer::start();
    call(
        &server,
        "CreateStream",
        json!({"StreamName": "fan", "ShardCount": 1}),
    );
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/fan";
    let consumer = call(
        &server,
        "RegisterStreamConsumer",
        json!({"StreamARN": arn, "ConsumerName": "c"}),
    );
    let consumer_arn = consumer["Consumer"]["ConsumerARN"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..3 {
        call(
            &server,
            "PutRecord",
            json!({"StreamName": "fan", "PartitionKey": "k", "Data": STANDARD.encode(format!("before-{i}"))}),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("events.bin");
    let request = json!({"ConsumerARN": consumer_arn, "ShardId": "shardId-000000000000",
                         "StartingPosition": {"Type": "TRIM_HORIZON"}});
    let curl = Command::new("curl")
        .args([
            "--http2-prior-knowledge",
            "-s",
            "-N",
            "--max-time",
            "20",
            "-X",
            "POST",
        ])
        .args(["-H", "X-Amz-Target: Kinesis_20131202.SubscribeToShard"])
        .args(["-H", "Content-Type: application/x-amz-json-1.1"])
        .args(["-d", &request.to_string(), "-o"])
        .arg(&body_path)
        .args(["-w", "%{http_version} %{http_code} %{content_type}"])
        .arg(server.url())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    // Records that arrive during the subscription are pushed too; then a
    // split closes the shard and the stream ends with its children. The
    // first event (the records put before) says the subscription is open;
    // on a loaded machine curl may take a while to get there.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::fs::metadata(&body_path).map_or(0, |m| m.len()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no SubscribeToShard event within 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A second subscription for the same consumer and shard within 5 s is refused.
    let mut again = agent()
        .post(&server.url())
        .header("X-Amz-Target", "Kinesis_20131202.SubscribeToShard")
        .header("Content-Type", "application/x-amz-json-1.1")
        .send(request.to_string())
        .unwrap();
    assert_eq!(again.status(), 400);
    let again: Value = again.body_mut().read_json().unwrap();
    assert_eq!(again["__type"], "ResourceInUseException");
    call(
        &server,
        "PutRecord",
        json!({"StreamName": "fan", "PartitionKey": "k", "Data": STANDARD.encode("during")}),
    );
    std::thread::sleep(Duration::from_millis(500));
    call(
        &server,
        "SplitShard",
        json!({"StreamName": "fan", "ShardToSplit": "shardId-000000000000",
                                      "NewStartingHashKey": (1u128 << 127).to_string()}),
    );
    let output = curl.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "curl ended by timeout, not by the shard's end: {summary}"
    );
    assert_eq!(summary, "2 200 application/vnd.amazon.eventstream");

    let events = frames(&std::fs::read(&body_path).unwrap());
    assert_eq!(header(&events[0].0, ":event-type"), "initial-response");
    let mut data = Vec::new();
    for (headers, payload) in &events[1..] {
        assert_eq!(header(headers, ":message-type"), "event");
        assert_eq!(header(headers, ":event-type"), "SubscribeToShardEvent");
        for r in payload["Records"].as_array().unwrap() {
            data.push(
                String::from_utf8(STANDARD.decode(r["Data"].as_str().unwrap()).unwrap()).unwrap(),
            );
        }
    }
    assert_eq!(data, ["before-0", "before-1", "before-2", "during"]);
    let last = &events.last().unwrap().1;
    assert!(last.get("ContinuationSequenceNumber").is_none(), "{last}");
    let children: Vec<&str> = last["ChildShards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ShardId"].as_str().unwrap())
        .collect();
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    assert!(
        events[1..events.len() - 1]
            .iter()
            .all(|(_, p)| p["ContinuationSequenceNumber"].is_string())
    );
}
