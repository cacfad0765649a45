//! `runnel streams create|list|describe|put|tail` against a real server.

use std::process::{Command, Output};

use serde_json::json;

use crate::harness::{RunnelServer, agent, runnel_bin};

fn streams(server: &RunnelServer, args: &[&str]) -> Output {
    let output = Command::new(runnel_bin())
        .arg("streams")
        .args(["--endpoint", &server.url()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "runnel streams {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn create_list_describe_put_and_tail_across_a_reshard() {
    let server = RunnelServer::start();
    streams(&server, &["create", "events", "--shards", "2"]);
    assert_eq!(stdout(&streams(&server, &["list"])), "events\n");
    let described: serde_json::Value =
        serde_json::from_str(&stdout(&streams(&server, &["describe", "events"]))).unwrap();
    assert_eq!(described["OpenShardCount"], 2);
    assert_eq!(described["Shards"].as_array().unwrap().len(), 2);

    streams(&server, &["put", "events", "-k", "user-1", "a1", "a2"]);
    streams(&server, &["put", "events", "-k", "user-2", "b1"]);
    // Split the shard user-1 lives on, then write more: tail must give the
    // parent's records before the child's.
    let response = agent()
        .post(&server.url())
        .header("X-Amz-Target", "Kinesis_20131202.SplitShard")
        .header("Content-Type", "application/x-amz-json-1.1")
        .send(
            json!({"StreamName": "events", "ShardToSplit": "shardId-000000000000",
                   "NewStartingHashKey": (1u128 << 126).to_string()})
            .to_string(),
        )
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = agent()
        .post(&server.url())
        .header("X-Amz-Target", "Kinesis_20131202.SplitShard")
        .header("Content-Type", "application/x-amz-json-1.1")
        .send(
            json!({"StreamName": "events", "ShardToSplit": "shardId-000000000001",
                   "NewStartingHashKey": (3u128 << 126).to_string()})
            .to_string(),
        )
        .unwrap();
    assert_eq!(response.status(), 200);
    streams(&server, &["put", "events", "-k", "user-1", "a3"]);
    streams(&server, &["put", "events", "-k", "user-2", "b2"]);

    let tailed = stdout(&streams(
        &server,
        &["tail", "events", "--from", "trim-horizon", "--count", "5"],
    ));
    let lines: Vec<&str> = tailed.lines().collect();
    assert_eq!(lines.len(), 5, "{tailed}");
    let of = |prefix: char| -> Vec<&str> {
        lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(prefix))
            .collect()
    };
    assert_eq!(of('a'), ["a1", "a2", "a3"]);
    assert_eq!(of('b'), ["b1", "b2"]);
}

#[test]
fn put_reads_records_from_stdin_and_errors_are_reported() {
    use std::io::Write;
    let server = RunnelServer::start();
    streams(&server, &["create", "lines"]);
    let mut child = Command::new(runnel_bin())
        .args(["streams", "--endpoint", &server.url(), "put", "lines"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text: String = (0..1200).map(|i| format!("line {i}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(stdout(&output), "put 1200 records into lines\n");
    let tailed = stdout(&streams(
        &server,
        &["tail", "lines", "--from", "trim-horizon", "-n", "1200"],
    ));
    assert_eq!(tailed.lines().count(), 1200);

    let output = Command::new(runnel_bin())
        .args([
            "streams",
            "--endpoint",
            &server.url(),
            "describe",
            "missing",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ResourceNotFoundException"));
}
