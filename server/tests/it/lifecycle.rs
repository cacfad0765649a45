use crate::harness::{RunnelServer, agent, runnel_bin};

fn health(server: &RunnelServer) -> serde_json::Value {
    let mut response = agent()
        .get(&format!("{}/v1/health", server.url()))
        .call()
        .expect("health");
    assert_eq!(response.status(), 200);
    response.body_mut().read_json().expect("health JSON")
}

#[test]
fn health_reports_ok_and_the_version() {
    let server = RunnelServer::start();
    let body = health(&server);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn state_survives_a_clean_restart_on_the_same_data_dir() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let mut first = RunnelServer::builder().data_dir(&dir).start();
    let id = health(&first)["store_id"].as_str().unwrap().to_string();
    assert!(first.stop().success(), "log:\n{}", first.log());
    assert!(
        first.log().contains("store flushed"),
        "log:\n{}",
        first.log()
    );

    let second = RunnelServer::builder().data_dir(&dir).start();
    assert_eq!(health(&second)["store_id"], id.as_str());
}

#[test]
fn state_survives_kill_9() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let mut first = RunnelServer::builder().data_dir(&dir).start();
    let id = health(&first)["store_id"].as_str().unwrap().to_string();
    first.kill();
    let second = RunnelServer::builder().data_dir(&dir).start();
    assert_eq!(health(&second)["store_id"], id.as_str());
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused_and_the_first_keeps_running() {
    let first = RunnelServer::start();
    let output = std::process::Command::new(runnel_bin())
        .args([
            "server",
            "--port",
            &crate::harness::free_port().to_string(),
            "--data-dir",
        ])
        .arg(&first.data_dir)
        .output()
        .expect("run second server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("already in use by another runnel process"),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", first.pid())),
        "stderr: {stderr}"
    );
    assert_eq!(health(&first)["status"], "ok");
}

#[test]
fn sigint_shuts_down_cleanly_like_sigterm() {
    let mut server = RunnelServer::start();
    let status = server.stop_with("INT");
    assert!(status.success(), "log:\n{}", server.log());
    assert!(server.log().contains("SIGINT"), "log:\n{}", server.log());
    assert!(
        server.log().contains("store flushed"),
        "log:\n{}",
        server.log()
    );
}

#[test]
fn metrics_count_requests_in_prometheus_text() {
    let server = RunnelServer::start();
    let health_count = || {
        let mut response = agent()
            .get(&format!("{}/metrics", server.url()))
            .call()
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.body_mut().read_to_string().unwrap();
        assert!(
            text.contains("# TYPE runnel_http_requests counter"),
            "{text}"
        );
        assert!(text.contains("runnel_start_time_seconds"), "{text}");
        let series =
            r#"runnel_http_requests_total{service="runnel",operation="health",status="200"} "#;
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("{text}"));
        line.parse::<u64>().unwrap()
    };
    let before = health_count();
    health(&server);
    assert_eq!(health_count(), before + 1);
}
