//! Oracle tests for `debezium-json` sources: random histories of inserts,
//! updates and deletes on keyed tables, written as envelopes into files in
//! a random arrival order and read with 1-3 workers. The changelog a query
//! emits, applied to an empty table, must equal DataFusion's batch answer
//! over the tables the histories end with.
//!
//! Arrival order is shuffled across keys and, in half the cases, within a
//! key too, so a delete may come before its insert: differential sums
//! multiplicities, so every result must still end right. (Several workers
//! reorder a key's changes anyway: each reads its own byte range.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use runnel_connectors::Connectors;
use runnel_engine::EngineError;
use runnel_engine::connector::{ConnectorFactory, SinkProvider, SourceProvider};
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_engine::sink::BatchSink;
use runnel_engine::source::{BatchReader, Poll};
use runnel_engine::time::Watermark;
use runnel_sql::Session;

use crate::support::{rendered, timestamp};

/// A row image of `cdc` and `cdc2`: `id` is the primary key.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Image {
    id: i64,
    k: i64,
    v: Option<i64>,
    ts: i64,
}

/// One step of a key's history: on an absent key an insert (op `c`, or
/// `r` as a snapshot read when `action` is odd), on a present one a delete
/// when `action % 3 == 0`, else an update to the new values.
type Step = (u8, i64, Option<i64>, i64);

/// `(id, position in its history, envelope)` of every change of a table.
type Changes = Vec<(i64, usize, String)>;

struct Query {
    sql: &'static str,
    /// The result is a reduce (GROUP BY, DISTINCT, top-N): it holds a row
    /// only for positive multiplicities, so even with changes out of order
    /// its changelog never retracts a row it has not emitted.
    always_valid: bool,
}

const fn query(sql: &'static str, always_valid: bool) -> Query {
    Query { sql, always_valid }
}

const QUERIES: &[Query] = &[
    // MIN and MAX must come back after the extreme row is deleted.
    query(
        "SELECT k, COUNT(*), SUM(v), MIN(v), MAX(v), AVG(v), MAX(ts) FROM cdc GROUP BY k",
        true,
    ),
    query(
        "SELECT k, COUNT(v), COUNT(DISTINCT v) FROM cdc GROUP BY k HAVING COUNT(*) > 1",
        true,
    ),
    query("SELECT DISTINCT k, v FROM cdc", true),
    query(
        "SELECT c, COUNT(*) FROM (SELECT k, COUNT(*) AS c FROM cdc GROUP BY k) GROUP BY c",
        true,
    ),
    // HAVING drops DataFusion's one row over no groups, which a streaming
    // global aggregate (Flink's and ours) does not emit.
    query(
        "SELECT COUNT(*), SUM(s), MAX(s) FROM (SELECT k, SUM(v) AS s FROM cdc GROUP BY k) HAVING COUNT(*) > 0",
        true,
    ),
    query(
        "SELECT k, id, v, rn FROM (SELECT k, id, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC, id) AS rn FROM cdc) WHERE rn <= 2",
        true,
    ),
    query(
        "SELECT d.name, COUNT(*), MIN(c.v) FROM cdc c JOIN dim d ON c.k = d.k GROUP BY d.name",
        true,
    ),
    query("SELECT id, k, v, ts FROM cdc WHERE v > 10", false),
    query(
        "SELECT c.id, c.v, d.name FROM cdc c JOIN dim d ON c.k = d.k",
        false,
    ),
    query(
        "SELECT c.id, c.k, d.name FROM cdc c LEFT JOIN dim d ON c.k = d.k AND d.name <> 'b'",
        false,
    ),
    query(
        "SELECT d.k, d.name, c.id FROM dim d LEFT JOIN cdc c ON d.k = c.k",
        false,
    ),
    query(
        "SELECT a.id, a.v, b.id, b.v FROM cdc a JOIN cdc2 b ON a.k = b.k AND a.v < b.v",
        false,
    ),
    query(
        "SELECT a.id, b.id FROM cdc a LEFT JOIN cdc2 b ON a.k = b.k",
        false,
    ),
    query(
        "SELECT id, v FROM cdc WHERE k IN (SELECT k FROM cdc2 WHERE v > 15)",
        false,
    ),
];

