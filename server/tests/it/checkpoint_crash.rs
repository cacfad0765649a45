//! Exactly-once through `kill -9`: a checkpointed windowed job reading a
//! Kinesis stream and writing another of the same server is killed with
//! its server three times at random moments while records arrive; what the
//! output stream holds at the end equals what a server never killed
//! writes for the same input, with no row twice and none lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::harness::RunnelServer;

const JOB: &str = "
SET 'execution.checkpointing.interval' = '200 ms';
CREATE TABLE events (k BIGINT, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '0' SECOND)
  WITH ('connector' = 'kinesis', 'stream' = 'in', 'format' = 'json', 'source.init.position' = 'TRIM_HORIZON');
CREATE TABLE totals (window_start TIMESTAMP(3), k BIGINT, n BIGINT, total BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'out', 'format' = 'json');
INSERT INTO totals
SELECT window_start, k, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, k;
";

/// The other stateful operators the issue names, beside the windows: an
/// updating GROUP BY and a top-N (changelogs in debezium-json), an
/// interval join, the differential operators (a GROUP BY with MAX over a
/// changelog, a join of two changelogs), an OVER aggregation and
/// MATCH_RECOGNIZE, each into a stream of its own.
const MORE: &str = "
CREATE TABLE per_key (k BIGINT, n BIGINT, total BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'per_key', 'format' = 'debezium-json');
INSERT INTO per_key SELECT k, COUNT(*), SUM(v) FROM events GROUP BY k;
CREATE TABLE top (k BIGINT, v BIGINT, rn BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'top', 'format' = 'debezium-json');
INSERT INTO top SELECT k, v, rn FROM (
  SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM events) WHERE rn <= 3;
CREATE TABLE pairs (k BIGINT, a BIGINT, b BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'pairs', 'format' = 'json');
INSERT INTO pairs SELECT x.k, x.v, y.v FROM events x, events y
  WHERE x.k = y.k AND y.ts BETWEEN x.ts AND x.ts + INTERVAL '100' MILLISECOND AND x.v <> y.v;
CREATE TABLE extremes (parity BIGINT, hi BIGINT, keys BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'extremes', 'format' = 'debezium-json');
INSERT INTO extremes SELECT MOD(k, 2), MAX(total), COUNT(*)
  FROM (SELECT k, SUM(v) AS total FROM events GROUP BY k) GROUP BY MOD(k, 2);
CREATE TABLE joined (k BIGINT, total BIGINT, n BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'joined', 'format' = 'debezium-json');
INSERT INTO joined SELECT a.k, a.total, b.n
  FROM (SELECT k, SUM(v) AS total FROM events GROUP BY k) a
  JOIN (SELECT k, COUNT(*) AS n FROM events WHERE v % 2 = 0 GROUP BY k) b ON a.k = b.k;
CREATE TABLE running (k BIGINT, v BIGINT, recent BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'running', 'format' = 'json');
INSERT INTO running SELECT k, v, SUM(v) OVER (PARTITION BY k ORDER BY ts
  ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM events;
CREATE TABLE rises (k BIGINT, first_v BIGINT, last_v BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'rises', 'format' = 'json');
INSERT INTO rises SELECT * FROM events MATCH_RECOGNIZE (
  PARTITION BY k ORDER BY ts
  MEASURES FIRST(A.v) AS first_v, LAST(B.v) AS last_v
  ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B{2}) DEFINE B AS v > PREV(v));
";

const RECORDS: usize = 1200;
const KEYS: i64 = 7;

