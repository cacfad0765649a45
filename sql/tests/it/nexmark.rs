//! Nexmark queries against DataFusion in batch: the generator's events are
//! read once through Runnel, given to DataFusion as a table with the same
//! views, and every query without window table functions (which DataFusion
//! lacks) must give the same rows as Runnel's streaming run, its changelog
//! applied.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use runnel_connectors::Connectors;
use runnel_engine::EngineError;
use runnel_engine::connector::SinkProvider;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_engine::sink::{BatchSink, CollectSink};
use runnel_sql::Session;

use crate::support::{rendered, run_script};

const EVENTS: u64 = 20_000;

/// Queries whose SQL runs in DataFusion batch unchanged, or with its
/// TUMBLE calls written out (`batch_form`).
const QUERIES: &[&str] = &[
    "q0", "q1", "q2", "q3", "q4", "q7", "q8", "q14", "q15", "q16", "q17", "q18", "q20", "q21",
    "q22",
];

/// `TABLE(TUMBLE(TABLE t, DESCRIPTOR(c), INTERVAL 'n' SECOND))` as a
/// subquery DataFusion can run: the rows of `t` with their window, which
/// `date_bin` aligns to the epoch as Flink does.
fn batch_form(select: &str) -> String {
    let mut out = select.to_string();
    while let Some(start) = out.find("TABLE(") {
        let rest = &out[start..];
        let Some(tumble) = rest.find("TUMBLE(TABLE ") else {
            break;
        };
        let call = &rest[tumble + "TUMBLE(TABLE ".len()..];
        let table = call.split(',').next().unwrap().trim().to_string();
        let column = call
            .split("DESCRIPTOR(")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
            .to_string();
        let seconds = call
            .split("INTERVAL '")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap()
            .to_string();
        // The call ends at the `))` closing TUMBLE( and TABLE(.
        let end = start + rest.find("SECOND))").unwrap() + "SECOND))".len();
        let window = format!("date_bin(INTERVAL '{seconds}' SECOND, \"{column}\")");
        let replacement = format!(
            "(SELECT *, {window} AS window_start, {window} + INTERVAL '{seconds}' SECOND AS window_end FROM {table})"
        );
        out.replace_range(start..end, &replacement);
    }
    out
}

fn bench_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/nexmark");
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// The DDL with one event a millisecond, so no two events share a time and
/// "the latest row" is never a tie.
fn ddl() -> String {
    bench_file("ddl.sql")
        .replace("${TPS}", "1000")
        .replace("${EVENTS_NUM}", &EVENTS.to_string())
}

/// The query's SELECT, without its sink table and INSERT INTO.
fn select_of(query: &str) -> String {
    let text = bench_file(&format!("queries/{query}.sql"));
    let insert = text.find("INSERT INTO").unwrap();
    let body = &text[insert..];
    let select = body.find("SELECT").unwrap();
    body[select..].trim().trim_end_matches(';').to_string()
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
fn events() -> Vec<RecordBatch> {
    let mut session = Session::new(Arc::new(Connectors));
    let script = format!(
        "{}\nSELECT event_type, person, auction, bid FROM datagen",
        ddl()
    );
    let submitted = session.submit(&script).unwrap();
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
    sink.take().into_iter().map(|(_, b)| b).collect()
}

fn runnel(query: &str, workers: usize) -> Vec<String> {
    run_script(&format!("{}\n{};", ddl(), select_of(query)), workers).1
}

/// The views of `ddl.sql`, as its CREATE VIEW statements.
fn views() -> Vec<String> {
    ddl()
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

async fn batch_answer(events: &[RecordBatch], query: &str) -> Vec<String> {
    let mut config = SessionConfig::new();
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let context = SessionContext::new_with_config(config);
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
    let batches = context
        .sql(&batch_form(&select_of(query)))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    rendered(&batches)
}

#[test]
fn nexmark_queries_give_the_batch_answer() {
    let events = events();
    assert_eq!(
        events.iter().map(RecordBatch::num_rows).sum::<usize>() as u64,
        EVENTS
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut failures = Vec::new();
    let mut empty = Vec::new();
    for query in QUERIES {
        let expected = runtime.block_on(batch_answer(&events, query));
        if expected.is_empty() {
            empty.push(*query);
        }
        for workers in [1, 2] {
            let got = runnel(query, workers);
            if got != expected {
                failures.push(format!(
                    "{query} with {workers} worker(s): {} rows, batch {} rows; first difference: {:?}",
                    got.len(),
                    expected.len(),
                    got.iter()
                        .zip(&expected)
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| format!("{a} vs {b}"))
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // An empty answer compares nothing: the inputs must make rows.
    assert!(empty.is_empty(), "no rows at {EVENTS} events: {empty:?}");
}