fn histories() -> impl Strategy<Value = Vec<Vec<Step>>> {
    let step = (
        any::<u8>(),
        0i64..4,
        prop::option::weighted(0.9, 0i64..30),
        0i64..10_000,
    );
    prop::collection::vec(prop::collection::vec(step, 1..6), 0..24)
}

/// The envelopes of `histories` (key `i` is `id` `i`) and the table they
/// end with.
fn changes(histories: &[Vec<Step>], schema_include: bool, iso: bool) -> (Changes, Vec<Image>) {
    let mut changes = Vec::new();
    let mut table = Vec::new();
    for (id, history) in histories.iter().enumerate() {
        let id = id as i64;
        let mut now: Option<Image> = None;
        for (at, &(action, k, v, ts)) in history.iter().enumerate() {
            let next = Image { id, k, v, ts };
            let (before, after, op) = match now {
                None => (None, Some(next), if action % 2 == 1 { "r" } else { "c" }),
                Some(old) if action % 3 == 0 => (Some(old), None, "d"),
                Some(old) => (Some(old), Some(next), "u"),
            };
            now = after;
            let envelope = format!(
                r#"{{"before":{},"after":{},"op":"{op}","ts_ms":{ts}}}"#,
                json(before, iso),
                json(after, iso)
            );
            let line = if schema_include {
                format!(r#"{{"schema":{{"type":"struct","optional":false}},"payload":{envelope}}}"#)
            } else {
                envelope
            };
            changes.push((id, at, line));
        }
        table.extend(now);
    }
    (changes, table)
}

fn json(image: Option<Image>, iso: bool) -> String {
    let Some(Image { id, k, v, ts }) = image else {
        return "null".into();
    };
    let mut ts = timestamp(ts);
    if iso {
        ts = ts.replacen(' ', "T", 1);
    }
    let v = v.map_or("null".to_string(), |v| v.to_string());
    format!(r#"{{"id":{id},"k":{k},"v":{v},"ts":"{ts}"}}"#)
}

/// `changes` in arrival order `order` (a permutation of their indices);
/// unless `within_key`, each key's changes keep their history's order in
/// the slots the permutation gives that key.
fn arrival(changes: &Changes, order: &[usize], within_key: bool) -> Vec<String> {
    let mut arrived: Vec<&(i64, usize, String)> = order.iter().map(|&i| &changes[i]).collect();
    if !within_key {
        let mut by_key: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (slot, change) in arrived.iter().enumerate() {
            by_key.entry(change.0).or_default().push(slot);
        }
        for slots in by_key.values() {
            let mut mine: Vec<_> = slots.iter().map(|&s| arrived[s]).collect();
            mine.sort_by_key(|c| c.1);
            for (&slot, change) in slots.iter().zip(mine) {
                arrived[slot] = change;
            }
        }
    }
    arrived.into_iter().map(|c| c.2.clone()).collect()
}

/// Writes `lines` into `files` files of `dir`, line `i` into file
/// `spread[i] % files`, each file in arrival order.
fn write_files(dir: &std::path::Path, lines: &[String], files: usize, spread: &[usize]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut texts = vec![String::new(); files];
    for (line, to) in lines.iter().zip(spread.iter().cycle()) {
        texts[to % files].push_str(line);
        texts[to % files].push('\n');
    }
    for (i, text) in texts.iter().enumerate() {
        std::fs::write(dir.join(format!("changes-{i}.json")), text).unwrap();
    }
}

/// The table a changelog describes, kept as signed counts: a change out
/// of order may retract a row before the row is added.
#[derive(Clone, Default)]
struct Applied {
    counts: Arc<Mutex<BTreeMap<String, i64>>>,
    /// Retractions of a row the table did not hold at the time.
    early: Arc<Mutex<Vec<String>>>,
}

impl SinkProvider for Applied {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(self.clone()))
    }
}

impl BatchSink for Applied {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        let text = runnel_connectors::print::render_rows("", &batch);
        let mut counts = self.counts.lock().unwrap();
        for line in text.lines() {
            let (kind, row) = line.split_at(2);
            let count = counts.entry(row.to_string()).or_default();
            if matches!(kind, "+I" | "+U") {
                *count += 1;
            } else {
                if *count <= 0 {
                    self.early.lock().unwrap().push(line.to_string());
                }
                *count -= 1;
            }
        }
        Ok(())
    }
}

