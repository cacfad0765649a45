//! The OpenSearch destination against a receiver speaking the `_bulk`
//! protocol with induced per-item failures: only failed items are sent
//! again, with the same ids; what never succeeds goes to the backup bucket.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use runnel_firehose::{CreateSpec, DestinationKind};
use serde_json::{Value, json};

use crate::{Fixture, eventually, objects};

/// Every (index, id, document) the receiver was sent, in order.
type Log = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// A `_bulk` receiver: documents saying "flaky" fail (429) the first time
/// they come, documents saying "bad" always fail (400).
fn bulk_receiver() -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            assert!(request_line.starts_with("POST /_bulk "), "{request_line}");
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let text = String::from_utf8(body).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let mut items = Vec::new();
            for pair in lines.chunks(2) {
                let action: Value = serde_json::from_str(pair[0]).unwrap();
                let index = action["index"]["_index"].as_str().unwrap().to_string();
                let id = action["index"]["_id"].as_str().map(str::to_string);
                let document = pair[1].to_string();
                let mut seen = seen.lock().unwrap();
                let earlier = seen
                    .iter()
                    .filter(|(_, i, d)| *i == id && *d == document)
                    .count();
                seen.push((index.clone(), id.clone(), document.clone()));
                let status = if document.contains("bad") {
                    400
                } else if document.contains("flaky") && earlier == 0 {
                    429
                } else {
                    201
                };
                let mut item = json!({"_index": index, "_id": id, "status": status});
                if status >= 300 {
                    item["error"] = json!({"type": if status == 400 { "mapper_parsing_exception" } else { "es_rejected_execution_exception" }});
                }
                items.push(json!({"index": item}));
            }
            let answer = json!({"took": 1, "errors": true, "items": items}).to_string();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_bulk_indexed_and_only_failed_items_are_retried() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    let (url, log) = bulk_receiver();
    firehose
        .create(CreateSpec {
            name: "search".into(),
            stream_type: "DirectPut".into(),
            destination: json!({"ClusterEndpoint": url, "IndexName": "logs",
                "IndexRotationPeriod": "OneDay",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                "RetryOptions": {"DurationInSeconds": 1},
                "S3BackupMode": "AllDocuments",
                "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::backup"}}),
            destination_kind: DestinationKind::OpenSearch,
            source: None,
            encryption: None,
            tags: Default::default(),
        })
        .unwrap();
    let records: Vec<Vec<u8>> = [
        r#"{"n":1}"#,
        r#"{"n":2,"flaky":true}"#,
        r#"{"n":3,"bad":true}"#,
        r#"{"n":4}"#,
    ]
    .iter()
    .map(|r| r.as_bytes().to_vec())
    .collect();
    firehose.put("search", records).await.unwrap();
    let root = fixture.buckets().join("backup");
    assert!(eventually(Duration::from_secs(20), || objects(&root).len() == 2).await);
    let log = log.lock().unwrap().clone();
    let today = chrono::Utc::now().format("logs-%Y-%m-%d").to_string();
    assert!(log.iter().all(|(index, _, _)| *index == today), "{log:?}");
    let sent: HashMap<String, usize> = log.iter().fold(HashMap::new(), |mut counts, (_, _, d)| {
        *counts.entry(d.clone()).or_insert(0) += 1;
        counts
    });
    assert_eq!(sent[r#"{"n":1}"#], 1, "a taken document is not sent again");
    assert_eq!(sent[r#"{"n":4}"#], 1);
    assert_eq!(
        sent[r#"{"n":2,"flaky":true}"#], 2,
        "a failed item is retried"
    );
    assert!(
        sent[r#"{"n":3,"bad":true}"#] >= 2,
        "retried until RetryOptions ran out"
    );
    // Ids are Firehose's own, the same on every try of a document.
    let flaky_ids: Vec<_> = log
        .iter()
        .filter(|(_, _, d)| d.contains("flaky"))
        .map(|(_, id, _)| id.clone())
        .collect();
    assert!(
        flaky_ids[0].is_some() && flaky_ids[0] == flaky_ids[1],
        "{flaky_ids:?}"
    );
    let found = objects(&root);
    let (failed_key, failed) = found
        .iter()
        .find(|(k, _)| k.starts_with("AmazonOpenSearchService-failed/"))
        .unwrap();
    let line: Value =
        serde_json::from_slice(failed.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(
        STANDARD.decode(line["rawData"].as_str().unwrap()).unwrap(),
        br#"{"n":3,"bad":true}"#,
        "{failed_key}"
    );
    assert!(
        line["errorMessage"]
            .as_str()
            .unwrap()
            .contains("mapper_parsing_exception"),
        "{line}"
    );
    // AllDocuments: every record in the backup bucket too.
    let (_, all) = found
        .iter()
        .find(|(k, _)| !k.starts_with("AmazonOpenSearchService-failed/"))
        .unwrap();
    assert_eq!(
        all.len(),
        r#"{"n":1}{"n":2,"flaky":true}{"n":3,"bad":true}{"n":4}"#.len()
    );
}
