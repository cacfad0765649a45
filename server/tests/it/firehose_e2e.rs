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
    let output = Command::new("aws")
        .args([
            "--endpoint-url",
            &server.url(),
            "--output",
            "json",
            "firehose",
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "runnel")
        .env("AWS_SECRET_ACCESS_KEY", "runnel")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .output()
        .expect("run the aws CLI (make deps installs it)");
    assert!(
        output.status.success(),
        "aws firehose {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&output.stdout).unwrap()
    }
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
    let described = aws(
        &server,
        &["describe-delivery-stream", "--delivery-stream-name", "cli"],
    );
    assert_eq!(
        described["DeliveryStreamDescription"]["DeliveryStreamStatus"],
        "ACTIVE"
    );
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