impl Applied {
    /// The rows of the final table, sorted; fails on a row taken away
    /// more often than added.
    fn rows(&self) -> Vec<String> {
        let counts = self.counts.lock().unwrap();
        let negative: Vec<_> = counts.iter().filter(|(_, c)| **c < 0).collect();
        assert!(negative.is_empty(), "rows retracted for good: {negative:?}");
        counts
            .iter()
            .flat_map(|(row, &count)| std::iter::repeat_n(row.clone(), count as usize))
            .collect()
    }
}

/// The real connectors, with every source handing out its rows `rows` at
/// a time and pausing after each slice, so that slices travel at
/// different times: arrival order then matters, where a whole small file
/// read in one go would be one time and consolidated.
struct Trickle {
    rows: usize,
}

impl ConnectorFactory for Trickle {
    fn source(
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Arc<dyn SourceProvider>, EngineError> {
        Ok(Arc::new(TrickleSource {
            inner: Connectors::default().source(options, schema)?,
            rows: self.rows,
        }))
    }

    fn sink(
        &self,
        options: BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Arc<dyn SinkProvider>, EngineError> {
        Connectors::default().sink(options, schema)
    }
}

struct TrickleSource {
    inner: Arc<dyn SourceProvider>,
    rows: usize,
}

impl SourceProvider for TrickleSource {
    fn reader(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        Ok(Box::new(TrickleReader {
            inner: self.inner.reader(worker, peers)?,
            rows: self.rows,
            rest: None,
            pause: false,
        }))
    }

    fn produces_changelog(&self) -> bool {
        self.inner.produces_changelog()
    }
}

struct TrickleReader {
    inner: Box<dyn BatchReader>,
    rows: usize,
    rest: Option<RecordBatch>,
    pause: bool,
}

impl BatchReader for TrickleReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        // Idle ends the source's activation; it moves to the wall clock
        // and comes back 10 ms later.
        if std::mem::take(&mut self.pause) {
            return Ok(Poll::Idle);
        }
        let batch = match self.rest.take() {
            Some(batch) => batch,
            None => match self.inner.poll()? {
                Poll::Batch(batch) => batch,
                other => return Ok(other),
            },
        };
        let n = self.rows.min(batch.num_rows());
        if n < batch.num_rows() {
            self.rest = Some(batch.slice(n, batch.num_rows() - n));
        }
        self.pause = true;
        Ok(Poll::Batch(batch.slice(0, n)))
    }
}

/// Runs `script`, its bare SELECT into the returned table, its sources
/// read `slice` rows at a time.
fn run(script: &str, workers: usize, slice: usize) -> Applied {
    let mut session = Session::new(Arc::new(Trickle { rows: slice }));
    let submitted = session
        .submit_blocking(script)
        .unwrap_or_else(|e| panic!("{e}\n{script}"));
    let applied = Applied::default();
    submitted
        .job
        .run(
            &Cluster::local(workers),
            Arc::new(JobContext::default()),
            Arc::new(applied.clone()),
        )
        .unwrap_or_else(|e| panic!("{e}\n{script}"));
    applied
}

fn tables(dir: &std::path::Path, schema_include: bool, iso: bool) -> String {
    let cdc = |name: &str| {
        format!(
            "CREATE TABLE {name} (id BIGINT, k BIGINT, v BIGINT, ts TIMESTAMP(3), PRIMARY KEY (id) NOT ENFORCED) \
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json', \
             'debezium-json.schema-include' = '{schema_include}', \
             'debezium-json.timestamp-format.standard' = '{}');",
            dir.join(name).display(),
            if iso { "ISO-8601" } else { "SQL" }
        )
    };
    format!(
        "{}\n{}\nCREATE TABLE dim (k BIGINT, name STRING) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
        cdc("cdc"),
        cdc("cdc2"),
        dir.join("dim.jsonl").display()
    )
}

fn image_batch(rows: &[Image]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.id))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.k))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.v))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.ts),
            )),
        ],
    )
    .unwrap()
}

fn dim_batch(rows: &[(i64, &str)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        ],
    )
    .unwrap()
}

