//! `runnel bench nexmark`: the suite end to end with the real binary, and
//! the export other engines read.

use std::process::{Command, Output};

use crate::harness::runnel_bin;

fn run(args: &[&str]) -> Output {
    Command::new(runnel_bin())
        .args(args)
        .output()
        .expect("run runnel")
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn the_suite_runs_every_query() {
    for workers in ["1", "2"] {
        let output = run(&[
            "bench",
            "nexmark",
            "--query",
            "all",
            "--events",
            "20000",
            "--json",
            "--workers",
            workers,
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let reports = json_lines(&output);
        assert_eq!(reports.len(), 23);
        for (i, report) in reports.iter().enumerate() {
            let query = report["query"].as_str().unwrap();
            assert_eq!(query, format!("q{i}"));
            // Every query runs and has output, even over 20,000 events.
            assert!(report.get("status").is_none(), "{report}");
            assert_eq!(report["events"], 20000, "{report}");
            for key in [
                "wall_seconds",
                "cpu_seconds",
                "cores",
                "events_per_second",
                "events_per_second_per_core",
            ] {
                assert!(report[key].as_f64().unwrap() > 0.0, "{key}: {report}");
            }
            assert!(report["output_rows"].as_u64().unwrap() > 0, "{report}");
        }
        // 92% of the events are bids, and q0 passes every bid through.
        assert_eq!(reports[0]["output_rows"], 18400);
    }
}

#[test]
fn one_query_prints_one_line_and_unknown_queries_fail() {
    let output = run(&["bench", "nexmark", "--query", "q1", "--events", "5000"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("q1 "), "{stdout}");
    let output = run(&["bench", "nexmark", "--query", "q99", "--events", "5000"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown query 'q99'"));
}

#[test]
fn exported_events_are_json_lines_that_runnel_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let output = run(&[
        "bench",
        "nexmark",
        "--export",
        events.to_str().unwrap(),
        "--events",
        "5000",
        "--quiet",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5000);
    assert!(lines[0]["person"]["dateTime"].as_str().unwrap().len() == 23);
    // The same DDL over the file instead of the generator: the bids are
    // all there, in the same order.
    let ddl = include_str!("../../../benches/nexmark/ddl.sql");
    let start = ddl.find("'connector' = 'nexmark'").unwrap();
    let end = start + ddl[start..].find(");").unwrap();
    let script = format!(
        "{}'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'\n{}\nSELECT auction, bidder, price FROM bid;\n",
        &ddl[..start],
        events.display(),
        &ddl[end..]
    );
    let path = dir.path().join("read.sql");
    std::fs::write(&path, script).unwrap();
    let output = run(&["sql", "run", "--quiet", "--file", path.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = lines
        .iter()
        .filter(|l| l["event_type"] == 2)
        .map(|l| {
            let bid = &l["bid"];
            format!(
                "+I[{}, {}, {}]",
                bid["auction"], bid["bidder"], bid["price"]
            )
        })
        .collect();
    assert_eq!(expected.len(), 4600);
    assert_eq!(rows, expected);
}

/// `runnel bench streams` against a server that checks signatures: every
/// record put is read back once, by polling and by a subscription, and the
/// report says so.
#[test]
fn the_streams_load_tool_puts_reads_back_and_reports() {
    let server = crate::harness::RunnelServer::builder()
        .env("RUNNEL_ACCESS_KEY_ID", "AKIABENCH")
        .env("RUNNEL_SECRET_ACCESS_KEY", "bench-secret")
        .start();
    for consumer in ["polling", "efo"] {
        let stream = format!("load-{consumer}");
        let output = Command::new(runnel_bin())
            .args([
                "bench",
                "streams",
                "--endpoint",
                &server.url(),
                "--stream",
                &stream,
            ])
            .args([
                "--create",
                "--shards",
                "2",
                "--rate",
                "400",
                "--record-size",
                "100",
            ])
            .args([
                "--duration",
                "2",
                "--producers",
                "2",
                "--consumer",
                consumer,
                "--json",
            ])
            .env("RUNNEL_ACCESS_KEY_ID", "AKIABENCH")
            .env("RUNNEL_SECRET_ACCESS_KEY", "bench-secret")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let report = &json_lines(&output)[0];
        let records = &report["records"];
        assert_eq!(records["sent"], 800, "{report}");
        assert_eq!(records["acknowledged"], 800, "{report}");
        assert_eq!(records["received"], 800, "{report}");
        assert_eq!(records["missing"], 0, "{report}");
        assert_eq!(records["duplicates"], 0, "{report}");
        assert_eq!(report["put_records_latency"]["count"], 800 / 20, "{report}");
        assert_eq!(report["put_to_get_latency"]["count"], 800, "{report}");
        assert!(report["in"]["mb_per_s"].as_f64().unwrap() > 0.0, "{report}");
    }
    let unsigned = Command::new(runnel_bin())
        .args(["bench", "streams", "--endpoint", &server.url(), "--create"])
        .env_remove("RUNNEL_ACCESS_KEY_ID")
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .unwrap();
    assert!(!unsigned.status.success());
    assert!(
        String::from_utf8_lossy(&unsigned.stderr).contains("MissingAuthenticationTokenException"),
        "{unsigned:?}"
    );
}
