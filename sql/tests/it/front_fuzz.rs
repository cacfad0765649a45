//! Statements made of random pieces of the syntax Runnel rewrites before
//! DataFusion (UNNEST joins, OVER windows, CREATE TABLE ... LIKE, SHOW,
//! IS JSON, JSON_OBJECT, BETWEEN SYMMETRIC, LIKE ... ESCAPE):
//! each is answered or refused, never a panic.

use std::sync::Arc;

use proptest::prelude::*;
use runnel_connectors::Connectors;
use runnel_sql::Session;

const PIECES: &[&str] = &[
    "SELECT",
    "*",
    "id",
    "n",
    "t.n",
    "o.id",
    "FROM",
    "a",
    "AS",
    "o",
    "t",
    "CROSS",
    "JOIN",
    "LEFT",
    "OUTER",
    "UNNEST",
    "(",
    ")",
    "nums",
    "m",
    "tags",
    "WITH",
    "ORDINALITY",
    ",",
    "ON",
    "TRUE",
    "WHERE",
    ">",
    "1",
    "SUM",
    "OVER",
    "PARTITION",
    "BY",
    "ORDER",
    "ts",
    "ROWS",
    "RANGE",
    "BETWEEN",
    "PRECEDING",
    "AND",
    "CURRENT",
    "ROW",
    "INTERVAL",
    "'1'",
    "SECOND",
    "UNBOUNDED",
    "FOLLOWING",
    "CREATE",
    "TABLE",
    "LIKE",
    "INCLUDING",
    "EXCLUDING",
    "OVERWRITING",
    "ALL",
    "OPTIONS",
    "WATERMARKS",
    "SHOW",
    "FUNCTIONS",
    "ARRAY",
    "[",
    "]",
    "WINDOW",
    "w",
    ".",
];

const TABLES: &str = "CREATE TABLE a (id BIGINT, nums ARRAY<INT>, tags ARRAY<STRING>, m MAP<STRING, INT>, \
    ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
    WITH ('connector' = 'filesystem', 'path' = 'tests/flink/data/a.jsonl', 'format' = 'json');";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn rewritten_syntax_is_answered_or_refused(pieces in proptest::collection::vec(0..PIECES.len(), 1..24)) {
        let statement: Vec<&str> = pieces.iter().map(|&i| PIECES[i]).collect();
        let script = format!("{TABLES}\n{}", statement.join(" "));
        let mut session = Session::new(Arc::new(Connectors::default()));
        // Ok or a refusal: either is fine; a panic fails the test.
        let _ = session.submit_blocking(&script);
    }

    #[test]
    fn unnest_joins_with_random_tails_are_answered_or_refused(tail in proptest::collection::vec(0..PIECES.len(), 0..12)) {
        let tail: Vec<&str> = tail.iter().map(|&i| PIECES[i]).collect();
        let script = format!("{TABLES}\nSELECT id FROM a AS o CROSS JOIN UNNEST(o.nums) {}", tail.join(" "));
        let mut session = Session::new(Arc::new(Connectors::default()));
        let _ = session.submit_blocking(&script);
    }
}

#[test]
fn the_fuzzed_table_is_a_valid_one() {
    let mut session = Session::new(Arc::new(Connectors::default()));
    let script = format!("{TABLES}\nSELECT id, n FROM a AS o CROSS JOIN UNNEST(o.nums) AS t (n)");
    session.submit_blocking(&script).unwrap();
}
