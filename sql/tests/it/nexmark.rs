//! Every Nexmark query against DataFusion in batch: the generator's events
//! are read once through Runnel, given to DataFusion as a table with the
//! same views, and each query's streaming answer (its changelog applied)
//! must be the batch answer over the same events. DataFusion has no window
//! table functions, so TUMBLE and HOP are written out (`batch_form`) and
//! q11's sessions are computed with LAG and a running SUM; q10's answer is
//! the files it writes, and q12's processing-time windows are checked for
//! what does not depend on timing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{CsvReadOptions, SessionConfig, SessionContext};
use runnel_connectors::Connectors;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_engine::sink::{BatchSink, CollectSink};
use runnel_sql::Session;
use tokio::runtime::Runtime;

use crate::support::{rendered, run_script};

const EVENTS: u64 = 20_000;

/// One event a millisecond, so no two events share a time and "the latest
/// row" is never a tie; 20 s of event time.
const RATE: u64 = 1000;

/// Ten events a second: 2,000 s of event time, so q10's rows fall into
/// many minutes (its `hm` column), and bids come at multiples of 100 ms, so
/// some bidder's next bid comes exactly q11's gap (10 s) after the last.
const SLOW_RATE: u64 = 10;

/// The generator's rate for a query.
fn rate_of(query: &str) -> u64 {
    match query {
        "q10" | "q11" => SLOW_RATE,
        _ => RATE,
    }
}

/// The side table of q13, as `runnel bench` and Flink's side_input_gen
/// write it: keys 0..9999, each with its own value.
const SIDE_KEYS: i64 = 10_000;

/// A query's streaming rows are the same as its batch answer.
const SAME_ROWS: &[&str] = &[
    "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q11", "q13", "q14", "q15", "q16",
    "q17", "q18", "q19", "q20", "q21", "q22",
];

/// Each `TABLE(TUMBLE(...))` and `TABLE(HOP(...))` as a subquery DataFusion
/// can run: the rows of the table with their windows (a HOP row once per
/// window it falls in), aligned to the epoch by `date_bin` as Flink aligns
/// them.
/// DATE_FORMAT's Java patterns (Runnel's, as Flink's) in DataFusion's own
/// date_format, whose chrono patterns answer for them independently.
fn java_patterns_as_chrono(select: &str) -> String {
    select
        .replace("'yyyy-MM-dd'", "'%Y-%m-%d'")
        .replace("'HH:mm'", "'%H:%M'")
}

fn batch_form(select: &str) -> String {
    // REGEXP_EXTRACT is Runnel's; DataFusion's own regexp_match answers
    // for it, independently.
    let mut out = java_patterns_as_chrono(&select.replace(
        "REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)",
        "regexp_match(url, '(&|^)channel_id=([^&]*)')[2]",
    ));
    while let Some(start) = out.find("TABLE(") {
        let open = start + "TABLE".len();
        let close = matching_paren(&out, open);
        let call = out[open + 1..close].trim();
        let (function, rest) = call.split_once('(').unwrap();
        let args: Vec<&str> = rest
            .trim_end_matches(')')
            .split(',')
            .map(str::trim)
            .collect();
        let table = args[0].strip_prefix("TABLE ").unwrap();
        let column = args[1]
            .strip_prefix("DESCRIPTOR(")
            .unwrap()
            .trim_end_matches(')');
        let seconds: Vec<&str> = args[2..]
            .iter()
            .map(|a| a.split('\'').nth(1).unwrap())
            .collect();
        let bin = |size: &str| format!("date_bin(INTERVAL '{size}' SECOND, \"{column}\")");
        let replacement = match (function.trim(), seconds.as_slice()) {
            ("TUMBLE", [size]) => format!(
                "(SELECT *, {} AS window_start, {} + INTERVAL '{size}' SECOND AS window_end FROM {table})",
                bin(size),
                bin(size),
            ),
            // A row at t is in the windows starting at its slide's start and
            // at each of the size/slide - 1 slides before it.
            ("HOP", [slide, size]) => {
                let slides = size.parse::<u64>().unwrap() / slide.parse::<u64>().unwrap();
                let backs: Vec<String> = (0..slides)
                    .map(|i| format!("(INTERVAL '{}' SECOND)", i * slide.parse::<u64>().unwrap()))
                    .collect();
                format!(
                    "(SELECT *, {bin} - hop_back AS window_start, \
                     {bin} - hop_back + INTERVAL '{size}' SECOND AS window_end \
                     FROM {table} CROSS JOIN (SELECT column1 AS hop_back FROM (VALUES {})))",
                    backs.join(", "),
                    bin = bin(slide),
                )
            }
            other => panic!("no batch form for {other:?}"),
        };
        out.replace_range(start..=close, &replacement);
    }
    out
}