fn call(server: &RunnelServer, op: &str, body: Value) -> Value {
    let mut response = crate::harness::agent()
        .post(&server.url())
        .header("X-Amz-Target", format!("Kinesis_20131202.{op}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .send(body.to_string())
        .unwrap();
    let status = response.status();
    let text = response.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "{op}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Record `i`: keys in turn, event times 13 ms apart (about 77 a window),
/// then one far later per shard, which closes every window before it (the
/// watermark is the least over the shards).
fn record(i: usize) -> Value {
    let millis = if i >= RECORDS {
        3_600_000
    } else {
        i as i64 * 13
    };
    let ts = chrono::DateTime::from_timestamp_millis(1_767_225_600_000 + millis)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string();
    json!({"k": i as i64 % KEYS, "v": i, "ts": ts})
}

fn put(server: &RunnelServer, range: std::ops::Range<usize>) {
    let entries: Vec<Value> = range
        .map(|i| {
            let mut entry = json!({"PartitionKey": format!("p{i}"),
                   "Data": base64::engine::general_purpose::STANDARD.encode(record(i).to_string())});
            if i >= RECORDS {
                let shard_start = (i - RECORDS) as u128 * (1u128 << 127);
                entry["ExplicitHashKey"] = json!(shard_start.to_string());
            }
            entry
        })
        .collect();
    for chunk in entries.chunks(100) {
        let out = call(
            server,
            "PutRecords",
            json!({"StreamName": "in", "Records": chunk}),
        );
        assert_eq!(out["FailedRecordCount"], 0, "{out}");
    }
}

/// Every record of the one-shard output stream, as JSON values.
fn output(server: &RunnelServer) -> Vec<String> {
    records_of(server, "out")
}

/// Every record of a one-shard stream, each as JSON with its keys sorted.
fn records_of(server: &RunnelServer, stream: &str) -> Vec<String> {
    let mut iterator = call(
        server,
        "GetShardIterator",
        json!({"StreamName": stream, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
    )["ShardIterator"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rows = Vec::new();
    loop {
        let page = call(
            server,
            "GetRecords",
            json!({"ShardIterator": iterator, "Limit": 10000}),
        );
        let records = page["Records"].as_array().unwrap();
        for r in records {
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().unwrap())
                .unwrap();
            let row: BTreeMap<String, Value> = serde_json::from_slice(&data).unwrap();
            rows.push(serde_json::to_string(&row).unwrap());
        }
        if records.is_empty() || page["MillisBehindLatest"] == 0 {
            break;
        }
        iterator = page["NextShardIterator"].as_str().unwrap().to_string();
    }
    rows.sort();
    rows
}

/// A debezium-json changelog applied: the rows left, each as often as it
/// is there. Inserts (and updates' after images) add, deletes (and their
/// before images) take away.
fn applied(records: &[String]) -> Vec<String> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for record in records {
        let envelope: Value = serde_json::from_str(record).unwrap();
        for (image, sign) in [("before", -1), ("after", 1)] {
            if let Some(row) = envelope.get(image).filter(|r| !r.is_null()) {
                let row: BTreeMap<String, Value> = serde_json::from_value(row.clone()).unwrap();
                *counts
                    .entry(serde_json::to_string(&row).unwrap())
                    .or_default() += sign;
            }
        }
    }
    let mut rows = Vec::new();
    for (row, count) in counts {
        assert!(count >= 0, "{row} taken away more often than added");
        rows.extend(std::iter::repeat_n(row, count as usize));
    }
    rows
}

/// What the other streams hold, changelogs applied.
fn more_outputs(server: &RunnelServer) -> Vec<(String, Vec<String>)> {
    vec![
        ("per_key".into(), applied(&records_of(server, "per_key"))),
        ("top".into(), applied(&records_of(server, "top"))),
        ("pairs".into(), records_of(server, "pairs")),
        ("extremes".into(), applied(&records_of(server, "extremes"))),
        ("joined".into(), applied(&records_of(server, "joined"))),
        ("running".into(), records_of(server, "running")),
        ("rises".into(), records_of(server, "rises")),
    ]
}

/// The windows (key, second) the input has before the closing record.
fn expected_rows() -> usize {
    let windows: std::collections::BTreeSet<(i64, i64)> = (0..RECORDS)
        .map(|i| (i as i64 % KEYS, i as i64 * 13 / 1000))
        .collect();
    windows.len()
}

fn start(data: &std::path::Path) -> RunnelServer {
    RunnelServer::builder()
        .data_dir(data)
        .arg("--no-shard-limits")
        .start()
}

/// Creates the streams and submits the job; its id.
fn set_up(server: &RunnelServer, sql: &str) -> String {
    for (stream, shards) in [
        ("in", 2),
        ("out", 1),
        ("per_key", 1),
        ("top", 1),
        ("pairs", 1),
        ("extremes", 1),
        ("joined", 1),
        ("running", 1),
        ("rises", 1),
    ] {
        call(
            server,
            "CreateStream",
            json!({"StreamName": stream, "ShardCount": shards}),
        );
    }
    let mut response = crate::harness::agent()
        .post(&format!("{}/v1/jobs", server.url()))
        .header("Content-Type", "application/json")
        .send(json!({"sql": sql, "name": "totals", "parallelism": 2}).to_string())
        .unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    assert_eq!(response.status(), 201, "{text}");
    let job: Value = serde_json::from_str(&text).unwrap();
    job["id"].as_str().unwrap().to_string()
}

/// Waits until the output has every window, then a little longer, so
/// that a duplicate written late would be seen.
fn settled_output(server: &RunnelServer) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = output(server);
        if rows.len() >= expected_rows() {
            std::thread::sleep(Duration::from_millis(1500));
            return output(server);
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} windows after 60 s\n{}",
            rows.len(),
            expected_rows(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_checkpointed_job_killed_three_times_writes_what_one_never_killed_writes() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut random = seed;
    let mut next_delay = || {
        random = random
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Duration::from_millis((random >> 33) % 900)
    };

    let reference_dir = tempfile::tempdir().unwrap();
    let job = format!("{JOB}{MORE}");
    let reference = start(reference_dir.path());
    set_up(&reference, &job);
    put(&reference, 0..RECORDS + 2);
    let expected = settled_output(&reference);
    assert_eq!(expected.len(), expected_rows());
    let expected_more = more_outputs(&reference);
    for (stream, rows) in &expected_more {
        assert!(!rows.is_empty(), "{stream} is empty");
    }

    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path());
    let id = set_up(&server, &job);
    let phases = [0, 300, 600, 900, RECORDS + 2];
    for phase in phases.windows(2).take(3) {
        put(&server, phase[0]..phase[1]);
        std::thread::sleep(next_delay());
        server.kill();
        server = start(data.path());
    }
    put(&server, phases[3]..phases[4]);
    let got = settled_output(&server);
    assert_eq!(
        got.len(),
        expected.len(),
        "seed {seed}: rows twice or lost\n{}",
        server.log()
    );
    assert_eq!(got, expected, "seed {seed}");
    // The windows are all out, so everything before the closing records
    // has been read and the checkpoint after it taken.
    std::thread::sleep(Duration::from_millis(500));
    for ((stream, got), (_, expected)) in more_outputs(&server).iter().zip(&expected_more) {
        assert_eq!(got.len(), expected.len(), "seed {seed}: {stream}");
        assert_eq!(got, expected, "seed {seed}: {stream}");
    }
    let job: Value = crate::harness::agent()
        .get(&format!("{}/v1/jobs/{id}", server.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert!(job["checkpoints"]["restored_from"].is_u64(), "{job}");
    assert!(
        !job["checkpoints"]["completed"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{job}"
    );
}

fn cli(server: &RunnelServer, args: &[&str]) -> String {
    let output = std::process::Command::new(crate::harness::runnel_bin())
        .args(["jobs", "--endpoint", &server.url()])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "runnel jobs {args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn job_status(server: &RunnelServer, id: &str) -> Value {
    crate::harness::agent()
        .get(&format!("{}/v1/jobs/{id}", server.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

fn wait_status(server: &RunnelServer, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = job_status(server, id);
        if job["status"] == status {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} never {status}: {job}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `runnel jobs stop --savepoint`, then `runnel jobs submit
/// --from-savepoint`: the second job goes on where the first stopped, and
/// together they write what one job never stopped writes, though its
/// script has a statement of the same kind before the first's, which
/// starts afresh instead of taking the first's state. SQL whose operators
/// do not take the savepoint's state does not start from it.
#[test]
fn a_savepoint_taken_by_the_cli_restores_into_a_new_job() {
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = start(reference_dir.path());
    set_up(&reference, JOB);
    put(&reference, 0..RECORDS + 2);
    let expected = settled_output(&reference);

    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    for (stream, shards) in [("in", 2), ("out", 1)] {
        call(
            &server,
            "CreateStream",
            json!({"StreamName": stream, "ShardCount": shards}),
        );
    }
    let script = data.path().join("totals.sql");
    std::fs::write(&script, JOB).unwrap();
    let script = script.to_str().unwrap();
    let first = cli(&server, &["submit", script, "--parallelism", "2"]);
    let first = first.trim();
    put(&server, 0..600);
    std::thread::sleep(Duration::from_millis(400));
    let stopped = cli(&server, &["stop", first, "--savepoint", "half"]);
    assert!(stopped.contains("at savepoint half"), "{stopped}");
    wait_status(&server, first, "STOPPED");
    assert!(cli(&server, &["savepoints"]).contains("half"));

    put(&server, 600..RECORDS + 2);
    call(
        &server,
        "CreateStream",
        json!({"StreamName": "pairs_of_seconds", "ShardCount": 1}),
    );
    let (ddl, insert) = JOB.split_once("INSERT INTO").unwrap();
    let grown = data.path().join("grown.sql");
    std::fs::write(
        &grown,
        format!(
            "{ddl}CREATE TABLE pairs_of_seconds (window_start TIMESTAMP(3), n BIGINT)\n\
             WITH ('connector' = 'kinesis', 'stream' = 'pairs_of_seconds', 'format' = 'json');\n\
             INSERT INTO pairs_of_seconds SELECT window_start, COUNT(*)\n\
             FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '2' SECOND))\n\
             GROUP BY window_start, window_end;\nINSERT INTO{insert}"
        ),
    )
    .unwrap();
    let second = cli(
        &server,
        &[
            "submit",
            grown.to_str().unwrap(),
            "--parallelism",
            "2",
            "--from-savepoint",
            "half",
        ],
    );
    assert_eq!(settled_output(&server), expected);
    assert_eq!(job_status(&server, second.trim())["from_savepoint"], "half");

    let unwindowed = data.path().join("unwindowed.sql");
    std::fs::write(
        &unwindowed,
        format!("{ddl}INSERT INTO totals SELECT ts, k, CAST(1 AS BIGINT), v FROM events;"),
    )
    .unwrap();
    let changed = cli(
        &server,
        &[
            "submit",
            unwindowed.to_str().unwrap(),
            "--parallelism",
            "2",
            "--from-savepoint",
            "half",
        ],
    );
    let failed = wait_status(&server, changed.trim(), "FAILED");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("does not have"),
        "{failed}"
    );
}
