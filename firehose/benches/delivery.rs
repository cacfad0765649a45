//! Delivery throughput: MB/s of buffered input delivered to the local
//! bucket as GZIP objects (5 MiB objects, the default hint), beside flate2
//! at the same level compressing the same bytes on one core, in the same
//! run: the ratio is what Firehose costs on top of compression (reading
//! the buffer, building objects, writing files, dropping what was
//! delivered).
//!
//! cargo bench -p runnel-firehose --bench delivery
//! Environment: BENCH_MB (input size, default 256).

use std::io::Write;
use std::time::{Duration, Instant};

use runnel_firehose::{CreateSpec, DestinationKind, Firehose, FirehoseConfig};
use serde_json::json;

/// A log line of about 200 bytes that compresses as such lines do.
fn record(i: u64) -> Vec<u8> {
    format!(
        "{{\"ts\":\"2026-12-05T07:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",\"user\":{},\"path\":\"/api/v1/items/{}\",\"status\":{},\"bytes\":{},\"agent\":\"bench/1.0\"}}\n",
        (i / 60_000) % 60,
        (i / 1000) % 60,
        i % 1000,
        ["INFO", "WARN", "DEBUG"][(i % 3) as usize],
        i.wrapping_mul(2_654_435_761) % 100_000,
        i % 977,
        [200, 200, 200, 404, 500][(i % 5) as usize],
        (i * 37) % 65_536,
    )
    .into_bytes()
}

fn main() {
    let megabytes: u64 = std::env::var("BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let total = megabytes * 1024 * 1024;
    let mut records = Vec::new();
    let mut bytes = 0u64;
    let mut i = 0;
    while bytes < total {
        let r = record(i);
        bytes += r.len() as u64;
        records.push(r);
        i += 1;
    }

    // flate2 at Firehose's level over the same bytes, one core.
    let all: Vec<u8> = records.concat();
    let started = Instant::now();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&all).expect("compress");
    let compressed = encoder.finish().expect("compress").len();
    let gzip_seconds = started.elapsed().as_secs_f64();
    drop(all);

    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        runnel_store::Store::open(&dir.path().join("data"), runnel_firehose::COLUMN_FAMILIES)
            .expect("store");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let firehose = Firehose::open(
        store.db().clone(),
        FirehoseConfig::new(dir.path().join("buckets")),
    )
    .expect("firehose");
    firehose
        .create(CreateSpec {
            name: "bench".into(),
            stream_type: "DirectPut".into(),
            destination: json!({"BucketARN": "arn:aws:s3:::bench", "RoleARN": "r", "CompressionFormat": "GZIP",
                                "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 900}}),
            destination_kind: DestinationKind::ExtendedS3,
            source: None,
            encryption: None,
            tags: Default::default(),
        })
        .expect("create");
    // Fill the buffer first (5 MiB objects are written as it fills: wait
    // for those, then time the delivery of what the interval held back).
    let loaded = Instant::now();
    for batch in records.chunks(500) {
        firehose.put_blocking("bench", batch.to_vec()).expect("put");
    }
    let load_seconds = loaded.elapsed().as_secs_f64();
    while firehose.figures()[0].1.buffered_bytes >= 5 * 1024 * 1024 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let during_load = firehose.figures()[0].1.delivered_bytes;
    drop(records);

    // Delivery alone: a fresh stream whose whole buffer is released at once.
    firehose
        .create(CreateSpec {
            name: "held".into(),
            stream_type: "DirectPut".into(),
            destination: json!({"BucketARN": "arn:aws:s3:::held", "RoleARN": "r", "CompressionFormat": "GZIP",
                                "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 900}}),
            destination_kind: DestinationKind::ExtendedS3,
            source: None,
            encryption: None,
            tags: Default::default(),
        })
        .expect("create");
    let mut held = 0u64;
    let mut i = 0;
    while held < total.min(127 * 1024 * 1024) {
        let batch: Vec<Vec<u8>> = (0..500).map(|k| record(i + k)).collect();
        i += 500;
        held += batch.iter().map(|r| r.len() as u64).sum::<u64>();
        firehose.put_blocking("held", batch).expect("put");
    }
    let released = Instant::now();
    firehose
        .update_destination(
            "held",
            "1",
            runnel_firehose::DESTINATION_ID,
            &json!({"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 0}}),
        )
        .expect("release");
    let figures = |name: &str| {
        firehose
            .figures()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f)
            .unwrap_or_default()
    };
    while figures("held").buffered_bytes > 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    let deliver_seconds = released.elapsed().as_secs_f64();

    let mb = |b: u64| b as f64 / 1e6;
    let gzip_rate = mb(bytes) / gzip_seconds;
    let delivery_rate = mb(held) / deliver_seconds;
    println!(
        "Firehose delivery to the local bucket, GZIP (flate2 level 1), 5 MiB objects, ~200-byte JSON lines"
    );
    println!(
        "flate2 level 1, one core: {:.1} MB in {:.2} s = {gzip_rate:.1} MB/s (ratio {:.2})",
        mb(bytes),
        gzip_seconds,
        bytes as f64 / compressed as f64
    );
    println!(
        "delivery of a held buffer:  {:.1} MB in {:.2} s = {delivery_rate:.1} MB/s, {} objects",
        mb(held),
        deliver_seconds,
        figures("held").delivered_objects
    );
    println!("delivery / flate2: {:.2}", delivery_rate / gzip_rate);
    println!(
        "(loading {:.1} MB by put_blocking took {:.2} s = {:.1} MB/s, with {:.1} MB delivered meanwhile)",
        mb(bytes),
        load_seconds,
        mb(bytes) / load_seconds,
        mb(during_load)
    );
}