fn matching_paren(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {text}")
}

fn bench_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/nexmark");
    std::fs::read_to_string(root.join(path)).unwrap()
}

fn ddl(rate: u64) -> String {
    bench_file("ddl.sql")
        .replace("${TPS}", &rate.to_string())
        .replace("${EVENTS_NUM}", &EVENTS.to_string())
}

/// A query file's statements, comments dropped and `${OUTPUT_DIR}` filled in.
fn statements(query: &str, dir: &Path) -> Vec<String> {
    bench_file(&format!("queries/{query}.sql"))
        .replace("${OUTPUT_DIR}", &dir.display().to_string())
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The statements a query needs besides its sink (views, side tables), and
/// its INSERT's SELECT.
fn parts(query: &str, dir: &Path) -> (Vec<String>, String) {
    let mut before = Vec::new();
    let mut select = None;
    for statement in statements(query, dir) {
        if statement.starts_with(&format!("CREATE TABLE nexmark_{query} ")) {
            continue;
        }
        match statement.strip_prefix(&format!("INSERT INTO nexmark_{query}")) {
            Some(insert) => select = Some(insert.trim().to_string()),
            None => before.push(statement),
        }
    }
    (before, select.unwrap())
}

struct Batches(CollectSink);

impl SinkProvider for Batches {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(CollectSink {
            batches: self.0.batches.clone(),
        }))
    }
}

/// Every generated event, as the table's physical columns.
fn events(rate: u64) -> Vec<RecordBatch> {
    let mut session = Session::new(Arc::new(Connectors::default()));
    let script = format!(
        "{}\nSELECT event_type, person, auction, bid FROM datagen",
        ddl(rate)
    );
    let submitted = session.submit_blocking(&script).unwrap();
    let sink = CollectSink::default();
    submitted
        .job
        .run(
            &Cluster::local(1),
            Arc::new(JobContext::default()),
            Arc::new(Batches(CollectSink {
                batches: sink.batches.clone(),
            })),
        )
        .unwrap();
    let events: Vec<RecordBatch> = sink.take().into_iter().map(|(_, b)| b).collect();
    assert_eq!(
        events.iter().map(RecordBatch::num_rows).sum::<usize>() as u64,
        EVENTS
    );
    events
}

fn runnel(query: &str, dir: &Path, workers: usize) -> Vec<String> {
    let (before, select) = parts(query, dir);
    let mut script = ddl(rate_of(query));
    for statement in before {
        script.push_str(&format!("\n{statement};"));
    }
    run_script(&format!("{script}\n{select};"), workers).1
}

/// The views of `ddl.sql`, as its CREATE VIEW statements.
fn views() -> Vec<String> {
    ddl(RATE)
        .split(';')
        .map(str::trim)
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| s.trim_start().starts_with("CREATE VIEW"))
        .collect()
}

/// DataFusion over the events, with the views of `ddl.sql` and q13's side
/// table.
async fn batch_context(events: &[RecordBatch]) -> SessionContext {
    let mut config = SessionConfig::new();
    config.options_mut().sql_parser.enable_ident_normalization = false;
    // Flink's `0.908` is a DECIMAL, as Runnel's.
    config.options_mut().sql_parser.parse_float_as_decimal = true;
    let context = SessionContext::new_with_config(config);
    runnel_sql::register_flink_functions(&context).unwrap();
    // DataFusion's own date_format (`to_char`), to check DATE_FORMAT against.
    context.register_udf(datafusion::functions::datetime::to_char().as_ref().clone());
    let table = MemTable::try_new(events[0].schema(), vec![events.to_vec()]).unwrap();
    context.register_table("events", Arc::new(table)).unwrap();
    context
        .sql(
            "CREATE VIEW datagen AS SELECT event_type, person, auction, bid, \
             CASE WHEN event_type = 0 THEN person['dateTime'] \
                  WHEN event_type = 1 THEN auction['dateTime'] \
                  ELSE bid['dateTime'] END AS \"dateTime\" FROM events",
        )
        .await
        .unwrap();
    for view in views() {
        context.sql(&view).await.unwrap();
    }
    let side = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("key", DataType::Int64, true),
            Field::new("value", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(0..SIDE_KEYS)),
            Arc::new(StringArray::from_iter_values(
                (0..SIDE_KEYS).map(|k| k.to_string()),
            )),
        ],
    )
    .unwrap();
    let side = MemTable::try_new(side.schema(), vec![vec![side]]).unwrap();
    context
        .register_table("side_input", Arc::new(side))
        .unwrap();
    context
}

async fn sql(context: &SessionContext, query: &str) -> Vec<String> {
    let batches = context.sql(query).await.unwrap().collect().await.unwrap();
    rendered(&batches)
}

