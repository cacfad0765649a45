//! What an object is: its default key, its prefix, its compression.

use std::io::Read;
use std::time::Duration;

use serde_json::json;

use crate::{Fixture, create, eventually, objects, records};

fn key_pattern(prefix: &str, stream: &str, extension: &str) -> regex::Regex {
    regex::Regex::new(&format!(
        r"^{prefix}{stream}-1-\d{{4}}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f]{{8}}-[0-9a-f]{{4}}-4[0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}{extension}$"
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_objects_take_the_default_hourly_key() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    create(
        &firehose,
        "gz",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r", "CompressionFormat": "GZIP",
               "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}),
    );
    firehose.put("gz", records(1000, 200)).await.unwrap();
    let root = fixture.buckets().join("lake");
    assert!(eventually(Duration::from_secs(10), || !objects(&root).is_empty()).await);
    let found = objects(&root);
    assert_eq!(found.len(), 1);
    let (key, body) = &found[0];
    assert!(
        key_pattern(r"\d{4}/\d\d/\d\d/\d\d/", "gz", r"\.gz").is_match(key),
        "{key}"
    );
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut text)
        .unwrap();
    assert_eq!(text, records(1000, 200).concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_are_evaluated_and_extensions_follow_the_format() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    for (name, format, extension) in [
        ("plain", "UNCOMPRESSED", ""),
        ("zipped", "ZIP", r"\.zip"),
        ("snappy", "Snappy", r"\.snappy"),
        ("hadoop", "HADOOP_SNAPPY", r"\.hsnappy"),
    ] {
        create(
            &firehose,
            name,
            json!({"BucketARN": format!("arn:aws:s3:::{name}"), "RoleARN": "r",
                   "CompressionFormat": format,
                   "Prefix": "events/year=!{timestamp:yyyy}/id=!{firehose:random-string}/",
                   "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
                   "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}),
        );
        firehose.put(name, records(50, 40)).await.unwrap();
        let root = fixture.buckets().join(name);
        assert!(eventually(Duration::from_secs(10), || !objects(&root).is_empty()).await);
        let (key, body) = objects(&root).remove(0);
        let prefix = r"events/year=\d{4}/id=[a-zA-Z0-9]{11}/";
        assert!(key_pattern(prefix, name, extension).is_match(&key), "{key}");
        let expected = records(50, 40).concat();
        match format {
            "UNCOMPRESSED" => assert_eq!(body, expected),
            "Snappy" => {
                let mut text = Vec::new();
                snap::read::FrameDecoder::new(&body[..])
                    .read_to_end(&mut text)
                    .unwrap();
                assert_eq!(text, expected);
            }
            "ZIP" => {
                // Read by another implementation: Python's zipfile.
                let path = root.join(&key);
                let output = std::process::Command::new("python3")
                    .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; sys.stdout.buffer.write(z.read(z.namelist()[0]))"])
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                assert_eq!(output.stdout, expected);
            }
            _ => assert!(body.len() > 8),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_time_zone_moves_the_hour_of_the_key() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    create(
        &firehose,
        "tz",
        json!({"BucketARN": "arn:aws:s3:::tz", "RoleARN": "r", "CustomTimeZone": "Asia/Kathmandu",
               "Prefix": "!{timestamp:HH-mm}/", "ErrorOutputPrefix": "e/",
               "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}),
    );
    // Kathmandu is 5:45 ahead of UTC all year.
    let shifted = |t: chrono::DateTime<chrono::Utc>| {
        (t + chrono::Duration::minutes(5 * 60 + 45))
            .format("%H-%M/")
            .to_string()
    };
    let before = shifted(chrono::Utc::now());
    firehose.put("tz", records(1, 10)).await.unwrap();
    let after = shifted(chrono::Utc::now());
    let root = fixture.buckets().join("tz");
    assert!(eventually(Duration::from_secs(10), || !objects(&root).is_empty()).await);
    let (key, _) = objects(&root).remove(0);
    assert!(
        key.starts_with(&before) || key.starts_with(&after),
        "{key}: {before} or {after}"
    );
}
