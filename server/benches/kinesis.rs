//! Kinesis Data Streams load generator: PutRecords throughput (records/s and
//! MB/s at 100-byte and 10 KB records, 1 and 16 shards) and put-to-get
//! latency (p50/p99), against a release `runnel server --no-shard-limits`
//! and, side by side with the same generator, against the `kinesis-local`
//! npm package when it is installed (see benches/README.md).
//!
//! cargo bench -p runnel --bench kinesis
//! Environment: BENCH_SECONDS (per throughput case, default 5),
//! BENCH_CLIENTS (concurrent connections, default 16),
//! KINESIS_LOCAL_DIR (the installed package's dir; default
//! ~/.cache/runnel-bench/kinesis-local/node_modules/kinesis-local).

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Target, agent, free_port};
use serde_json::{Value, json};

type Starter = fn() -> Option<Target>;

fn call(agent: &ureq::Agent, url: &str, op: &str, body: &str) -> Result<(u16, Value), String> {
    common::call(
        agent,
        url,
        &format!("Kinesis_20131202.{op}"),
        "kinesis",
        body,
    )
}

/// PutRecords returning only FailedRecordCount.
fn put_records(agent: &ureq::Agent, url: &str, body: &str) -> Result<(u16, Value), String> {
    let (status, text) = common::post(agent, url, "Kinesis_20131202.PutRecords", "kinesis", body)?;
    Ok((
        status,
        common::int_field(&text, "FailedRecordCount").map_or(Value::Null, Value::from),
    ))
}

fn answers(url: &str) -> bool {
    matches!(call(&agent(), url, "ListStreams", "{}"), Ok((200, _)))
}

fn start_runnel() -> Option<Target> {
    common::start_runnel(&["--no-shard-limits"], answers)
}

fn start_kinesis_local() -> Option<Target> {
    let dir = std::env::var_os("KINESIS_LOCAL_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| {
                PathBuf::from(h)
                    .join(".cache/runnel-bench/kinesis-local/node_modules/kinesis-local")
            })
        })?;
    if !dir.join("main.js").exists() {
        eprintln!(
            "kinesis-local not installed at {}; skipping it",
            dir.display()
        );
        return None;
    }
    let port = free_port();
    let child = Command::new("node")
        .arg("main.js")
        .current_dir(&dir)
        .env("KINESIS_MOCK_PLAIN_PORT", port.to_string())
        .env("KINESIS_MOCK_TLS_PORT", free_port().to_string())
        .env("CREATE_STREAM_DURATION", "0ms")
        .env("SHARD_LIMIT", "1000")
        .env("LOG_LEVEL", "ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let target = Target {
        name: "kinesis-local",
        url: format!("http://127.0.0.1:{port}"),
        child,
        _dir: None,
    };
    common::wait_until(|| answers(&target.url)).then_some(target)
}