/// q11 in batch: per bidder, a bid opens a new session when it comes more
/// than the gap after the bidder's previous bid (a bid exactly the gap
/// later still joins it, as Flink's session windows merge windows that
/// touch); a running SUM of those openings numbers the sessions.
const Q11_BATCH: &str = "
    SELECT bidder, count(*) AS bid_count, MIN(\"dateTime\") AS starttime,
           MAX(\"dateTime\") + INTERVAL '10' SECOND AS endtime
    FROM (
        SELECT bidder, \"dateTime\",
               SUM(opens) OVER (PARTITION BY bidder ORDER BY \"dateTime\"
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session
        FROM (
            SELECT bidder, \"dateTime\",
                   CASE WHEN \"dateTime\" - LAG(\"dateTime\") OVER (PARTITION BY bidder ORDER BY \"dateTime\")
                             <= INTERVAL '10' SECOND
                        THEN 0 ELSE 1 END AS opens
            FROM bid))
    GROUP BY bidder, session";

/// The batch answer of a query whose rows are compared.
async fn batch_answer(context: &SessionContext, query: &str, dir: &Path) -> Vec<String> {
    let (_, select) = parts(query, dir);
    let select = match query {
        "q11" => Q11_BATCH.to_string(),
        // A lookup join against a table that does not change is a join.
        "q13" => select
            .replace("FOR SYSTEM_TIME AS OF B.p_time", "")
            .replace("PROCTIME()", "now()"),
        _ => batch_form(&select),
    };
    sql(context, &select).await
}

/// q10 writes its rows to files partitioned by date and minute, as Flink
/// does: `dt=.../hm=.../part-N.csv` without those two columns, the
/// values escaped as Flink escapes them (`10:00` -> `10%3A00`). Read back
/// by DataFusion with each file's directory values put back, they are the
/// SELECT's batch answer.
fn check_q10(runtime: &Runtime, context: &SessionContext, failures: &mut Vec<String>) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let (_, select) = parts("q10", dir.path());
    let expected = runtime.block_on(sql(context, &java_patterns_as_chrono(&select)));
    let minutes: std::collections::BTreeSet<&str> = expected
        .iter()
        .map(|r| r.rsplit(", ").next().unwrap())
        .collect();
    assert!(minutes.len() > 1, "q10's rows span one minute: {minutes:?}");
    for workers in [1, 2] {
        let out = dir.path().join(format!("w{workers}"));
        let script = format!(
            "{}\n{};",
            ddl(rate_of("q10")),
            statements("q10", &out).join(";\n")
        );
        run_script(&script, workers);
        let schema = Schema::new(vec![
            Field::new("auction", DataType::Int64, true),
            Field::new("bidder", DataType::Int64, true),
            Field::new("price", DataType::Int64, true),
            Field::new(
                "dateTime",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None),
                true,
            ),
            Field::new("extra", DataType::Utf8, true),
        ]);
        let mut got = Vec::new();
        for day in std::fs::read_dir(out.join("q10")).unwrap() {
            let day = day.unwrap().path();
            let dt = partition_value(&day, "dt");
            for minute in std::fs::read_dir(&day).unwrap() {
                let minute = minute.unwrap().path();
                let hm = partition_value(&minute, "hm").replace("%3A", ":");
                let files = SessionContext::new();
                got.extend(runtime.block_on(async {
                    files
                        .register_csv(
                            "part",
                            minute.to_str().unwrap(),
                            CsvReadOptions::new()
                                .has_header(false)
                                .schema(&schema)
                                .file_extension(".csv"),
                        )
                        .await
                        .unwrap();
                    sql(&files, &format!("SELECT *, '{dt}', '{hm}' FROM part")).await
                }));
            }
        }
        got.sort();
        compare("q10", workers, &got, &expected, failures);
    }
    expected.len()
}

/// The value of a `key=value` partition directory.
fn partition_value(dir: &Path, key: &str) -> String {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    name.strip_prefix(&format!("{key}="))
        .unwrap_or_else(|| panic!("{name} is not a {key}= directory"))
        .to_string()
}

/// q12's windows are of processing time, so which window a bid falls in
/// depends on when the engine read it, and rows cannot be compared. What
/// does not depend on timing: each bidder's counts add up to its bids,
/// each row is one 10 s window aligned to the epoch, and a bidder has at
/// most one row per window.
fn check_q12(
    runtime: &Runtime,
    context: &SessionContext,
    dir: &Path,
    failures: &mut Vec<String>,
) -> usize {
    let expected: BTreeMap<i64, i64> = runtime
        .block_on(sql(
            context,
            "SELECT bidder, count(*) FROM bid GROUP BY bidder",
        ))
        .iter()
        .map(|r| {
            let (bidder, count) = r[1..r.len() - 1].split_once(", ").unwrap();
            (bidder.parse().unwrap(), count.parse().unwrap())
        })
        .collect();
    for workers in [1, 2] {
        let rows = runnel("q12", dir, workers);
        let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
        let mut windows = std::collections::BTreeSet::new();
        for row in &rows {
            let fields: Vec<&str> = row[1..row.len() - 1].split(", ").collect();
            let [bidder, count, start, end] = fields[..] else {
                panic!("q12 row {row}");
            };
            let time = |t: &str| {
                chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
                    .unwrap_or_else(|e| panic!("{t}: {e}"))
                    .and_utc()
                    .timestamp_millis()
            };
            let (start, end) = (time(start), time(end));
            if end - start != 10_000 || start % 10_000 != 0 {
                failures.push(format!("q12 with {workers} worker(s): window of {row}"));
            }
            if !windows.insert((bidder.to_string(), start)) {
                failures.push(format!("q12 with {workers} worker(s): second row {row}"));
            }
            *counts.entry(bidder.parse().unwrap()).or_default() += count.parse::<i64>().unwrap();
        }
        if counts != expected {
            failures.push(format!(
                "q12 with {workers} worker(s): counts per bidder differ from the bids per bidder ({} bidders, batch {})",
                counts.len(),
                expected.len()
            ));
        }
    }
    expected.len()
}

fn compare(
    query: &str,
    workers: usize,
    got: &[String],
    expected: &[String],
    failures: &mut Vec<String>,
) {
    if got != expected {
        failures.push(format!(
            "{query} with {workers} worker(s): {} rows, batch {} rows; first difference: {:?}",
            got.len(),
            expected.len(),
            got.iter()
                .zip(expected)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("{a} vs {b}"))
        ));
    }
}

