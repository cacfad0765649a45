//! The Redshift destination against a real PostgreSQL: objects are staged
//! in the bucket, then COPYed into the table (json 'auto' by column name,
//! or CSV); a COPY that keeps failing names its staged object under
//! redshift-failed.

use std::time::Duration;

use runnel_firehose::{CreateSpec, DestinationKind};
use serde_json::{Value, json};

use crate::postgres::Postgres;
use crate::{Fixture, eventually, objects};

fn create(firehose: &runnel_firehose::Firehose, name: &str, config: Value) {
    firehose
        .create(CreateSpec {
            name: name.into(),
            stream_type: "DirectPut".into(),
            destination: config,
            destination_kind: DestinationKind::Redshift,
            source: None,
            encryption: None,
            tags: Default::default(),
        })
        .unwrap();
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .map(|row| row.get::<_, i64>(0))
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_staged_then_copied_into_postgres() {
    let postgres = Postgres::start();
    let client = postgres.client().await;
    client
        .batch_execute("CREATE TABLE orders (id BIGINT, name TEXT, price DOUBLE PRECISION); CREATE TABLE lines (a INT, b TEXT)")
        .await
        .unwrap();
    let fixture = Fixture::new();
    let firehose = fixture.open();
    let staging = json!({"RoleARN": "r", "BucketARN": "arn:aws:s3:::staging",
                         "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}});
    create(
        &firehose,
        "orders",
        json!({"RoleARN": "r", "ClusterJDBCURL": postgres.jdbc(), "Username": "runnel", "Password": "unused1",
               "CopyCommand": {"DataTableName": "orders", "DataTableColumns": "id,name,price", "CopyOptions": "json 'auto'"},
               "S3Configuration": staging}),
    );
    let records: Vec<Vec<u8>> = (1..=50)
        .map(|i| {
            json!({"ID": i, "name": format!("o\"{i},"), "price": i as f64 / 2.0, "extra": true})
                .to_string()
                .into_bytes()
        })
        .collect();
    firehose.put("orders", records).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || firehose.figures().iter().any(
            |(n, f)| n == "orders" && f.buffered_bytes == 0 && f.delivered_records == 50
        ))
        .await
    );
    assert_eq!(count(&client, "SELECT count(*) FROM orders").await, 50);
    assert_eq!(
        count(&client, "SELECT sum(id)::bigint FROM orders").await,
        1275
    );
    let name: String = client
        .query_one("SELECT name FROM orders WHERE id = 7", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "o\"7,");
    assert!(
        !objects(&fixture.buckets().join("staging")).is_empty(),
        "staged first"
    );

    create(
        &firehose,
        "lines",
        json!({"RoleARN": "r", "ClusterJDBCURL": postgres.jdbc(), "Username": "runnel", "Password": "unused1",
               "CopyCommand": {"DataTableName": "lines", "CopyOptions": "csv delimiter ','"},
               "S3Configuration": staging}),
    );
    firehose
        .put("lines", vec![b"1,one\n".to_vec(), b"2,\"t,wo\"\n".to_vec()])
        .await
        .unwrap();
    let loaded = async {
        for _ in 0..200 {
            if count(&client, "SELECT count(*) FROM lines").await == 2 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(loaded.await);
    let b: String = client
        .query_one("SELECT b FROM lines WHERE a = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(b, "t,wo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_keeps_failing_names_its_staged_object() {
    let postgres = Postgres::start();
    let fixture = Fixture::new();
    let firehose = fixture.open();
    create(
        &firehose,
        "missing",
        json!({"RoleARN": "r", "ClusterJDBCURL": postgres.jdbc(), "Username": "runnel", "Password": "unused1",
               "CopyCommand": {"DataTableName": "no_such_table", "CopyOptions": "csv"},
               "RetryOptions": {"DurationInSeconds": 1},
               "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::staging",
                                   "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}}),
    );
    firehose
        .put("missing", vec![b"1,x\n".to_vec()])
        .await
        .unwrap();
    let root = fixture.buckets().join("staging");
    assert!(
        eventually(Duration::from_secs(20), || objects(&root)
            .iter()
            .any(|(k, _)| k.starts_with("redshift-failed/")))
        .await
    );
    let (_, body) = objects(&root)
        .into_iter()
        .find(|(k, _)| k.starts_with("redshift-failed/"))
        .unwrap();
    let line: Value = serde_json::from_slice(body.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["errorCode"], "Redshift.CopyFailed");
    assert!(
        line["errorMessage"]
            .as_str()
            .unwrap()
            .contains("no_such_table"),
        "{line}"
    );
    let _ = postgres.dir();
}
