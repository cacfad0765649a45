//! kill -9 during concurrent PutRecordBatch: after a restart every
//! acknowledged record is delivered, and none twice: an object written
//! again after the crash takes the key of the first write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::firehose_e2e::walk;
use crate::harness::RunnelServer;

fn call(url: &str, op: &str, body: &Value) -> Result<(u16, Value), String> {
    crate::harness::aws_json(url, &format!("Firehose_20150804.{op}"), body)
}

/// How often each record appears in the bucket's objects.
fn delivered(bucket: &std::path::Path) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for path in walk(bucket) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for line in String::from_utf8_lossy(&bytes).lines() {
            *seen.entry(line.to_string()).or_insert(0) += 1;
        }
    }
    seen
}

#[test]
fn acknowledged_records_are_delivered_once_after_kill_9() {
    let mut server = RunnelServer::start();
    let url = server.url();
    let (status, body) = call(
        &url,
        "CreateDeliveryStream",
        &json!({"DeliveryStreamName": "crash", "ExtendedS3DestinationConfiguration": {
            "RoleARN": "r", "BucketARN": "arn:aws:s3:::crash",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}}}),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                for batch in 0..100_000 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let data: Vec<String> = (0..100)
                        .map(|i| format!("w{w}-b{batch}-i{i}-{}", "x".repeat(60)))
                        .collect();
                    let records: Vec<Value> = data
                        .iter()
                        .map(|d| json!({"Data": STANDARD.encode(format!("{d}\n"))}))
                        .collect();
                    let body = json!({"DeliveryStreamName": "crash", "Records": records});
                    let Ok((200, out)) = call(&url, "PutRecordBatch", &body) else {
                        return; // the server is gone
                    };
                    assert_eq!(out["FailedPutCount"], 0, "{out}");
                    acked.lock().unwrap().extend(data);
                }
            })
        })
        .collect();

    // Kill while puts and deliveries are in flight: after several objects.
    let bucket = server.data_dir.join("buckets").join("crash");
    let deadline = Instant::now() + Duration::from_secs(60);
    while (acked.lock().unwrap().len() < 60_000 || walk(&bucket).len() < 3)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 60_000,
        "only {} records acknowledged",
        acked.len()
    );

    let server = RunnelServer::builder().data_dir(&server.data_dir).start();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = delivered(&bucket);
    while acked.iter().any(|d| !seen.contains_key(d)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        seen = delivered(&bucket);
    }
    let missing = acked.iter().filter(|d| !seen.contains_key(*d)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged records were not delivered\n{}",
        acked.len(),
        server.log()
    );
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "records delivered twice: {twice:?}");
}
