//! Data format conversion: JSON records become Parquet objects that
//! another reader (DuckDB) reads back as the rows; records that do not fit
//! the schema go to format-conversion-failed.

use std::time::Duration;

use runnel_firehose::{Firehose, FirehoseConfig};
use serde_json::{Value, json};

use crate::{Fixture, create, eventually, objects};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_are_written_as_parquet_that_duckdb_reads() {
    let fixture = Fixture::new();
    let mut config = FirehoseConfig::new(fixture.buckets());
    config.lookups.schemas = [(
        "shop.orders".to_string(),
        "id BIGINT, item STRING, price DOUBLE, ts TIMESTAMP(3)".to_string(),
    )]
    .into();
    let firehose = Firehose::open(fixture.store.as_ref().unwrap().db().clone(), config).unwrap();
    create(
        &firehose,
        "orders",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
               "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0},
               "DataFormatConversionConfiguration": {"Enabled": true,
                   "SchemaConfiguration": {"DatabaseName": "shop", "TableName": "orders", "RoleARN": "r"},
                   "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                   "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}}}}),
    );
    let records: Vec<Vec<u8>> = (1..=100)
        .map(|i| json!({"id": i, "item": format!("item-{i}"), "price": i as f64 * 1.5, "ts": "2026-12-05T07:00:00Z"}).to_string().into_bytes())
        .chain([b"{\"id\": \"eleven\"}".to_vec()])
        .collect();
    firehose.put("orders", records).await.unwrap();
    let root = fixture.buckets().join("lake");
    assert!(eventually(Duration::from_secs(10), || objects(&root).len() == 2).await);
    let found = objects(&root);
    let (key, _) = found.iter().find(|(k, _)| k.ends_with(".parquet")).unwrap();
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, duckdb; print(duckdb.sql(\"select count(*), sum(id), sum(price), min(item), max(ts)::varchar from read_parquet('\" + sys.argv[1] + \"')\").fetchall())",
        ])
        .arg(root.join(key))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "[(100, 5050, 7575.0, 'item-1', '2026-12-05 07:00:00')]"
    );
    let (failed_key, failed) = found
        .iter()
        .find(|(k, _)| !k.ends_with(".parquet"))
        .unwrap();
    assert!(
        failed_key.starts_with("format-conversion-failed/"),
        "{failed_key}"
    );
    let line: Value =
        serde_json::from_slice(failed.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["lastErrorCode"], "DataFormatConversion.MalformedData");
    assert_eq!(line["dataCatalogTable"]["tableName"], "orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversion_without_a_schema_or_with_compression_is_refused() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    let conversion = json!({"Enabled": true,
        "SchemaConfiguration": {"DatabaseName": "db", "TableName": "t", "RoleARN": "r"},
        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}});
    for (extra, words) in [
        (json!({}), "[firehose.schemas]"),
        (json!({"CompressionFormat": "GZIP"}), "UNCOMPRESSED"),
    ] {
        let mut destination = json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
                                     "DataFormatConversionConfiguration": conversion});
        for (k, v) in extra.as_object().unwrap() {
            destination[k] = v.clone();
        }
        let error = firehose
            .create(runnel_firehose::CreateSpec {
                name: "refused".into(),
                stream_type: "DirectPut".into(),
                destination,
                destination_kind: runnel_firehose::DestinationKind::ExtendedS3,
                source: None,
                encryption: None,
                tags: Default::default(),
            })
            .unwrap_err()
            .to_string();
        assert!(error.contains(words), "{error}");
    }
}