/// q19 numbers each auction's bids by price alone: two bids of one price
/// among an auction's top 10 could be numbered either way, and the
/// comparison would then fail without a bug. These events have none.
async fn assert_no_price_ties_in_top_10(context: &SessionContext) {
    let ties = sql(
        context,
        "SELECT auction, price FROM (
             SELECT auction, price,
                    ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rn,
                    LEAD(price) OVER (PARTITION BY auction ORDER BY price DESC) AS next
             FROM bid)
         WHERE rn <= 10 AND price = next",
    )
    .await;
    assert!(ties.is_empty(), "q19's top 10 have ties: {ties:?}");
}

#[test]
fn nexmark_queries_give_the_batch_answer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("side_input.csv"),
        (0..SIDE_KEYS)
            .map(|k| format!("{k},{k}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let contexts: BTreeMap<u64, SessionContext> = [RATE, SLOW_RATE]
        .into_iter()
        .map(|rate| (rate, runtime.block_on(batch_context(&events(rate)))))
        .collect();
    runtime.block_on(assert_no_price_ties_in_top_10(&contexts[&RATE]));
    let mut failures = Vec::new();
    let mut empty = Vec::new();
    for query in SAME_ROWS {
        let context = &contexts[&rate_of(query)];
        let expected = runtime.block_on(batch_answer(context, query, dir.path()));
        if expected.is_empty() {
            empty.push(*query);
        }
        for workers in [1, 2] {
            let got = runnel(query, dir.path(), workers);
            compare(query, workers, &got, &expected, &mut failures);
        }
    }
    if check_q10(&runtime, &contexts[&rate_of("q10")], &mut failures) == 0 {
        empty.push("q10");
    }
    if check_q12(
        &runtime,
        &contexts[&rate_of("q12")],
        dir.path(),
        &mut failures,
    ) == 0
    {
        empty.push("q12");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // An empty answer compares nothing: the inputs must make rows.
    assert!(empty.is_empty(), "no rows at {EVENTS} events: {empty:?}");
    let mut checked: Vec<String> = SAME_ROWS.iter().map(|q| q.to_string()).collect();
    checked.extend(["q10".to_string(), "q12".to_string()]);
    checked.sort();
    let mut suite: Vec<String> = (0..23).map(|i| format!("q{i}")).collect();
    suite.sort();
    assert_eq!(checked, suite, "every query of the suite is checked");
}

/// q11's oracle tells Flink's sessions (a bid exactly the gap after the
/// last one joins its session) from sessions that split there only if
/// such bids exist.
#[test]
fn q11_events_have_bids_exactly_a_gap_apart() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let context = runtime.block_on(batch_context(&events(rate_of("q11"))));
    let touching = runtime.block_on(sql(
        &context,
        "SELECT count(*) FROM (
             SELECT \"dateTime\" - LAG(\"dateTime\") OVER (PARTITION BY bidder ORDER BY \"dateTime\") AS since
             FROM bid)
         WHERE since = INTERVAL '10' SECOND",
    ));
    assert_ne!(touching, ["[0]"]);
}
