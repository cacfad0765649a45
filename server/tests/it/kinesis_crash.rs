//! kill -9 during concurrent PutRecords: every acknowledged record is there
//! after a restart, in order, with the sequence number it was given.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::harness::RunnelServer;

fn call(url: &str, op: &str, body: &Value) -> Result<(u16, Value), String> {
    crate::harness::aws_json(url, &format!("Kinesis_20131202.{op}"), body)
}

/// (shard id, sequence number, data) of one acknowledged record.
type Acked = (String, u128, String);

#[test]
fn acknowledged_records_survive_kill_9() {
    let mut server = RunnelServer::builder().arg("--no-shard-limits").start();
    let url = server.url();
    let (status, _) = call(
        &url,
        "CreateStream",
        &json!({"StreamName": "crash", "ShardCount": 4}),
    )
    .unwrap();
    assert_eq!(status, 200);

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                for batch in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let data: Vec<String> = (0..20).map(|i| format!("w{w}-b{batch}-i{i}")).collect();
                    let records: Vec<Value> = data
                        .iter()
                        .enumerate()
                        .map(|(i, d)| json!({"Data": STANDARD.encode(d), "PartitionKey": format!("w{w}-k{}", i % 4)}))
                        .collect();
                    let body = json!({"StreamName": "crash", "Records": records});
                    let Ok((200, out)) = call(&url, "PutRecords", &body) else {
                        return; // the server is gone
                    };
                    let mut acked = acked.lock().unwrap();
                    for (d, r) in data.into_iter().zip(out["Records"].as_array().unwrap()) {
                        acked.push((
                            r["ShardId"].as_str().unwrap().to_string(),
                            r["SequenceNumber"].as_str().unwrap().parse().unwrap(),
                            d,
                        ));
                    }
                }
            })
        })
        .collect();

    // Kill while writes are in flight, once a good number are acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 20_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 20_000,
        "only {} records acknowledged",
        acked.len()
    );

    let server = RunnelServer::builder()
        .data_dir(&server.data_dir)
        .arg("--no-shard-limits")
        .start();
    let url = server.url();
    let mut stored: BTreeMap<String, Vec<(u128, String)>> = BTreeMap::new();
    for shard in 0..4 {
        let shard_id = format!("shardId-{shard:012}");
        let (_, it) = call(
            &url,
            "GetShardIterator",
            &json!({
                "StreamName": "crash", "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"
            }),
        )
        .unwrap();
        let mut iterator = it["ShardIterator"].as_str().unwrap().to_string();
        for _ in 0..1000 {
            let (status, out) =
                call(&url, "GetRecords", &json!({"ShardIterator": iterator})).unwrap();
            assert_eq!(status, 200, "{out}");
            let records = out["Records"].as_array().unwrap();
            for r in records {
                let data = String::from_utf8(STANDARD.decode(r["Data"].as_str().unwrap()).unwrap())
                    .unwrap();
                stored
                    .entry(shard_id.clone())
                    .or_default()
                    .push((r["SequenceNumber"].as_str().unwrap().parse().unwrap(), data));
            }
            iterator = out["NextShardIterator"].as_str().unwrap().to_string();
            if records.is_empty() {
                break;
            }
        }
    }
    for records in stored.values() {
        assert!(
            records.windows(2).all(|w| w[0].0 < w[1].0),
            "sequence numbers increase"
        );
    }
    let by_data: BTreeMap<&str, (&str, u128)> = stored
        .iter()
        .flat_map(|(shard, records)| {
            records
                .iter()
                .map(move |(seq, d)| (d.as_str(), (shard.as_str(), *seq)))
        })
        .collect();
    for (shard, seq, data) in &acked {
        assert_eq!(
            by_data.get(data.as_str()),
            Some(&(shard.as_str(), *seq)),
            "acknowledged record {data} lost or moved"
        );
    }
    // Within a partition key, records keep the order they were put in.
    let mut last_by_key: BTreeMap<String, u128> = BTreeMap::new();
    for (_, seq, data) in &acked {
        let mut parts = data.split('-');
        let (writer, item) = (parts.next().unwrap(), parts.nth(1).unwrap());
        let index: usize = item.trim_start_matches('i').parse().unwrap();
        let key = format!("{writer}-k{}", index % 4);
        if let Some(previous) = last_by_key.insert(key.clone(), *seq) {
            assert!(previous < *seq, "key {key} reordered at {data}");
        }
    }
}
