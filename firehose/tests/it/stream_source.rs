//! `KinesisStreamAsSource`: a delivery stream reads a Runnel stream from
//! its trim horizon, through a reshard, and after a restart neither skips
//! nor repeats a record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use runnel_firehose::{CreateSpec, Firehose, FirehoseConfig};
use runnel_store::Store;
use runnel_streams::{CapacityMode, PutEntry, Streams, StreamsConfig};
use serde_json::json;

use crate::{eventually, objects};

fn families() -> Vec<&'static str> {
    runnel_streams::COLUMN_FAMILIES
        .iter()
        .chain(runnel_firehose::COLUMN_FAMILIES)
        .copied()
        .collect()
}

fn open(dir: &std::path::Path) -> (Store, Arc<Streams>, Firehose) {
    let mut store = None;
    for _ in 0..250 {
        match Store::open(&dir.join("data"), &families()) {
            Ok(opened) => {
                store = Some(opened);
                break;
            }
            // The last run's delivery tasks still let go of the store.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let store = store.expect("the data dir was released");
    let streams = Arc::new(
        Streams::open(
            store.db().clone(),
            StreamsConfig {
                limits: None,
                ..StreamsConfig::default()
            },
        )
        .unwrap(),
    );
    let mut config = FirehoseConfig::new(dir.join("buckets"));
    config.streams = Some(streams.clone());
    let firehose = Firehose::open(store.db().clone(), config).unwrap();
    (store, streams, firehose)
}

async fn put(streams: &Streams, from: usize, to: usize) {
    let entries: Vec<PutEntry> = (from..to)
        .map(|i| PutEntry {
            partition_key: format!("k{i}"),
            explicit_hash_key: None,
            data: format!("r{i}\n").into_bytes(),
        })
        .collect();
    streams.put("source", entries).await.unwrap();
}

/// How often each record is in the bucket.
fn counts(root: &std::path::Path) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for (_, body) in objects(root) {
        for line in String::from_utf8_lossy(&body).lines() {
            *seen.entry(line.to_string()).or_insert(0) += 1;
        }
    }
    seen
}

fn all_once(seen: &HashMap<String, usize>, n: usize) -> bool {
    seen.len() == n && (0..n).all(|i| seen.get(&format!("r{i}")) == Some(&1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_delivered_through_a_reshard_and_a_restart_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("buckets").join("from-stream");
    {
        let (_store, streams, firehose) = open(dir.path());
        streams
            .create_stream("source", 2, CapacityMode::Provisioned)
            .await
            .unwrap();
        put(&streams, 0, 1000).await;
        let error = firehose
            .create(CreateSpec {
                name: "missing".into(),
                stream_type: "KinesisStreamAsSource".into(),
                destination: json!({"BucketARN": "arn:aws:s3:::x", "RoleARN": "r"}),
                destination_kind: runnel_firehose::DestinationKind::ExtendedS3,
                source: Some(json!({"KinesisStreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/nope", "RoleARN": "r"})),
                encryption: None,
                tags: Default::default(),
            })
            .unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");
        firehose
            .create(CreateSpec {
                name: "from-stream".into(),
                stream_type: "KinesisStreamAsSource".into(),
                destination: json!({"BucketARN": "arn:aws:s3:::from-stream", "RoleARN": "r",
                                    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}),
                destination_kind: runnel_firehose::DestinationKind::ExtendedS3,
                source: Some(
                    json!({"KinesisStreamARN": streams.stream_arn("source"), "RoleARN": "r"}),
                ),
                encryption: None,
                tags: Default::default(),
            })
            .unwrap();
        let refused = firehose
            .put("from-stream", vec![b"x".to_vec()])
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("KinesisStreamAsSource"),
            "{refused}"
        );
        assert!(eventually(Duration::from_secs(20), || all_once(&counts(&root), 1000)).await);

        // Records written after a split come from the children, after
        // everything of their parent.
        streams
            .split_shard("source", 0, 1u128 << 126)
            .await
            .unwrap();
        put(&streams, 1000, 2000).await;
        assert!(eventually(Duration::from_secs(20), || all_once(&counts(&root), 2000)).await);
    }
    // A restart resumes where reading stopped.
    let (_store, streams, _firehose) = open(dir.path());
    put(&streams, 2000, 2500).await;
    assert!(
        eventually(Duration::from_secs(20), || all_once(&counts(&root), 2500)).await,
        "{:?}",
        counts(&root)
            .iter()
            .filter(|(_, n)| **n != 1)
            .take(5)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_source_is_partitioned_dynamically_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("buckets").join("by-kind");
    let (_store, streams, firehose) = open(dir.path());
    streams
        .create_stream("source", 2, CapacityMode::Provisioned)
        .await
        .unwrap();
    let entries: Vec<PutEntry> = (0..300)
        .map(|i| PutEntry {
            partition_key: format!("k{i}"),
            explicit_hash_key: None,
            data: json!({"kind": format!("k{}", i % 3), "i": i})
                .to_string()
                .into_bytes(),
        })
        .collect();
    streams.put("source", entries).await.unwrap();
    firehose
        .create(CreateSpec {
            name: "by-kind".into(),
            stream_type: "KinesisStreamAsSource".into(),
            destination: json!({"BucketARN": "arn:aws:s3:::by-kind", "RoleARN": "r",
                "Prefix": "kind=!{partitionKeyFromQuery:kind}/",
                "ErrorOutputPrefix": "errors/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                "DynamicPartitioningConfiguration": {"Enabled": true},
                "ProcessingConfiguration": {"Enabled": true, "Processors": [
                    {"Type": "MetadataExtraction", "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{kind: .kind}"}]},
                    {"Type": "AppendDelimiterToRecord"}]}}),
            destination_kind: runnel_firehose::DestinationKind::ExtendedS3,
            source: Some(json!({"KinesisStreamARN": streams.stream_arn("source"), "RoleARN": "r"})),
            encryption: None,
            tags: Default::default(),
        })
        .unwrap();
    let per_kind = || {
        let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
        for (key, body) in objects(&root) {
            let kind = key.split('/').next().unwrap_or("").to_string();
            for line in String::from_utf8_lossy(&body).lines() {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                seen.entry(kind.clone())
                    .or_default()
                    .push(record["i"].as_u64().unwrap());
            }
        }
        seen
    };
    assert!(
        eventually(Duration::from_secs(20), || per_kind()
            .values()
            .map(Vec::len)
            .sum::<usize>()
            >= 300)
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = per_kind();
    assert_eq!(seen.len(), 3, "{:?}", seen.keys());
    for (kind, mut numbers) in seen {
        let k: u64 = kind.trim_start_matches("kind=k").parse().unwrap();
        numbers.sort_unstable();
        assert_eq!(
            numbers,
            (0..300).filter(|i| i % 3 == k).collect::<Vec<u64>>()
        );
    }
}