/// DataFusion's answer to `sql` over the final tables.
fn oracle(cdc: &[Image], cdc2: &[Image], dim: &[(i64, &str)], sql: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let context = SessionContext::new();
        runnel_sql::register_flink_functions(&context).unwrap();
        for (name, batch) in [
            ("cdc", image_batch(cdc)),
            ("cdc2", image_batch(cdc2)),
            ("dim", dim_batch(dim)),
        ] {
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
            context.register_table(name, Arc::new(table)).unwrap();
        }
        let batches = context.sql(sql).await.unwrap().collect().await.unwrap();
        rendered(&batches)
    })
}

const NAMES: [&str; 3] = ["a", "b", "c"];

fn write_dim(dir: &std::path::Path, dim: &[(i64, &str)]) {
    let text: String = dim
        .iter()
        .map(|(k, name)| format!("{{\"k\": {k}, \"name\": \"{name}\"}}\n"))
        .collect();
    std::fs::write(dir.join("dim.jsonl"), text).unwrap();
}

/// A case: two keyed tables' histories in arrival order, the `dim` rows,
/// and how they are read.
#[derive(Debug, Clone)]
struct Case {
    cdc: Vec<Vec<Step>>,
    cdc2: Vec<Vec<Step>>,
    /// Arrival orders: permutations of each table's changes.
    orders: (Vec<usize>, Vec<usize>),
    spread: Vec<usize>,
    dim: Vec<(i64, usize)>,
    /// Rows a source hands out at a time.
    slice: usize,
}

fn cases() -> impl Strategy<Value = Case> {
    let count = |h: &Vec<Vec<Step>>| h.iter().map(Vec::len).sum::<usize>();
    (
        histories(),
        histories(),
        prop::collection::vec((0i64..5, 0usize..3), 0..5),
    )
        .prop_flat_map(move |(cdc, cdc2, dim)| {
            let (n, n2) = (count(&cdc), count(&cdc2));
            (
                Just(cdc),
                Just(cdc2),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                Just((0..n2).collect::<Vec<_>>()).prop_shuffle(),
                prop::collection::vec(0usize..3, 1..8),
                Just(dim),
                1usize..12,
            )
        })
        .prop_map(|(cdc, cdc2, order, order2, spread, dim, slice)| Case {
            cdc,
            cdc2,
            orders: (order, order2),
            spread,
            dim,
            slice,
        })
}

