//! SQL jobs inside the server: `/v1/jobs`, `runnel jobs`, the `kinesis`
//! connector, and a job that runs again after its server was killed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{RunnelServer, runnel_bin};

fn script_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn kinesis(server: &RunnelServer, op: &str, body: Value) -> Value {
    let mut response = agent()
        .post(&server.url())
        .header("X-Amz-Target", format!("Kinesis_20131202.{op}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .send(body.to_string())
        .unwrap();
    assert_eq!(response.status(), 200, "{op}");
    response.body_mut().read_json().unwrap()
}

fn jobs(server: &RunnelServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", server.url());
    let mut response = match (method, body) {
        ("POST", Some(body)) => agent()
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string()),
        ("POST", None) => agent().post(&url).send_empty(),
        ("DELETE", _) => agent().delete(&url).call(),
        _ => agent().get(&url).call(),
    }
    .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn boto3_and_runnel_jobs_run_a_windowed_job_from_stream_to_stream() {
    let server = RunnelServer::builder().arg("--no-shard-limits").start();
    let output = Command::new("python3")
        .arg(Path::new(script_dir()).join("analytics_jobs.py"))
        .arg(server.url())
        .arg(runnel_bin())
        .output()
        .expect("run python3 (make deps installs boto3)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.lines().any(|l| l == "ok: analytics_jobs.py"),
        "analytics_jobs.py failed\n--- stdout\n{stdout}\n--- stderr\n{}\n--- server log\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
}

const PASS_THROUGH: &str = "
CREATE TABLE source_events (k BIGINT) WITH ('connector' = 'kinesis', 'stream' = 'in', 'format' = 'json', 'source.init.position' = 'TRIM_HORIZON');
CREATE TABLE copied (k BIGINT) WITH ('connector' = 'kinesis', 'stream' = 'out', 'format' = 'json');
INSERT INTO copied SELECT k * 10 FROM source_events;
";

fn put(server: &RunnelServer, stream: &str, k: i64) {
    use base64::Engine;
    kinesis(
        server,
        "PutRecord",
        json!({"StreamName": stream, "PartitionKey": format!("k{k}"),
               "Data": base64::engine::general_purpose::STANDARD.encode(format!("{{\"k\": {k}}}"))}),
    );
}

fn records_of(server: &RunnelServer, stream: &str) -> Vec<i64> {
    use base64::Engine;
    let iterator = kinesis(
        server,
        "GetShardIterator",
        json!({"StreamName": stream, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
    )["ShardIterator"]
        .as_str()
        .unwrap()
        .to_string();
    let out = kinesis(server, "GetRecords", json!({"ShardIterator": iterator}));
    let mut values: Vec<i64> = out["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice::<Value>(&data).unwrap()["k"]
                .as_i64()
                .unwrap()
        })
        .collect();
    values.sort_unstable();
    values
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A job acknowledged as submitted is kept in the data dir: killed with the
/// server (`kill -9`), it runs again when the server comes back.
#[test]
fn a_running_job_runs_again_after_its_server_is_killed() {
    let data = tempfile::tempdir().unwrap();
    let mut server = RunnelServer::builder()
        .data_dir(data.path())
        .arg("--no-shard-limits")
        .start();
    for stream in ["in", "out"] {
        kinesis(
            &server,
            "CreateStream",
            json!({"StreamName": stream, "ShardCount": 1}),
        );
    }
    let (status, job) = jobs(
        &server,
        "POST",
        "/v1/jobs",
        Some(json!({"sql": PASS_THROUGH, "name": "copy", "parallelism": 1})),
    );
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    put(&server, "in", 1);
    wait_for("the first record copied", || {
        records_of(&server, "out") == [10]
    });
    server.kill();

    let server = RunnelServer::builder()
        .data_dir(data.path())
        .arg("--no-shard-limits")
        .start();
    let (status, job) = jobs(&server, "GET", &format!("/v1/jobs/{id}"), None);
    assert_eq!(status, 200);
    assert_eq!(job["status"], "RUNNING", "{job}");
    assert_eq!(job["name"], "copy");
    put(&server, "in", 2);
    // Without checkpoints (the next issue) the restarted job reads its
    // stream again from its initial position: the first record is copied twice.
    wait_for("the second record copied", || {
        records_of(&server, "out").contains(&20)
    });
    let (status, _) = jobs(&server, "DELETE", &format!("/v1/jobs/{id}"), None);
    assert_eq!(status, 409, "a running job cannot be deleted");
    let (status, job) = jobs(&server, "POST", &format!("/v1/jobs/{id}/stop"), None);
    assert_eq!(status, 202, "{job}");
    wait_for("the job to stop", || {
        jobs(&server, "GET", &format!("/v1/jobs/{id}"), None).1["status"] == "STOPPED"
    });
}

#[test]
fn bad_submissions_are_refused_with_reasons() {
    let server = RunnelServer::start();
    let (status, body) = jobs(&server, "POST", "/v1/jobs", Some(json!({"sequel": "x"})));
    assert_eq!(status, 400, "{body}");
    let (status, body) = jobs(
        &server,
        "POST",
        "/v1/jobs",
        Some(json!({"sql": "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');"})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("nothing to run"),
        "{body}"
    );
    let (status, body) = jobs(
        &server,
        "POST",
        "/v1/jobs",
        Some(
            json!({"sql": format!("CREATE TABLE t (a INT) WITH ('connector' = 'kinesis', 'stream' = 'x', 'format' = 'json', 'aws.endpoint' = 'http://127.0.0.1:{}');\nINSERT INTO t SELECT a FROM t;", crate::harness::free_port())}),
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("kinesis stream 'x': at http://127.0.0.1:"),
        "{body}"
    );
    let (status, _) = jobs(&server, "POST", "/v1/jobs/none/stop", None);
    assert_eq!(status, 404);
}

#[test]
fn boto3_kinesisanalyticsv2_manages_an_application() {
    let server = RunnelServer::builder().arg("--no-shard-limits").start();
    let output = Command::new("python3")
        .arg(Path::new(script_dir()).join("analytics_applications.py"))
        .arg(server.url())
        .output()
        .expect("run python3 (make deps installs boto3)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.lines().any(|l| l == "ok: analytics_applications.py"),
        "analytics_applications.py failed\n--- stdout\n{stdout}\n--- stderr\n{}\n--- server log\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
}

/// A job that fails is restarted as its restart strategy says (Flink's
/// keys), reading its stream from the start again; here the same bad
/// record fails it each time, until the attempts are used up.
#[test]
fn a_failing_job_is_restarted_as_its_strategy_says_then_fails() {
    let server = RunnelServer::builder().arg("--no-shard-limits").start();
    kinesis(
        &server,
        "CreateStream",
        json!({"StreamName": "in", "ShardCount": 1}),
    );
    use base64::Engine;
    kinesis(
        &server,
        "PutRecord",
        json!({"StreamName": "in", "PartitionKey": "k",
               "Data": base64::engine::general_purpose::STANDARD.encode("{broken")}),
    );
    let sql = "
SET 'restart-strategy.type' = 'fixed-delay';
SET 'restart-strategy.fixed-delay.attempts' = '2';
SET 'restart-strategy.fixed-delay.delay' = '200 ms';
CREATE TABLE source_events (k BIGINT) WITH ('connector' = 'kinesis', 'stream' = 'in', 'format' = 'json', 'source.init.position' = 'TRIM_HORIZON');
CREATE TABLE dropped (k BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO dropped SELECT k FROM source_events;
";
    let (status, job) = jobs(&server, "POST", "/v1/jobs", Some(json!({"sql": sql})));
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    wait_for("the job to fail for good", || {
        last = jobs(&server, "GET", &format!("/v1/jobs/{id}"), None).1;
        last["status"] == "FAILED"
    });
    assert_eq!(last["restarts"], 2, "{last}");
    assert!(last["error"].as_str().unwrap().contains("in"), "{last}");
    let (status, body) = jobs(
        &server,
        "POST",
        "/v1/jobs",
        Some(
            json!({"sql": format!("SET 'restart-strategy.type' = 'sometimes';\n{}", &sql[sql.find("CREATE").unwrap()..])}),
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("sometimes"),
        "{body}"
    );
}

/// `runnel sql run`, outside any server, reads and writes the streams of
/// another endpoint through its API: GetRecords across a split (the
/// parent to its end, then its children), PutRecords batched by the
/// flush options; the first SIGINT ends the sources and flushes the sink.
#[test]
fn sql_run_reads_and_writes_the_streams_of_another_endpoint() {
    let remote = RunnelServer::builder().arg("--no-shard-limits").start();
    kinesis(
        &remote,
        "CreateStream",
        json!({"StreamName": "far-in", "ShardCount": 2}),
    );
    kinesis(
        &remote,
        "CreateStream",
        json!({"StreamName": "far-out", "ShardCount": 1}),
    );
    for k in 0..50 {
        put(&remote, "far-in", k);
    }
    kinesis(
        &remote,
        "SplitShard",
        json!({"StreamName": "far-in", "ShardToSplit": "shardId-000000000000",
               "NewStartingHashKey": "85070591730234615865843651857942052864"}),
    );
    for k in 50..100 {
        put(&remote, "far-in", k);
    }

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("far.sql");
    let endpoint = remote.url();
    std::fs::write(
        &script,
        format!(
            "CREATE TABLE far_in (k BIGINT) WITH ('connector' = 'kinesis',
               'stream.arn' = 'arn:aws:kinesis:eu-west-1:123456789012:stream/far-in',
               'aws.endpoint' = '{endpoint}', 'format' = 'json', 'source.init.position' = 'TRIM_HORIZON',
               'source.reader.empty-records-fetch-interval' = '50 ms');
             CREATE TABLE far_out (k BIGINT) WITH ('connector' = 'kinesis', 'stream' = 'far-out',
               'aws.endpoint' = '{endpoint}', 'format' = 'json',
               'sink.batch.max-size' = '40', 'sink.flush-buffer.timeout' = '200 ms');
             INSERT INTO far_out SELECT k * 10 FROM far_in;"
        ),
    )
    .unwrap();
    let mut job = Command::new(runnel_bin())
        .args(["sql", "run", "--quiet", "--file"])
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let expected: Vec<i64> = (0..100).map(|k| k * 10).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while records_of(&remote, "far-out") != expected {
        if Instant::now() > deadline || job.try_wait().unwrap().is_some() {
            let _ = job.kill();
            let output = job.wait_with_output().unwrap();
            panic!(
                "far-out has {:?}\n--- job stderr\n{}\n--- server log\n{}",
                records_of(&remote, "far-out"),
                String::from_utf8_lossy(&output.stderr),
                remote.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    crate::harness::signal(job.id(), "INT");
    let status = crate::harness::wait_bounded(&mut job, Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "runnel sql run did not end cleanly after SIGINT: {status:?}"
    );
    assert_eq!(records_of(&remote, "far-out"), expected);

    // A job of another server reads the same stream into one of its own.
    let near = RunnelServer::builder().arg("--no-shard-limits").start();
    kinesis(
        &near,
        "CreateStream",
        json!({"StreamName": "near-out", "ShardCount": 1}),
    );
    let (status, body) = jobs(
        &near,
        "POST",
        "/v1/jobs",
        Some(json!({"sql": format!(
            "CREATE TABLE far_in (k BIGINT) WITH ('connector' = 'kinesis', 'stream' = 'far-in',
               'aws.endpoint' = '{endpoint}', 'format' = 'json', 'source.init.position' = 'TRIM_HORIZON');
             CREATE TABLE near_out (k BIGINT) WITH ('connector' = 'kinesis', 'stream' = 'near-out', 'format' = 'json');
             INSERT INTO near_out SELECT k FROM far_in;"
        )})),
    );
    assert_eq!(status, 201, "{body}");
    let everything: Vec<i64> = (0..100).collect();
    wait_for("the far stream copied near", || {
        records_of(&near, "near-out") == everything
    });
    let id = body["id"].as_str().unwrap().to_string();
    let (_, described) = jobs(&near, "GET", &format!("/v1/jobs/{id}"), None);
    assert_eq!(described["status"], "RUNNING", "{described}");
    assert_eq!(described["sources"][0]["rows_read"], 100, "{described}");

    // An endpoint without the stream, or with nothing listening, is refused
    // before anything runs.
    std::fs::write(
        &script,
        format!(
            "CREATE TABLE t (k BIGINT) WITH ('connector' = 'kinesis', 'stream' = 'nowhere',
               'aws.endpoint' = '{endpoint}', 'format' = 'json');
             INSERT INTO t SELECT k FROM t;"
        ),
    )
    .unwrap();
    let refused = Command::new(runnel_bin())
        .args(["sql", "run", "--quiet", "--file"])
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("nowhere")
            && stderr.contains("ResourceNotFoundException"),
        "{stderr}"
    );
}

/// The avro format against Apache Avro's own Python library: records it
/// wrote read by a job, the job's output read by it, and container files
/// written by `runnel sql run`.
#[test]
fn avro_records_and_files_are_read_and_written_as_apache_avro_does() {
    let server = RunnelServer::start();
    crate::kinesis_e2e::run_script_with(&server, "avro_format.py", &[runnel_bin()]);
}
