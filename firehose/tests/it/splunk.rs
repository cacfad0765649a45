//! The Splunk destination against a receiver speaking HEC with indexer
//! acknowledgement: events count as delivered once acknowledged; events
//! never acknowledged go to the backup bucket as splunk-failed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runnel_firehose::{CreateSpec, DestinationKind};
use serde_json::{Value, json};

use crate::{Fixture, eventually, objects};

/// What HEC was sent: (path, authorization, channel, body).
type Log = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A HEC receiver. With `acknowledge`, an ack is reported pending once,
/// then done; without, never.
fn hec(acknowledge: bool) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        let mut polls = 0;
        let mut next_ack = 0;
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let (mut length, mut auth, mut channel) = (0, String::new(), String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.trim_end().split_once(':').unwrap_or_default();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "authorization" => auth = value.trim().to_string(),
                    "x-splunk-request-channel" => channel = value.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            seen.lock()
                .unwrap()
                .push((path.clone(), auth, channel, body.clone()));
            let answer = if path.ends_with("/ack") {
                polls += 1;
                let asked: Value = serde_json::from_str(&body).unwrap();
                let id = asked["acks"][0].to_string();
                json!({"acks": {id: acknowledge && polls % 2 == 0}})
            } else {
                next_ack += 1;
                json!({"text": "Success", "code": 0, "ackId": next_ack})
            }
            .to_string();
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, log)
}

fn create(firehose: &runnel_firehose::Firehose, name: &str, url: &str, retry: u64, backup: &str) {
    firehose
        .create(CreateSpec {
            name: name.into(),
            stream_type: "DirectPut".into(),
            destination: json!({"HECEndpoint": url, "HECEndpointType": "Raw", "HECToken": "tok-123",
                "HECAcknowledgmentTimeoutInSeconds": 1,
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                "RetryOptions": {"DurationInSeconds": retry},
                "S3Configuration": {"RoleARN": "r", "BucketARN": format!("arn:aws:s3:::{backup}")}}),
            destination_kind: DestinationKind::Splunk,
            source: None,
            encryption: None,
            tags: Default::default(),
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_delivered_once_the_indexer_acknowledges_them() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    let (url, log) = hec(true);
    create(&firehose, "hec", &url, 60, "unused");
    firehose
        .put(
            "hec",
            vec![b"event one\n".to_vec(), b"event two\n".to_vec()],
        )
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || firehose.figures()[0]
            .1
            .delivered_records
            == 2)
        .await
    );
    let log = log.lock().unwrap().clone();
    let (path, auth, channel, body) = &log[0];
    assert_eq!(path, "/services/collector/raw");
    assert_eq!(auth, "Splunk tok-123");
    assert!(!channel.is_empty());
    assert_eq!(body, "event one\nevent two\n");
    assert!(
        log[1..]
            .iter()
            .all(|(p, _, c, _)| p == "/services/collector/ack" && c == channel)
    );
    assert!(log.len() >= 3, "the ack was polled until done: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_never_acknowledged_go_to_the_backup_bucket() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    let (url, _) = hec(false);
    create(&firehose, "lost", &url, 0, "backup");
    firehose
        .put("lost", vec![b"orphan\n".to_vec()])
        .await
        .unwrap();
    let root = fixture.buckets().join("backup");
    assert!(eventually(Duration::from_secs(20), || !objects(&root).is_empty()).await);
    let (key, body) = objects(&root).remove(0);
    assert!(key.starts_with("splunk-failed/"), "{key}");
    let line: Value = serde_json::from_slice(body.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["errorCode"], "Splunk.RequestFailed");
    assert!(
        line["errorMessage"]
            .as_str()
            .unwrap()
            .contains("did not acknowledge"),
        "{line}"
    );
}
