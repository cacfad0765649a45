//! The HTTP endpoint destination against a receiver that speaks Firehose's
//! HTTP endpoint protocol: requests as documented, failures retried with
//! the same request id, and records sent to the backup bucket once the
//! retry duration has passed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use runnel_firehose::{CreateSpec, DestinationKind};
use serde_json::{Value, json};

use crate::{Fixture, eventually, objects};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    headers: Vec<(String, String)>,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn records(&self) -> Vec<String> {
        self.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                String::from_utf8(STANDARD.decode(r["data"].as_str().unwrap()).unwrap()).unwrap()
            })
            .collect()
    }
}

/// A receiver that fails its first `failures` requests with a 500, then
/// answers as Firehose expects. Returns its URL and what it saw.
fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/firehose", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.trim_end().split_once(':') {
                    headers.push((name.to_string(), value.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut raw = vec![0; length];
            reader.read_exact(&mut raw).unwrap();
            let gzip = headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case("content-encoding") && v == "gzip");
            let body = if gzip {
                let mut text = Vec::new();
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(&mut text)
                    .unwrap();
                text
            } else {
                raw
            };
            let body: Value = serde_json::from_slice(&body).unwrap();
            let count = {
                let mut log = log.lock().unwrap();
                log.push(Seen {
                    headers,
                    body: body.clone(),
                });
                log.len()
            };
            let mut stream = stream;
            let reply = if count <= failures {
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            } else {
                let answer = json!({"requestId": body["requestId"], "timestamp": 0}).to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                )
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, seen)
}

fn create(firehose: &runnel_firehose::Firehose, name: &str, config: Value) {
    firehose
        .create(CreateSpec {
            name: name.into(),
            stream_type: "DirectPut".into(),
            destination: config,
            destination_kind: DestinationKind::HttpEndpoint,
            source: None,
            encryption: None,
            tags: Default::default(),
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_posted_as_documented_and_retried_with_the_same_request_id() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    let (url, seen) = receiver(2);
    create(
        &firehose,
        "hook",
        json!({"EndpointConfiguration": {"Url": url, "Name": "receiver", "AccessKey": "secret-key"},
               "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
               "RequestConfiguration": {"ContentEncoding": "GZIP",
                   "CommonAttributes": [{"AttributeName": "team", "AttributeValue": "data"}]},
               "RetryOptions": {"DurationInSeconds": 60},
               "S3BackupMode": "AllData",
               "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::backup"}}),
    );
    let records: Vec<Vec<u8>> = (0..20).map(|i| format!("event-{i}").into_bytes()).collect();
    firehose.put("hook", records).await.unwrap();
    let root = fixture.buckets().join("backup");
    assert!(
        eventually(Duration::from_secs(20), || seen.lock().unwrap().len() == 3
            && !objects(&root).is_empty())
        .await
    );
    let seen = seen.lock().unwrap().clone();
    // Two failures, then success: one request id throughout.
    let id = seen[0]
        .header("X-Amz-Firehose-Request-Id")
        .unwrap()
        .to_string();
    assert!(
        seen.iter()
            .all(|s| s.header("X-Amz-Firehose-Request-Id") == Some(id.as_str()))
    );
    assert_eq!(seen[2].body["requestId"], id.as_str());
    let last = &seen[2];
    assert_eq!(last.header("X-Amz-Firehose-Protocol-Version"), Some("1.0"));
    assert_eq!(last.header("X-Amz-Firehose-Access-Key"), Some("secret-key"));
    assert_eq!(
        last.header("X-Amz-Firehose-Source-Arn"),
        Some("arn:aws:firehose:us-east-1:000000000000:deliverystream/hook")
    );
    let attributes: Value =
        serde_json::from_str(last.header("X-Amz-Firehose-Common-Attributes").unwrap()).unwrap();
    assert_eq!(attributes, json!({"commonAttributes": {"team": "data"}}));
    assert_eq!(
        last.records(),
        (0..20).map(|i| format!("event-{i}")).collect::<Vec<_>>()
    );
    // AllData: the records are in the backup bucket too.
    let (_, backup) = objects(&root).remove(0);
    assert_eq!(
        backup,
        (0..20)
            .map(|i| format!("event-{i}"))
            .collect::<String>()
            .into_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_an_endpoint_never_takes_go_to_the_backup_bucket_as_failed() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    let (url, seen) = receiver(usize::MAX);
    create(
        &firehose,
        "down",
        json!({"EndpointConfiguration": {"Url": url},
               "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
               "RetryOptions": {"DurationInSeconds": 1},
               "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::failed"}}),
    );
    firehose
        .put("down", vec![b"lost?".to_vec(), b"never".to_vec()])
        .await
        .unwrap();
    let root = fixture.buckets().join("failed");
    assert!(eventually(Duration::from_secs(20), || !objects(&root).is_empty()).await);
    assert!(seen.lock().unwrap().len() >= 2, "retried before giving up");
    let (key, body) = objects(&root).remove(0);
    assert!(key.starts_with("http-endpoint-failed/"), "{key}");
    let lines: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["errorCode"], "HttpEndpoint.RequestFailed");
    assert_eq!(
        STANDARD
            .decode(lines[1]["rawData"].as_str().unwrap())
            .unwrap(),
        b"never"
    );
    assert!(
        eventually(Duration::from_secs(5), || firehose.figures()[0]
            .1
            .buffered_bytes
            == 0)
        .await
    );
}
