//! Flink's built-in functions, answered by Runnel and compared with the
//! answers real Apache Flink gave (`tests/flink/functions.expected.json`,
//! written by `scripts/flink_oracle.py`; no Flink is needed here).
//!
//! Each case must give Flink's rows, or be refused when it is submitted.
//! A different answer, or a failure at run time where Flink answered, fails
//! the test: a silently different answer is the worst bug there is.

use std::sync::Arc;

use runnel_connectors::Connectors;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_sql::Session;
use serde_json::Value;

use crate::support::Collected;

/// How many cases gave Flink's answer when this was last raised: a change
/// that makes Runnel refuse what it answered before fails here.
const MATCHING_AT_LEAST: usize = 1560;

/// Cases where Flink's answer is not the one its documented semantics
/// give, with the rows Runnel must give instead and why.
const FLINK_DIVERGES: &[(&str, &[&str], &str)] = &[
    (
        "SELECT * FROM m MATCH_RECOGNIZE (PARTITION BY sym ORDER BY ts MEASURES A.price AS a, LAST(B.price) AS b, COUNT(B.price) AS n ONE ROW PER MATCH PATTERN (A B{1,3} C) DEFINE B AS B.price > A.price, C AS C.price < 14) AS T",
        &[
            "ACME, 12, 16, 3",
            "ACME, 13, 16, 2",
            "ACME, 14, 16, 1",
            "ACME, 14, 19, 3",
            "ACME, 7, 10, 2",
            "ACME, 9, 10, 1",
            "XYZ, 1, 6, 3",
            "XYZ, 2, 9, 1",
            "XYZ, 4, 6, 2",
        ],
        "XYZ's rows 1, 4, 6, 6, 3 hold two matches that end at the row 3: A=1 with B=4,6,6 and \
     A=4 with B=6,6. Flink 2.3 gives only the second: its CEP shared buffer names every state \
     of B{1,3} 'B', so the two partial matches, which take the rows 6 at different counts, \
     share buffer entries, and the first match is read back along the second's rows (with \
     B{3} alone, which the second cannot match, Flink gives the first; with C also requiring \
     COUNT(B.price) = 3 it gives neither)",
    ),
    (
        "SIGN(CAST(-3 AS TINYINT))",
        &["-1"],
        "Flink 2.3 cannot run it: the Java it generates for SIGN of a TINYINT (or SMALLINT) \
         assigns an int to a byte (a short) and does not compile; SIGN's answer is -1, which \
         INT and BIGINT give in Flink",
    ),
];

enum Outcome {
    Rows(Vec<String>),
    Refused(String),
    FailedAtRun(String),
}

fn ddl(tables: &serde_json::Map<String, Value>, formats: &Value) -> String {
    tables
        .iter()
        .map(|(name, columns)| {
            let format = formats[name.as_str()].as_str().unwrap_or("json");
            format!(
                "CREATE TABLE {name} ({}) WITH ('connector' = 'filesystem', \
                 'path' = 'tests/flink/data/{name}.jsonl', 'format' = '{format}');\n",
                columns.as_str().unwrap()
            )
        })
        .collect()
}

fn run(ddl: &str, sql: &str) -> Outcome {
    let query = if sql.to_ascii_uppercase().starts_with("SELECT ") {
        sql.to_string()
    } else {
        format!("SELECT {sql} FROM t")
    };
    let mut session = Session::new(Arc::new(Connectors::default()));
    let submitted = match session.submit_blocking(&format!("{ddl}{query}")) {
        Ok(submitted) => submitted,
        Err(error) => return Outcome::Refused(error.to_string()),
    };
    let rows = Collected::default();
    // A panic in the job is a failure at run time, not the test's end.
    let job = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        submitted.job.run(
            &Cluster::local(1),
            Arc::new(JobContext::default()),
            Arc::new(rows.clone()),
        )
    }));
    match job {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return Outcome::FailedAtRun(error.to_string()),
        Err(_) => return Outcome::FailedAtRun("panicked".to_string()),
    }
    let mut rows: Vec<String> = rows
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            r.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .unwrap_or(r)
                .to_string()
        })
        .collect();
    rows.sort();
    Outcome::Rows(rows)
}

/// Rows are Flink's when their text is, or when they differ only in the
/// last bit of a double: Java's `Math.sin` and libm's may round the last
/// place apart, and no query can depend on it. Equal values written
/// differently (`-2.0` for `-2`) are a different answer: the type shows.
fn same_rows(runnel: &[String], flink: &[String]) -> bool {
    runnel.len() == flink.len()
        && runnel.iter().zip(flink).all(|(a, b)| {
            a == b
                || match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(x), Ok(y)) => {
                        x != y && x.is_finite() && (x - y).abs() <= y.abs() * 4.0 * f64::EPSILON
                    }
                    _ => false,
                }
        })
}

#[test]
fn builtin_functions_answer_as_flink_does_or_are_refused() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).expect("cd");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/flink/functions.expected.json").unwrap(),
    )
    .unwrap();
    let ddl = ddl(
        expected["tables"].as_object().unwrap(),
        &expected["formats"],
    );
    let mut matching = 0;
    let mut refused = Vec::new();
    let mut extensions = Vec::new();
    let mut wrong = Vec::new();
    for case in expected["cases"].as_array().unwrap() {
        let sql = case["sql"].as_str().unwrap();
        let flink: Option<Vec<String>> = case.get("rows").map(|rows| {
            rows.as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect()
        });
        let not_in_flink = case["error"]
            .as_str()
            .is_some_and(|e| e.contains("No match found for function signature"));
        if let Some((_, rows, why)) = FLINK_DIVERGES.iter().find(|(s, _, _)| *s == sql) {
            match run(&ddl, sql) {
                Outcome::Rows(got) if got == *rows => {
                    eprintln!("differs from Flink on purpose: {sql}\n  {why}")
                }
                _ => wrong.push(format!("{sql}\n    expected {rows:?} ({why})")),
            }
            continue;
        }
        match (run(&ddl, sql), flink) {
            (Outcome::Rows(rows), Some(flink)) if same_rows(&rows, &flink) => matching += 1,
            // A function Flink does not have (DataFusion's `BOOL_AND`): no
            // Flink query can be answered differently by it.
            (Outcome::Rows(_), None) if not_in_flink => extensions.push(sql.to_string()),
            (Outcome::Rows(rows), Some(flink)) => {
                wrong.push(format!("{sql}\n    Flink: {flink:?}\n   Runnel: {rows:?}"))
            }
            (Outcome::Rows(rows), None) => wrong.push(format!(
                "{sql}\n    Flink: error {}\n   Runnel: {rows:?}",
                case["error"]
            )),
            (Outcome::Refused(why), Some(_)) => refused.push(format!("{sql}: {why}")),
            // Flink refuses it too, or fails on this row as Runnel does.
            (Outcome::Refused(_) | Outcome::FailedAtRun(_), None) => matching += 1,
            (Outcome::FailedAtRun(error), Some(flink)) => wrong.push(format!(
                "{sql}\n    Flink: {flink:?}\n   Runnel failed at run time: {error}"
            )),
        }
    }
    eprintln!("refused:\n  {}", refused.join("\n  "));
    eprintln!("not Flink's, answered: {}", extensions.join("; "));
    eprintln!(
        "{matching} cases answered as Flink {} answers them, {} refused, {} wrong",
        expected["flink"],
        refused.len(),
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "{} cases answered differently from Flink:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        matching >= MATCHING_AT_LEAST,
        "only {matching} cases answered as Flink does; {MATCHING_AT_LEAST} did before"
    );
}
