use crate::harness::{RunnelServer, free_port};

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("runnel.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_config_file_sets_the_port_when_no_flag_or_env_does() {
    let temp = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(temp.path(), &format!("port = {port}\n"));
    let server = RunnelServer::builder()
        .arg("--config")
        .arg(config.display().to_string())
        .expect_port(port)
        .start();
    assert!(
        server.log().contains("read config file"),
        "{}",
        server.log()
    );
}

#[test]
fn the_environment_overrides_the_config_file() {
    let temp = tempfile::tempdir().unwrap();
    let file_port = free_port();
    let env_port = free_port();
    let config = write_config(temp.path(), &format!("port = {file_port}\n"));
    RunnelServer::builder()
        .env("RUNNEL_CONFIG", config.display().to_string())
        .env("RUNNEL_PORT", env_port.to_string())
        .expect_port(env_port)
        .start();
}

#[test]
fn a_flag_overrides_the_environment() {
    let env_port = free_port();
    let flag_port = free_port();
    RunnelServer::builder()
        .env("RUNNEL_PORT", env_port.to_string())
        .arg("--port")
        .arg(flag_port.to_string())
        .expect_port(flag_port)
        .start();
}

#[test]
fn json_logs_on_request() {
    let server = RunnelServer::builder()
        .arg("--log-format")
        .arg("json")
        .start();
    let log = server.log();
    let first = log.lines().next().expect("a log line");
    let line: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(line["level"].is_string(), "{line}");
}

#[test]
fn a_bad_config_file_fails_with_its_path_and_the_bad_key() {
    let temp = tempfile::tempdir().unwrap();
    let config = write_config(temp.path(), "portt = 1\n");
    let output = std::process::Command::new(crate::harness::runnel_bin())
        .args(["server", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("runnel.toml") && stderr.contains("portt"),
        "{stderr}"
    );
}
