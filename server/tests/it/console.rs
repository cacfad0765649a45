//! The web console: served at `/` to browsers (the banner stays for curl),
//! its files embedded with their types and cache headers, the stream
//! rates it charts, and the whole of it used in headless Chromium
//! (`py/console_browser.py` drives `js/console_browser.mjs`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{RunnelServer, agent, aws_json};
use crate::kinesis_e2e::run_script_with;

#[test]
fn a_browser_gets_the_console_and_curl_the_banner() {
    let server = RunnelServer::start();
    let url = server.url();
    let mut plain = agent().get(&url).call().unwrap();
    assert_eq!(plain.status(), 200);
    let banner = plain.body_mut().read_to_string().unwrap();
    assert!(banner.starts_with("Runnel "), "{banner}");
    assert!(banner.contains("AWS endpoint"), "{banner}");

    let mut page = agent()
        .get(&url)
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .call()
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["vary"], "Accept");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'")
    );
    let html = page.body_mut().read_to_string().unwrap();
    assert!(html.contains("/console/js/app.js"), "{html}");

    // A copy the browser holds is confirmed, not sent again.
    let etag = headers["etag"].to_str().unwrap().to_string();
    let again = agent()
        .get(&url)
        .header("Accept", "text/html")
        .header("If-None-Match", &etag)
        .call()
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[test]
fn console_files_have_their_types_and_unknown_ones_are_404() {
    let server = RunnelServer::start();
    for (path, kind) in [
        ("/console/js/app.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        (
            "/console/vendor/hls.light.min.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/console/vendor/hls.js-LICENSE.txt",
            "text/plain; charset=utf-8",
        ),
    ] {
        let mut response = agent()
            .get(format!("{}{path}", server.url()))
            .call()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], kind, "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(!response.body_mut().read_to_vec().unwrap().is_empty());
    }
    for path in ["/console/nope.js", "/console/../Cargo.toml", "/console/js"] {
        let response = agent()
            .get(format!("{}{path}", server.url()))
            .call()
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

fn kinesis(server: &RunnelServer, operation: &str, body: Value) -> Value {
    let (status, out) = aws_json(
        &server.url(),
        &format!("Kinesis_20131202.{operation}"),
        &body,
    )
    .unwrap();
    assert_eq!(status, 200, "{operation}: {out}");
    out
}

fn overview(server: &RunnelServer, stream: &str) -> (u16, Value) {
    let mut response = agent()
        .get(format!("{}/v1/console/streams/{stream}", server.url()))
        .call()
        .unwrap();
    (
        response.status().as_u16(),
        response.body_mut().read_json().unwrap(),
    )
}

fn sum(series: &Value) -> u64 {
    series
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

/// The rates of the last whole seconds, once they hold `records` in and
/// out (the running second is left out of them).
fn settled_rates(server: &RunnelServer, stream: &str, records: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = overview(server, stream);
        assert_eq!(status, 200, "{body}");
        let rates = body["rates"].clone();
        let settled = sum(&rates["records_in"]) == records && sum(&rates["records_out"]) == records;
        if settled || Instant::now() > deadline {
            return rates;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn stream_rates_count_accepted_puts_and_records_read() {
    let server = RunnelServer::start();
    kinesis(
        &server,
        "CreateStream",
        json!({"StreamName": "rated", "ShardCount": 2}),
    );
    let (status, body) = overview(&server, "rated");
    assert_eq!(status, 200, "{body}");
    let shards = body["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    assert_eq!(shards[0]["starting_hash_key"], "0");
    assert_eq!(
        shards[1]["ending_hash_key"],
        "340282366920938463463374607431768211455"
    );
    assert_eq!(body["rates"]["records_in"].as_array().unwrap().len(), 300);

    // 3 records of 4 bytes, then 1 of 10: 22 bytes in all.
    let four = "AAAAAA==";
    kinesis(
        &server,
        "PutRecords",
        json!({"StreamName": "rated", "Records": [
            {"Data": four, "PartitionKey": "a"},
            {"Data": four, "PartitionKey": "b"},
            {"Data": four, "PartitionKey": "c"},
        ]}),
    );
    kinesis(
        &server,
        "PutRecord",
        json!({"StreamName": "rated", "Data": "AAAAAAAAAAAAAA==", "PartitionKey": "d"}),
    );
    let mut read = 0;
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let iterator = kinesis(
            &server,
            "GetShardIterator",
            json!({"StreamName": "rated", "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )["ShardIterator"]
            .clone();
        let out = kinesis(&server, "GetRecords", json!({"ShardIterator": iterator}));
        read += out["Records"].as_array().unwrap().len();
    }
    assert_eq!(read, 4);
    let rates = settled_rates(&server, "rated", 4);
    assert_eq!(sum(&rates["records_in"]), 4, "{rates}");
    assert_eq!(sum(&rates["bytes_in"]), 22, "{rates}");
    assert_eq!(sum(&rates["records_out"]), 4, "{rates}");
    assert_eq!(sum(&rates["bytes_out"]), 22, "{rates}");

    // A stream made again under the name starts from nothing.
    kinesis(&server, "DeleteStream", json!({"StreamName": "rated"}));
    let (status, _) = overview(&server, "rated");
    assert_eq!(status, 404);
    kinesis(
        &server,
        "CreateStream",
        json!({"StreamName": "rated", "ShardCount": 1}),
    );
    let (_, body) = overview(&server, "rated");
    assert_eq!(sum(&body["rates"]["records_in"]), 0, "{body}");
}

#[test]
fn console_endpoints_answer_404_for_what_does_not_exist() {
    let server = RunnelServer::start();
    for path in [
        "/v1/console/streams/nothing",
        "/v1/console/firehose/nothing",
        "/v1/console/firehose/nothing/objects",
    ] {
        let mut response = agent()
            .get(format!("{}{path}", server.url()))
            .call()
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.body_mut().read_json().unwrap();
        assert!(body["message"].as_str().is_some(), "{path}: {body}");
    }
}

/// Where the screenshots go: beside the build when CARGO_TARGET_DIR says
/// where that is, else a directory of their own that outlives the test.
fn screenshot_dir() -> PathBuf {
    let dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => PathBuf::from(target).join("console-screenshots"),
        None => tempfile::Builder::new()
            .prefix("console-screenshots-")
            .tempdir()
            .unwrap()
            .keep(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The console in headless Chromium: a stream created and read in the
/// data viewer, resharded; a SQL job submitted (a refusal marked at its
/// line) and its rows arriving live; a delivery stream's objects; archived
/// and live video played through hls.js; a screenshot of each page.
#[test]
fn the_console_in_headless_chromium_creates_reads_submits_and_plays() {
    let modules = crate::harness::browser_node_modules(&["playwright-core/index.mjs"]);
    let shots = screenshot_dir();
    println!("console screenshots: {}", shots.display());
    let server = RunnelServer::start();
    let shots = shots.display().to_string();
    run_script_with(
        &server,
        "console_browser.py",
        &[modules.as_str(), shots.as_str()],
    );
}

/// With an access key configured, the console asks for it, refuses a
/// wrong secret, works on its session cookie, and signs out
/// (`py/console_signin.py` drives `js/console_signin.mjs`).
#[test]
fn the_console_signs_in_with_an_access_key_and_out() {
    let modules = crate::harness::browser_node_modules(&["playwright-core/index.mjs"]);
    let server = RunnelServer::builder()
        .env("RUNNEL_ACCESS_KEY_ID", "AKIATEST")
        .env("RUNNEL_SECRET_ACCESS_KEY", "secret")
        .start();
    run_script_with(
        &server,
        "console_signin.py",
        &[modules.as_str(), "AKIATEST", "secret"],
    );
}