/// Writes the case into `dir`; the final tables and `dim`.
fn write_case(
    dir: &std::path::Path,
    case: &Case,
    files: usize,
    within_key: bool,
    schema_include: bool,
    iso: bool,
) -> (Vec<Image>, Vec<Image>, Vec<(i64, &'static str)>) {
    let (changes1, cdc) = changes(&case.cdc, schema_include, iso);
    let (changes2, cdc2) = changes(&case.cdc2, schema_include, iso);
    write_files(
        &dir.join("cdc"),
        &arrival(&changes1, &case.orders.0, within_key),
        files,
        &case.spread,
    );
    write_files(
        &dir.join("cdc2"),
        &arrival(&changes2, &case.orders.1, within_key),
        files,
        &case.spread,
    );
    let dim: Vec<(i64, &str)> = case.dim.iter().map(|&(k, n)| (k, NAMES[n])).collect();
    write_dim(dir, &dim);
    (cdc, cdc2, dim)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn changelog_sources_give_the_batch_answer_in_any_arrival_order(
        case in cases(),
        query in 0..QUERIES.len(),
        workers in 1usize..4,
        files in 1usize..4,
        within_key in any::<bool>(),
        schema_include in any::<bool>(),
        iso in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (cdc, cdc2, dim) = write_case(dir.path(), &case, files, within_key, schema_include, iso);
        let Query { sql, always_valid } = QUERIES[query];
        let script = format!("{}{sql};", tables(dir.path(), schema_include, iso));
        let applied = run(&script, workers, case.slice);
        prop_assert_eq!(applied.rows(), oracle(&cdc, &cdc2, &dim, sql), "{}", sql);
        // One reader meeting each key's changes in order sees a valid
        // changelog, and so must emit one.
        let in_order = !within_key && workers == 1 && files == 1;
        if always_valid || in_order {
            let early = applied.early.lock().unwrap();
            prop_assert!(early.is_empty(), "{}: retracted before added: {:?}", sql, early);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// What the debezium-json sink writes reads back through the source:
    /// a GROUP BY (as updates, or upserts with a PRIMARY KEY) and the
    /// changelog source itself.
    #[test]
    fn what_the_sink_writes_reads_back(
        case in cases(),
        workers in 1usize..4,
        upsert in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (cdc, cdc2, dim) = write_case(dir.path(), &case, 2, true, false, false);
        let key = if upsert { ", PRIMARY KEY (k) NOT ENFORCED" } else { "" };
        let group_by = "SELECT k, COUNT(*), SUM(v), MIN(v), MAX(v) FROM cdc GROUP BY k";
        let copy = "SELECT id, k, v, ts FROM cdc";
        let definitions = format!(
            "{}CREATE TABLE agg (k BIGINT, n BIGINT, s BIGINT, lo BIGINT, hi BIGINT{key}) \
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
             CREATE TABLE copied (id BIGINT, k BIGINT, v BIGINT, ts TIMESTAMP(3)) \
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');\n",
            tables(dir.path(), false, false),
            dir.path().join("agg").display(),
            dir.path().join("copied").display(),
        );
        run(
            &format!(
                "{definitions}EXECUTE STATEMENT SET BEGIN
                   INSERT INTO agg {group_by};
                   INSERT INTO copied {copy};
                 END;"
            ),
            workers,
            case.slice,
        );
        let back = |table: &str| {
            run(&format!("{definitions}SELECT * FROM {table};"), workers, case.slice).rows()
        };
        prop_assert_eq!(back("agg"), oracle(&cdc, &cdc2, &dim, group_by));
        prop_assert_eq!(back("copied"), oracle(&cdc, &cdc2, &dim, copy));
    }
}

fn submit_error(script: &str) -> String {
    let mut session = Session::new(Arc::new(Connectors::default()));
    match session.submit_blocking(script) {
        Ok(_) => panic!("accepted: {script}"),
        Err(error) => error.to_string(),
    }
}

const CDC: &str = "CREATE TABLE cdc (id BIGINT, k BIGINT, PRIMARY KEY (id) NOT ENFORCED) \
    WITH ('connector' = 'filesystem', 'path' = '/', 'format' = 'debezium-json');";

/// A changelog source is an updating input everywhere: even a plain
/// projection of it cannot go to an append-only sink.
#[test]
fn a_changelog_source_is_refused_by_an_append_only_sink() {
    let error = submit_error(&format!(
        "{CDC}
         CREATE TABLE out_table (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/x', 'format' = 'json');
         INSERT INTO out_table SELECT id FROM cdc WHERE k > 1;"
    ));
    assert!(error.contains("is append-only ('filesystem')"), "{error}");
}

#[test]
fn a_watermark_on_a_changelog_source_is_refused() {
    let error = submit_error(
        "CREATE TABLE cdc (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
           WITH ('connector' = 'filesystem', 'path' = '/', 'format' = 'debezium-json');
         SELECT id, COUNT(*) FROM cdc GROUP BY id;",
    );
    assert!(
        error.contains("a WATERMARK on a changelog source is not supported"),
        "{error}"
    );
}

/// `ROW_NUMBER() ... ORDER BY ts ASC ... = 1` over an append-only table is
/// deduplication, which never retracts; over a changelog it must be the
/// updating top-N, or a deleted first row would stay.
#[test]
fn keeping_the_first_row_of_a_changelog_is_an_updating_top_n() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"before":null,"after":{"id":1,"k":7,"ts":"2020-01-01 00:00:01.000"},"op":"c"}"#,
        r#"{"before":null,"after":{"id":2,"k":7,"ts":"2020-01-01 00:00:02.000"},"op":"c"}"#,
        r#"{"before":{"id":1,"k":7,"ts":"2020-01-01 00:00:01.000"},"after":null,"op":"d"}"#,
    ];
    std::fs::write(dir.path().join("c.json"), lines.join("\n")).unwrap();
    let script = format!(
        "CREATE TABLE cdc (id BIGINT, k BIGINT, ts TIMESTAMP(3)) \
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         SELECT id, k FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM cdc) WHERE rn = 1;",
        dir.path().display()
    );
    assert_eq!(run(&script, 1, 1).rows(), ["[2, 7]"]);
}
