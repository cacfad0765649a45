//! Firehose end to end: boto3 (`py/firehose.py`) and the aws CLI against a
//! real server delivering to its local buckets.

use std::process::Command;

use crate::harness::RunnelServer;
use crate::kinesis_e2e::run_script_with;

#[test]
fn boto3_firehose_control_plane_puts_and_objects() {
    let server = RunnelServer::start();
    let data_dir = server.data_dir.display().to_string();
    run_script_with(&server, "firehose.py", &[&data_dir]);
}

fn aws(server: &RunnelServer, args: &[&str]) -> serde_json::Value {
    crate::kinesis_e2e::aws_cli(server, "firehose", args)
}

#[test]
fn the_aws_cli_creates_a_delivery_stream_and_its_records_arrive() {
    let server = RunnelServer::start();
    aws(
        &server,
        &[
            "create-delivery-stream",
            "--delivery-stream-name",
            "cli",
            "--extended-s3-destination-configuration",
            r#"{"RoleARN": "arn:aws:iam::000000000000:role/f", "BucketARN": "arn:aws:s3:::cli-bucket", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}"#,
        ],
    );
    // CREATING until its tasks run, then ACTIVE.
    let mut status = String::new();
    for _ in 0..100 {
        let described = aws(
            &server,
            &["describe-delivery-stream", "--delivery-stream-name", "cli"],
        );
        status = described["DeliveryStreamDescription"]["DeliveryStreamStatus"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status != "CREATING" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status, "ACTIVE");
    // The CLI (v1, from PyPI) base64-encodes a blob given as text itself.
    aws(
        &server,
        &[
            "put-record",
            "--delivery-stream-name",
            "cli",
            "--record",
            r#"{"Data": "hello from the cli\n"}"#,
        ],
    );
    let bucket = server.data_dir.join("buckets").join("cli-bucket");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut found = Vec::new();
    while found.is_empty() && std::time::Instant::now() < deadline {
        found = walk(&bucket);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(std::fs::read(&found[0]).unwrap(), b"hello from the cli\n");
}

/// Every finished object under `dir`.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.to_string_lossy().contains('#') {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn post(
    url: &str,
    path: &str,
    target: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut request = crate::harness::agent().post(&format!("{url}{path}"));
    request = match target {
        Some(target) => request
            .header("X-Amz-Target", format!("Firehose_20150804.{target}"))
            .header("Content-Type", "application/x-amz-json-1.1"),
        None => request.header("Content-Type", "application/json"),
    };
    let mut response = request.send(body.to_string()).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

#[test]
fn a_sql_job_writes_into_a_delivery_stream_with_the_firehose_connector() {
    let server = RunnelServer::start();
    let url = server.url();
    let (status, body) = post(
        &url,
        "/",
        Some("CreateDeliveryStream"),
        serde_json::json!({"DeliveryStreamName": "sql", "ExtendedS3DestinationConfiguration": {
            "RoleARN": "r", "BucketARN": "arn:aws:s3:::sql-out",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "AppendDelimiterToRecord"}]}}}),
    );
    assert_eq!(status, 200, "{body}");
    let script = "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '300', \
                  'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '300');\n\
                  CREATE TABLE out (id BIGINT, doubled BIGINT) WITH ('connector' = 'firehose', \
                  'delivery-stream' = 'sql', 'aws.region' = 'us-east-1', 'format' = 'json', 'sink.batch.max-size' = '100');\n\
                  INSERT INTO out SELECT id, id * 2 FROM src;";
    let (status, body) = post(
        &url,
        "/v1/jobs",
        None,
        serde_json::json!({"sql": script, "name": "to-firehose"}),
    );
    assert_eq!(status, 201, "{body}");
    let bucket = server.data_dir.join("buckets").join("sql-out");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut ids = Vec::new();
    while ids.len() < 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        ids = walk(&bucket)
            .iter()
            .flat_map(|path| {
                std::fs::read_to_string(path)
                    .unwrap_or_default()
                    .lines()
                    .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
                    .collect::<Vec<_>>()
            })
            .map(|row| {
                assert_eq!(row["doubled"], row["id"].as_i64().unwrap() * 2, "{row}");
                row["id"].as_i64().unwrap()
            })
            .collect();
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=300).collect::<Vec<i64>>(), "{}", server.log());

    // Flink's Firehose connector is a sink: reading one is refused at submit.
    let (status, body) = post(
        &url,
        "/v1/jobs",
        None,
        serde_json::json!({"sql": "CREATE TABLE f (id BIGINT) WITH ('connector' = 'firehose', 'delivery-stream' = 'sql', 'format' = 'json');\nSELECT * FROM f;"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("cannot be used as a source"),
        "{body}"
    );
    let (status, body) = post(
        &url,
        "/v1/jobs",
        None,
        serde_json::json!({"sql": "CREATE TABLE s (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\nCREATE TABLE f (id BIGINT) WITH ('connector' = 'firehose', 'delivery-stream' = 'nope', 'format' = 'json');\nINSERT INTO f SELECT id FROM s;"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("nope"), "{body}");
}

#[test]
fn sql_run_writes_into_the_delivery_stream_of_another_endpoint() {
    let remote = RunnelServer::start();
    let url = remote.url();
    let (status, body) = post(
        &url,
        "/",
        Some("CreateDeliveryStream"),
        serde_json::json!({"DeliveryStreamName": "far", "ExtendedS3DestinationConfiguration": {
            "RoleARN": "r", "BucketARN": "arn:aws:s3:::far",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "AppendDelimiterToRecord"}]}}}),
    );
    assert_eq!(status, 200, "{body}");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("far.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '250',
               'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '250');
             CREATE TABLE far (id BIGINT) WITH ('connector' = 'firehose', 'delivery-stream' = 'far',
               'aws.endpoint' = '{url}', 'aws.region' = 'us-east-1', 'format' = 'csv',
               'sink.batch.max-size' = '60', 'sink.flush-buffer.timeout' = '200 ms');
             INSERT INTO far SELECT id FROM src;"
        ),
    )
    .unwrap();
    let output = Command::new(crate::harness::runnel_bin())
        .args(["sql", "run", "--quiet", "--file"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bucket = remote.data_dir.join("buckets").join("far");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut ids: Vec<i64> = Vec::new();
    while ids.len() < 250 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        ids = walk(&bucket)
            .iter()
            .flat_map(|path| {
                std::fs::read_to_string(path)
                    .unwrap_or_default()
                    .lines()
                    .map(|line| line.parse::<i64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=250).collect::<Vec<i64>>());
}

#[test]
fn server_side_encryption_is_started_described_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runnel.toml");
    std::fs::write(
        &config,
        "[streams]\nencryption_key = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n",
    )
    .unwrap();
    let server = RunnelServer::builder()
        .arg("--config")
        .arg(config.display().to_string())
        .start();
    let url = server.url();
    let create = serde_json::json!({"DeliveryStreamName": "sse",
        "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "CUSTOMER_MANAGED_CMK",
            "KeyARN": "arn:aws:kms:us-east-1:000000000000:key/k"},
        "ExtendedS3DestinationConfiguration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::sse",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}});
    assert_eq!(post(&url, "/", Some("CreateDeliveryStream"), create).0, 200);
    let described = post(
        &url,
        "/",
        Some("DescribeDeliveryStream"),
        serde_json::json!({"DeliveryStreamName": "sse"}),
    )
    .1;
    assert_eq!(
        described["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"],
        serde_json::json!({"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": "arn:aws:kms:us-east-1:000000000000:key/k", "Status": "ENABLED"})
    );
    let put = post(
        &url,
        "/",
        Some("PutRecord"),
        serde_json::json!({"DeliveryStreamName": "sse", "Record": {"Data": "c2VjcmV0"}}),
    )
    .1;
    assert_eq!(put["Encrypted"], true, "{put}");
    let (status, _) = post(
        &url,
        "/",
        Some("StopDeliveryStreamEncryption"),
        serde_json::json!({"DeliveryStreamName": "sse"}),
    );
    assert_eq!(status, 200);
    let put = post(
        &url,
        "/",
        Some("PutRecord"),
        serde_json::json!({"DeliveryStreamName": "sse", "Record": {"Data": "cGxhaW4="}}),
    )
    .1;
    assert_eq!(put["Encrypted"], false, "{put}");
    let bucket = server.data_dir.join("buckets").join("sse");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut text = String::new();
    while text.len() < "secretplain".len() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        text = walk(&bucket)
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect();
    }
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    let mut expected: Vec<char> = "secretplain".chars().collect();
    expected.sort_unstable();
    assert_eq!(chars, expected, "{text}");
}
