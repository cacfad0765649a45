//! Access keys, signatures and policies against a real server: boto3 and
//! the aws CLI (`py/auth.py`), and the refusal to start exposed.

use std::process::Command;

use crate::harness::{RunnelServer, runnel_bin};
use crate::kinesis_e2e::run_script_with;

/// The keys `py/auth.py` signs with: one that may do everything, one that
/// may only read, one limited to a network the test is not in, one to the one
/// it is in, and one of
/// another account.
const KEYS: &str = r#"
[[auth.keys]]
access_key_id = "AKIAALICE"
secret_access_key = "alice-secret"
principal = "alice"

[[auth.keys]]
access_key_id = "AKIAREADER"
secret_access_key = "reader-secret"
principal = "reader"
policy = '''{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["kinesis:Get*", "kinesis:Describe*", "kinesis:List*"], "Resource": "*"}]}'''

[[auth.keys]]
access_key_id = "AKIAOFFICE"
secret_access_key = "office-secret"
principal = "office"
policy = '''{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
  "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}'''

[[auth.keys]]
access_key_id = "AKIALOCAL"
secret_access_key = "local-secret"
principal = "local"
policy = '''{"Statement": {"Effect": "Allow", "Action": "kinesis:List*", "Resource": "*",
  "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1"]}}}}'''

[[auth.keys]]
access_key_id = "AKIAPARTNER"
secret_access_key = "partner-secret"
principal = "partner"
account = "111122223333"
"#;

#[test]
fn signatures_policies_sessions_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runnel.toml");
    std::fs::write(&config, KEYS).unwrap();
    let server = RunnelServer::builder()
        .arg("--config")
        .arg(config.display().to_string())
        .start();
    assert!(
        server.log().contains("requests must be signed"),
        "{}",
        server.log()
    );
    let audit = server.data_dir.join("audit.log");
    run_script_with(&server, "auth.py", &[audit.display().to_string().as_str()]);
}

/// Without keys a server on another address than loopback would let
/// anyone in: it refuses to start, before it opens the data dir.
#[test]
fn an_exposed_address_without_keys_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(runnel_bin())
        .args(["server", "--listen", "0.0.0.0", "--port", "1", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("RUNNEL_ACCESS_KEY_ID")
        .env_remove("RUNNEL_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0 without access keys")
            && stderr.contains("--insecure"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists());
}

/// A loopback server without keys is the emulator users know, and says so.
#[test]
fn a_loopback_server_without_keys_says_authentication_is_off() {
    let server = RunnelServer::start();
    assert!(
        server.log().contains("authentication is off"),
        "{}",
        server.log()
    );
}

/// `runnel streams` and `runnel jobs` sign with the key in the environment,
/// as the aws CLI does; without it the server refuses them.
#[test]
fn the_cli_signs_with_the_key_of_the_environment() {
    let server = RunnelServer::builder()
        .env("RUNNEL_ACCESS_KEY_ID", "AKIACLI")
        .env("RUNNEL_SECRET_ACCESS_KEY", "cli-secret")
        .start();
    let run = |args: &[&str], signed: bool| {
        let mut command = Command::new(runnel_bin());
        command
            .args(args)
            .args(["--endpoint", &server.url()])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        if signed {
            command
                .env("RUNNEL_ACCESS_KEY_ID", "AKIACLI")
                .env("RUNNEL_SECRET_ACCESS_KEY", "cli-secret");
        } else {
            command
                .env_remove("RUNNEL_ACCESS_KEY_ID")
                .env_remove("RUNNEL_SECRET_ACCESS_KEY");
        }
        command.output().unwrap()
    };
    let created = run(&["streams", "create", "signed"], true);
    assert!(created.status.success(), "{created:?}");
    let listed = run(&["streams", "list"], true);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("signed"),
        "{listed:?}"
    );
    let jobs = run(&["jobs", "list"], true);
    assert!(jobs.status.success(), "{jobs:?}");
    let anonymous = run(&["streams", "list"], false);
    assert!(!anonymous.status.success());
    assert!(
        String::from_utf8_lossy(&anonymous.stderr).contains("MissingAuthenticationTokenException"),
        "{anonymous:?}"
    );
    let anonymous = run(&["jobs", "list"], false);
    assert!(
        !anonymous.status.success()
            && String::from_utf8_lossy(&anonymous.stderr).contains("Missing Authentication Token"),
        "{anonymous:?}"
    );
}
