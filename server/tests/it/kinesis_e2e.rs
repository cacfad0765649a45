//! Kinesis Data Streams end to end: boto3 scripts (`py/`), the aws CLI and
//! raw CBOR requests against a real server.

use std::path::Path;
use std::process::Command;

use crate::harness::{RunnelServer, ServerBuilder};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn script_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py")
}

/// Starts a server with a `[streams]` config table.
pub fn server_with(streams_toml: &str, extra: &[&str]) -> (RunnelServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runnel.toml");
    std::fs::write(&config, format!("[streams]\n{streams_toml}\n")).unwrap();
    let mut builder: ServerBuilder = RunnelServer::builder()
        .arg("--config")
        .arg(config.display().to_string());
    for arg in extra {
        builder = builder.arg(*arg);
    }
    (builder.start(), dir)
}

/// Runs a boto3 script against `server`; it must exit 0 and say `ok:`
/// (which it says only if its assertions ran).
pub fn run_script(server: &RunnelServer, script: &str) {
    run_script_with(server, script, &[]);
}

/// `run_script` with arguments after the endpoint.
pub fn run_script_with(server: &RunnelServer, script: &str, args: &[&str]) {
    let path = Path::new(script_dir()).join(script);
    let output = Command::new("python3")
        .arg(&path)
        .arg(server.url())
        .args(args)
        .output()
        .expect("run python3 (make deps installs boto3)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let name = Path::new(script)
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    assert!(
        output.status.success() && stdout.lines().any(|l| l == format!("ok: {name}")),
        "{script} failed or did not say it checked anything\n--- stdout\n{stdout}\n--- stderr\n{}\n--- server log\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
}

#[test]
fn boto3_data_plane_with_every_iterator_type() {
    let (server, _dir) = server_with("", &["--no-shard-limits"]);
    run_script(&server, "data_plane.py");
}

#[test]
fn boto3_control_plane_operations() {
    let (server, _dir) = server_with(
        &format!("encryption_key = \"{KEY_HEX}\""),
        &["--no-shard-limits"],
    );
    run_script(&server, "control_plane.py");
}

#[test]
fn boto3_validation_errors() {
    let (server, _dir) = server_with("", &["--no-shard-limits"]);
    run_script(&server, "validation.py");
}

#[test]
fn boto3_resharding_while_writing_loses_and_reorders_nothing() {
    let (server, _dir) = server_with("", &["--no-shard-limits"]);
    run_script(&server, "reshard_while_writing.py");
}

#[test]
fn boto3_throttling_with_default_limits() {
    let (server, _dir) = server_with("", &[]);
    run_script(&server, "throttling.py");
}

#[test]
fn boto3_iterators_expire() {
    let (server, _dir) = server_with("iterator_ttl_seconds = 1", &[]);
    run_script(&server, "expiry.py");
}

fn aws(server: &RunnelServer, args: &[&str]) -> serde_json::Value {
    aws_cli(server, "kinesis", args)
}

/// Runs `aws <service> <args>` against `server`; its JSON output.
pub fn aws_cli(server: &RunnelServer, service: &str, args: &[&str]) -> serde_json::Value {
    let output = Command::new("aws")
        .args(["--endpoint-url", &server.url(), "--output", "json", service])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "runnel")
        .env("AWS_SECRET_ACCESS_KEY", "runnel")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .output()
        .expect("run the aws CLI (make deps installs it)");
    assert!(
        output.status.success(),
        "aws {service} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

#[test]
fn the_aws_cli_creates_puts_and_reads() {
    let server = RunnelServer::start();
    aws(
        &server,
        &[
            "create-stream",
            "--stream-name",
            "cli",
            "--shard-count",
            "1",
        ],
    );
    aws(&server, &["wait", "stream-exists", "--stream-name", "cli"]);
    let list = aws(&server, &["list-streams"]);
    assert_eq!(list["StreamNames"], serde_json::json!(["cli"]));
    let put = aws(
        &server,
        &[
            "put-record",
            "--stream-name",
            "cli",
            "--partition-key",
            "k",
            "--data",
            "hello",
        ],
    );
    assert_eq!(put["ShardId"], "shardId-000000000000");
    let it = aws(
        &server,
        &[
            "get-shard-iterator",
            "--stream-name",
            "cli",
            "--shard-id",
            "shardId-000000000000",
            "--shard-iterator-type",
            "AT_SEQUENCE_NUMBER",
            "--starting-sequence-number",
            put["SequenceNumber"].as_str().unwrap(),
        ],
    );
    let records = aws(
        &server,
        &[
            "get-records",
            "--shard-iterator",
            it["ShardIterator"].as_str().unwrap(),
        ],
    );
    let record = &records["Records"][0];
    assert_eq!(record["SequenceNumber"], put["SequenceNumber"]);
    // The CLI (v1) sends --data as text, base64-encoded on the wire, and
    // prints blobs back in base64.
    assert_eq!(record["Data"], "aGVsbG8=");
    let described = aws(&server, &["describe-stream", "--stream-name", "cli"]);
    assert_eq!(described["StreamDescription"]["StreamStatus"], "ACTIVE");
    aws(&server, &["delete-stream", "--stream-name", "cli"]);
    assert_eq!(
        aws(&server, &["list-streams"])["StreamNames"],
        serde_json::json!([])
    );
}