fn create_stream(url: &str, name: &str, shards: u32) {
    let agent = agent();
    let body = json!({"StreamName": name, "ShardCount": shards}).to_string();
    let created = call(&agent, url, "CreateStream", &body);
    assert!(
        matches!(created, Ok((200, _))),
        "CreateStream {name}: {created:?}"
    );
    let body = json!({"StreamName": name}).to_string();
    for _ in 0..600 {
        if let Ok((200, out)) = call(&agent, url, "DescribeStreamSummary", &body)
            && out["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("stream {name} never became ACTIVE");
}

/// A PutRecords body of 500 records with distinct partition keys, so they
/// spread over every shard.
fn put_records_body(stream: &str, client: usize, size: usize) -> String {
    let data = STANDARD.encode(vec![b'x'; size]);
    let records: Vec<Value> = (0..500)
        .map(|i| json!({"Data": data, "PartitionKey": format!("c{client}-k{i}")}))
        .collect();
    json!({"StreamName": stream, "Records": records}).to_string()
}

struct Throughput {
    records_per_sec: f64,
    mb_per_sec: f64,
    failed: u64,
}

fn throughput(url: &str, stream: &str, size: usize, clients: usize, seconds: f64) -> Throughput {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let (url, stream) = (url.to_string(), stream.to_string());
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let body = put_records_body(&stream, c, size);
                while !stop.load(Ordering::Relaxed) {
                    match put_records(&agent, &url, &body) {
                        Ok((200, out)) => {
                            let bad = out.as_u64().unwrap_or(0);
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
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed) as f64;
    Throughput {
        records_per_sec: ok / elapsed,
        mb_per_sec: ok * size as f64 / elapsed / 1e6,
        failed: failed.load(Ordering::Relaxed),
    }
}

/// Put-to-get latency: one producer puts a record every 5 ms carrying its
/// send time; one consumer polls GetRecords back to back and notes when
/// each record arrives.
fn latency(url: &str, stream: &str, samples: usize) -> (f64, f64, usize) {
    let origin = Instant::now();
    let agent = agent();
    let body = json!({"StreamName": stream, "ShardId": "shardId-000000000000", "ShardIteratorType": "LATEST"}).to_string();
    let Ok((200, out)) = call(&agent, url, "GetShardIterator", &body) else {
        return (f64::NAN, f64::NAN, 0);
    };
    let mut iterator = out["ShardIterator"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let (url, stream, done) = (url.to_string(), stream.to_string(), done.clone());
        std::thread::spawn(move || {
            let producer_agent = self::agent();
            for _ in 0..samples {
                let sent = origin.elapsed().as_nanos() as u64;
                let body = json!({"StreamName": stream, "PartitionKey": "lat", "Data": STANDARD.encode(sent.to_be_bytes())}).to_string();
                let _ = call(&producer_agent, &url, "PutRecord", &body);
                std::thread::sleep(Duration::from_millis(5));
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let mut latencies = Vec::with_capacity(samples);
    let deadline = Instant::now() + Duration::from_secs(120);
    while latencies.len() < samples && Instant::now() < deadline {
        let body = json!({"ShardIterator": iterator}).to_string();
        let Ok((200, out)) = call(&agent, url, "GetRecords", &body) else {
            continue;
        };
        let now = origin.elapsed().as_nanos() as u64;
        for record in out["Records"].as_array().into_iter().flatten() {
            let bytes = STANDARD
                .decode(record["Data"].as_str().unwrap_or_default())
                .unwrap_or_default();
            if let Ok(sent) = <[u8; 8]>::try_from(bytes.as_slice()) {
                latencies.push((now - u64::from_be_bytes(sent)) as f64 / 1e6);
            }
        }
        match out["NextShardIterator"].as_str() {
            Some(next) => iterator = next.to_string(),
            None => break,
        }
        if done.load(Ordering::Relaxed)
            && out["Records"].as_array().is_none_or(|r| r.is_empty())
            && latencies.len() >= samples
        {
            break;
        }
    }
    let _ = producer.join();
    latencies.sort_by(|a, b| a.total_cmp(b));
    (
        common::quantile(&latencies, 0.50),
        common::quantile(&latencies, 0.99),
        latencies.len(),
    )
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let clients: usize = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let only: Option<String> = std::env::var("BENCH_TARGET").ok();
    println!(
        "Kinesis PutRecords (500 records per request, {clients} concurrent clients, {seconds} s per case) and put-to-get latency"
    );
    println!(
        "{:<14} {:>7} {:>8} {:>14} {:>10} {:>9}",
        "target", "shards", "record", "records/s", "MB/s", "failed"
    );
    let mut latencies = Vec::new();
    let starters: [(&str, Starter); 2] = [
        ("runnel", start_runnel),
        ("kinesis-local", start_kinesis_local),
    ];
    for (name, start) in starters {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        // A fresh server (and data dir) per case, so one case's background
        // flushes and compactions do not land in the next one's figures.
        for shards in [1u32, 16] {
            for size in [100usize, 10_240] {
                let Some(target) = start() else {
                    eprintln!("{name}: did not start; skipped");
                    continue;
                };
                let stream = format!("bench-{shards}-{size}");
                create_stream(&target.url, &stream, shards);
                // 500 records of 10 KB are 5,120,000 bytes: inside the 5 MiB
                // request limit.
                let result = throughput(&target.url, &stream, size, clients, seconds);
                println!(
                    "{:<14} {:>7} {:>8} {:>14.0} {:>10.1} {:>9}",
                    target.name,
                    shards,
                    if size == 100 { "100 B" } else { "10 KB" },
                    result.records_per_sec,
                    result.mb_per_sec,
                    result.failed
                );
            }
        }
        if let Some(target) = start() {
            create_stream(&target.url, "latency", 1);
            latencies.push((target.name, latency(&target.url, "latency", 1000)));
        }
    }
    println!();
    println!(
        "{:<14} {:>10} {:>10} {:>8}",
        "target", "p50 ms", "p99 ms", "samples"
    );
    for (name, (p50, p99, n)) in latencies {
        println!("{name:<14} {p50:>10.2} {p99:>10.2} {n:>8}");
    }
}
