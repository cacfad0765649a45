//! TLS: `--tls self-signed` (the certificate made once and kept in the data
//! dir), `--tls-cert`/`--tls-key` and the `[tls]` table; boto3, the aws CLI
//! and curl over it; HTTP/2 by ALPN, SubscribeToShard included; plain HTTP
//! on the same port only with `--tls-allow-plain`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::harness::{RunnelServer, agent, free_port, runnel_bin, tls_agent, wait_bounded};
use crate::kinesis_e2e::run_script_with;

fn self_signed_server() -> RunnelServer {
    RunnelServer::builder()
        .arg("--tls")
        .arg("self-signed")
        .https()
        .start()
}

fn ca(server: &RunnelServer) -> &Path {
    server.tls_ca.as_deref().unwrap()
}

/// One Kinesis call over TLS; its JSON answer, which must be a 200.
fn call(server: &RunnelServer, op: &str, body: Value) -> Value {
    let mut response = tls_agent(ca(server))
        .unwrap()
        .post(&server.url())
        .header("X-Amz-Target", format!("Kinesis_20131202.{op}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .send(body.to_string())
        .unwrap();
    assert_eq!(response.status(), 200, "{op}");
    response.body_mut().read_json().unwrap()
}

/// `curl ARGS URL`, printing the HTTP version it spoke; None if curl failed.
fn curl_http_version(args: &[&str], url: &str) -> Option<String> {
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10"])
        .args(["-w", "%{http_version}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn boto3_and_the_aws_cli_over_tls_with_the_generated_certificate() {
    let server = self_signed_server();
    assert!(server.url().starts_with("https://localhost:"));
    let ca = ca(&server).display().to_string();
    assert!(
        server.log().contains(&format!(
            "AWS endpoint is https://127.0.0.1:{}",
            server.port
        )),
        "{}",
        server.log()
    );
    assert!(server.log().contains(&ca), "the log names the certificate");
    run_script_with(&server, "tls.py", &[&ca]);
    // The aws CLI takes its global options after the command too.
    let list =
        crate::kinesis_e2e::aws_cli(&server, "kinesis", &["list-streams", "--ca-bundle", &ca]);
    assert_eq!(list["StreamNames"], json!(["secure"]));
}

#[test]
fn http2_by_alpn_and_subscribe_to_shard_over_tls() {
    let server = self_signed_server();
    let ca = ca(&server).display().to_string();
    let health = format!("{}/v1/health", server.url());
    assert_eq!(
        curl_http_version(&["--http2", "--cacert", &ca], &health).as_deref(),
        Some("2")
    );
    assert_eq!(
        curl_http_version(&["--http1.1", "--cacert", &ca], &health).as_deref(),
        Some("1.1")
    );
    // Not trusted without the certificate, and the failed handshakes (that
    // one, and one that is not TLS past its first byte) hurt nothing.
    assert_eq!(curl_http_version(&["--http2"], &health), None);
    let mut garbage = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    garbage.write_all(b"\x16\x03\x01\x00\x05hello").unwrap();
    drop(garbage);

    call(
        &server,
        "CreateStream",
        json!({"StreamName": "fan", "ShardCount": 1}),
    );
    let consumer = call(
        &server,
        "RegisterStreamConsumer",
        json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/fan", "ConsumerName": "c"}),
    );
    let consumer_arn = consumer["Consumer"]["ConsumerARN"].as_str().unwrap();
    for i in 0..3 {
        call(
            &server,
            "PutRecord",
            json!({"StreamName": "fan", "PartitionKey": "k", "Data": STANDARD.encode(format!("tls-{i}"))}),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("events.bin");
    let request = json!({"ConsumerARN": consumer_arn, "ShardId": "shardId-000000000000",
                         "StartingPosition": {"Type": "TRIM_HORIZON"}});
    let curl = Command::new("curl")
        .args(["--http2", "--cacert", &ca, "-s", "-N", "--max-time", "20"])
        .args(["-X", "POST"])
        .args(["-H", "X-Amz-Target: Kinesis_20131202.SubscribeToShard"])
        .args(["-H", "Content-Type: application/x-amz-json-1.1"])
        .args(["-d", &request.to_string(), "-o"])
        .arg(&body_path)
        .args(["-w", "%{http_version} %{http_code} %{content_type}"])
        .arg(server.url())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::fs::metadata(&body_path).map_or(0, |m| m.len()) == 0 {
        assert!(
            Instant::now() < deadline,
            "no SubscribeToShard event within 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The split ends the shard, and with it the subscription.
    call(
        &server,
        "SplitShard",
        json!({"StreamName": "fan", "ShardToSplit": "shardId-000000000000",
               "NewStartingHashKey": (1u128 << 127).to_string()}),
    );
    let output = curl.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "curl ended by timeout, not by the shard's end: {summary}"
    );
    assert_eq!(summary, "2 200 application/vnd.amazon.eventstream");
    let events = String::from_utf8_lossy(&std::fs::read(&body_path).unwrap()).into_owned();
    for i in 0..3 {
        let data = STANDARD.encode(format!("tls-{i}"));
        assert!(events.contains(&data), "{data} not in {events:?}");
    }
    assert!(events.contains("shardId-000000000002"), "{events:?}");
}

#[test]
fn plain_http_only_when_allowed_and_a_restart_keeps_the_certificate() {
    let mut server = self_signed_server();
    let plain = format!("http://127.0.0.1:{}/v1/health", server.port);
    assert!(
        agent().get(&plain).call().is_err(),
        "plain HTTP/1.1 on a TLS-only port"
    );
    assert_eq!(
        curl_http_version(&["--http2-prior-knowledge"], &plain),
        None,
        "h2c on a TLS-only port"
    );
    let cert_path = server.data_dir.join("tls/cert.pem");
    let key_path = server.data_dir.join("tls/key.pem");
    let cert = std::fs::read(&cert_path).unwrap();
    let key = std::fs::read(&key_path).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the owner's alone");
    }
    assert!(server.stop().success(), "{}", server.log());

    // The same data dir, TLS and plain HTTP from the environment this time.
    let data_dir = server.data_dir.clone();
    let server = RunnelServer::builder()
        .data_dir(&data_dir)
        .env("RUNNEL_TLS", "self-signed")
        .env("RUNNEL_TLS_ALLOW_PLAIN", "true")
        .https()
        .start();
    let plain = format!("http://127.0.0.1:{}/v1/health", server.port);
    assert_eq!(std::fs::read(&cert_path).unwrap(), cert, "certificate kept");
    assert_eq!(std::fs::read(&key_path).unwrap(), key, "key kept");
    let mut response = agent().get(&plain).call().unwrap();
    assert_eq!(response.status(), 200);
    let health: Value = response.body_mut().read_json().unwrap();
    assert_eq!(health["data_dir"], data_dir.display().to_string());
    assert_eq!(
        curl_http_version(&["--http2-prior-knowledge"], &plain).as_deref(),
        Some("2")
    );
    let https = format!("{}/v1/health", server.url());
    assert_eq!(
        tls_agent(ca(&server))
            .unwrap()
            .get(&https)
            .call()
            .unwrap()
            .status(),
        200
    );
}

/// A certificate and key (PEM) for localhost, made by the test.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// Starts a server that must fail to start; its stderr.
fn start_fails(args: &[&str]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(runnel_bin())
        .arg("server")
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args(["--port", &free_port().to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "the server started with {args:?}: {stderr}"
    );
    stderr
}

#[test]
fn certificate_files_from_the_tls_table_and_start_up_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "server");
    let config = dir.path().join("runnel.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let server = RunnelServer::builder()
        .arg("--config")
        .arg(config.display().to_string())
        .https_with_ca(&cert)
        .start();
    assert!(
        !server.data_dir.join("tls").exists(),
        "nothing is made when files are named"
    );
    drop(server);

    let missing = dir.path().join("missing/cert.pem");
    let stderr = start_fails(&[
        "--tls-cert",
        &missing.display().to_string(),
        "--tls-key",
        &key.display().to_string(),
    ]);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    let (_, other_key) = certificate(dir.path(), "other");
    let stderr = start_fails(&[
        "--tls-cert",
        &cert.display().to_string(),
        "--tls-key",
        &other_key.display().to_string(),
    ]);
    assert!(
        stderr.contains(&other_key.display().to_string()) && stderr.contains("does not go with"),
        "{stderr}"
    );
    let stderr = start_fails(&["--tls-cert", &cert.display().to_string()]);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

/// `runnel streams` and `runnel jobs` reach a TLS server, trusting the
/// certificate named by `AWS_CA_BUNDLE` as the aws CLI does; without it
/// the system's roots refuse it.
#[test]
fn the_cli_over_tls_trusts_the_ca_bundle_it_is_given() {
    let server = self_signed_server();
    let run = |args: &[&str], bundle: Option<&Path>| {
        let mut command = Command::new(runnel_bin());
        command
            .args(args)
            .args(["--endpoint", &server.url()])
            .env_remove("RUNNEL_CA_BUNDLE");
        match bundle {
            Some(path) => command.env("AWS_CA_BUNDLE", path),
            None => command.env_remove("AWS_CA_BUNDLE"),
        };
        command.output().unwrap()
    };
    let created = run(&["streams", "create", "over-tls"], Some(ca(&server)));
    assert!(created.status.success(), "{created:?}");
    let listed = run(&["streams", "list"], Some(ca(&server)));
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("over-tls"),
        "{listed:?}"
    );
    let jobs = run(&["jobs", "list"], Some(ca(&server)));
    assert!(jobs.status.success(), "{jobs:?}");
    let untrusted = run(&["streams", "list"], None);
    assert!(!untrusted.status.success(), "{untrusted:?}");
}
