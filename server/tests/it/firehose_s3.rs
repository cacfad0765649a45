//! Firehose's S3 destination against a real S3-compatible server
//! (SeaweedFS, signed requests): objects arrive under their keys, and a
//! 60-second outage of the server while records keep coming loses nothing
//! and duplicates nothing.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt};
use serde_json::{Value, json};

use crate::harness::{RunnelServer, agent};
use crate::seaweed::{ACCESS_KEY, SECRET_KEY, SeaweedFs};

fn call(url: &str, op: &str, body: &Value) -> Result<(u16, Value), String> {
    crate::harness::aws_json(url, &format!("Firehose_20150804.{op}"), body)
}

/// Every record line in the bucket's (gzip) objects, with how often it is
/// there, and the object keys.
fn delivered(s3: &object_store::aws::AmazonS3) -> (HashMap<String, usize>, Vec<String>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut seen = HashMap::new();
        let mut keys = Vec::new();
        let Ok(listed) = s3.list(None).try_collect::<Vec<_>>().await else {
            return (seen, keys);
        };
        for meta in listed {
            let Ok(result) = s3.get(&meta.location).await else {
                continue;
            };
            let Ok(bytes) = result.bytes().await else {
                continue;
            };
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
            for line in text.lines() {
                *seen.entry(line.to_string()).or_insert(0) += 1;
            }
            keys.push(meta.location.to_string());
        }
        (seen, keys)
    })
}

fn outage_seconds() -> u64 {
    std::env::var("RUNNEL_TEST_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

#[test]
fn delivery_to_seaweedfs_survives_an_outage_losing_and_repeating_nothing() {
    let mut weed = SeaweedFs::start(&["lake"]);
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!(
            "[firehose]\ns3_endpoint = \"{}\"\ns3_access_key_id = \"{ACCESS_KEY}\"\ns3_secret_access_key = \"{SECRET_KEY}\"\n",
            weed.url()
        ),
    )
    .unwrap();
    let server = RunnelServer::builder()
        .arg("--config")
        .arg(config.path().display().to_string())
        .start();
    let url = server.url();
    let (status, body) = call(
        &url,
        "CreateDeliveryStream",
        &json!({"DeliveryStreamName": "lake", "ExtendedS3DestinationConfiguration": {
            "RoleARN": "r", "BucketARN": "arn:aws:s3:::lake", "CompressionFormat": "GZIP",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}}}),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let s3 = AmazonS3Builder::new()
        .with_endpoint(weed.url())
        .with_region("us-east-1")
        .with_bucket_name("lake")
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .with_client_options(ClientOptions::new().with_allow_http(true))
        .build()
        .unwrap();

    // A steady producer for the whole test: 100 records every 20 ms.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut batch = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let data: Vec<String> = (0..100).map(|i| format!("b{batch}-i{i}")).collect();
                let records: Vec<Value> = data
                    .iter()
                    .map(|d| json!({"Data": STANDARD.encode(format!("{d}\n"))}))
                    .collect();
                let body = json!({"DeliveryStreamName": "lake", "Records": records});
                let (status, out) = call(&url, "PutRecordBatch", &body).unwrap();
                assert_eq!(
                    status, 200,
                    "a put during the outage must still be taken: {out}"
                );
                assert_eq!(out["FailedPutCount"], 0, "{out}");
                acked.lock().unwrap().extend(data);
                batch += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&s3).1.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, keys) = delivered(&s3);
    assert!(keys.len() >= 2, "no objects in SeaweedFS\n{}", server.log());
    let key = regex::Regex::new(r"^\d{4}/\d\d/\d\d/\d\d/lake-1-\d{4}(-\d\d){5}-[0-9a-f-]{36}\.gz$")
        .unwrap();
    assert!(keys.iter().all(|k| key.is_match(k)), "{keys:?}");

    weed.kill();
    std::thread::sleep(Duration::from_secs(outage_seconds()));
    let failures = agent()
        .get(&format!("{url}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        failures.lines().any(|l| l
            .starts_with("runnel_firehose_delivery_failures{delivery_stream=\"lake\"}")
            && !l.ends_with(" 0")),
        "the outage was not noticed"
    );
    weed.run();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    let acked = acked.lock().unwrap().clone();

    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut seen, _) = delivered(&s3);
    while acked.iter().any(|d| !seen.contains_key(d)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        seen = delivered(&s3).0;
    }
    let missing = acked.iter().filter(|d| !seen.contains_key(*d)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged records never reached SeaweedFS\n{}\n{}",
        acked.len(),
        server.log(),
        weed.log()
    );
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "records delivered twice: {twice:?}");
}
