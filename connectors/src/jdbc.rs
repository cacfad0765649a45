//! `'connector' = 'jdbc'` for PostgreSQL, with Flink's option names: a
//! bounded scan of `table-name` (split by `scan.partition.*` over the
//! workers), a sink (INSERT, or under a PRIMARY KEY an
//! upsert, `INSERT ... ON CONFLICT ... DO UPDATE`, with deletes), and a
//! lookup source for lookup joins with Flink's partial cache.
//!
//! Values cross as text: a scan reads `column::text` and casts it to the
//! column's Arrow type (PostgreSQL's text forms are what Arrow's casts
//! read); written values are quoted literals PostgreSQL assigns to the
//! column's type. So the connector needs no mapping of PostgreSQL's
//! binary types, and any column type PostgreSQL can print and parse works.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use runnel_engine::EngineError;
use runnel_engine::changelog::{RowKind, is_changelog};
use runnel_engine::connector::{PRIMARY_KEY, SinkProvider, SourceProvider};
use runnel_engine::join::lookup::{LookupProvider, LookupSource};
use runnel_engine::sink::BatchSink;
use runnel_engine::source::{BatchReader, Poll};
use runnel_engine::time::Watermark;

use crate::ConnectorError;
use crate::options::{Options, parse_duration};

const SCAN_ROWS: usize = 8192;

#[derive(Clone, Debug)]
struct Database {
    config: tokio_postgres::Config,
    table: String,
}

fn failure(message: impl std::fmt::Display) -> EngineError {
    EngineError::Connector {
        connector: "jdbc",
        message: message.to_string(),
    }
}

impl Database {
    fn from_options(options: &Options) -> Result<Self, ConnectorError> {
        let url = options.required("url")?;
        let rest = url.strip_prefix("jdbc:postgresql://").ok_or_else(|| {
            ConnectorError::Option(format!(
                "jdbc: only PostgreSQL is supported, with a url jdbc:postgresql://host[:port]/database; got '{url}'"
            ))
        })?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let database = path.split('?').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>().map_err(|_| {
                    ConnectorError::Option(format!("jdbc: bad port in url '{url}'"))
                })?,
            ),
            None => (authority, 5432),
        };
        if host.is_empty() || database.is_empty() {
            return Err(ConnectorError::Option(format!(
                "jdbc: url '{url}' needs a host and a database"
            )));
        }
        let mut config = tokio_postgres::Config::new();
        config
            .host(host)
            .port(port)
            .dbname(database)
            .connect_timeout(Duration::from_secs(10));
        if let Some(user) = options.get("username") {
            config.user(user);
        }
        if let Some(password) = options.get("password") {
            config.password(password);
        }
        // Flink names the JDBC driver class; PostgreSQL's client is built in.
        options.get("driver");
        Ok(Database {
            config,
            table: options.required("table-name")?.to_string(),
        })
    }

    fn connect(&self) -> Result<Connection, EngineError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(failure)?;
        let (client, connection) = runtime
            .block_on(self.config.connect(tokio_postgres::NoTls))
            .map_err(failure)?;
        runtime.spawn(connection);
        Ok(Connection { runtime, client })
    }

    /// `table-name` as an identifier, `schema.table` quoted part by part.
    fn table(&self) -> String {
        self.table
            .split('.')
            .map(quote_identifier)
            .collect::<Vec<_>>()
            .join(".")
    }
}

struct Connection {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Connection {
    fn text_rows(&self, sql: &str) -> Result<Vec<tokio_postgres::Row>, EngineError> {
        self.runtime
            .block_on(self.client.query(sql, &[]))
            .map_err(|e| failure(format!("{e}: {sql}")))
    }

    fn execute(&self, sql: &str) -> Result<(), EngineError> {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .map_err(|e| {
                failure(format!(
                    "{e}: {}",
                    sql.chars().take(200).collect::<String>()
                ))
            })
    }
}

/// `work` on `connection` (connected first if need be), again on a new
/// connection after a failure, up to `max_retries` times, waiting longer
/// each time.
fn retrying<T>(
    database: &Database,
    connection: &mut Option<Connection>,
    max_retries: u32,
    what: &str,
    work: impl Fn(&Connection) -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let mut attempt = 0;
    loop {
        let result = match connection.as_ref() {
            Some(open) => work(open),
            None => database.connect().and_then(|open| {
                let result = work(&open);
                *connection = Some(open);
                result
            }),
        };
        match result {
            Ok(value) => return Ok(value),
            Err(error) if attempt < max_retries => {
                attempt += 1;
                tracing::warn!("jdbc {what}: {error}; retrying ({attempt})");
                *connection = None;
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
            }
            Err(error) => return Err(error),
        }
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Rows of `SELECT col::text, ...` as a batch of `schema`.
fn rows_to_batch(
    rows: &[tokio_postgres::Row],
    schema: &SchemaRef,
) -> Result<RecordBatch, EngineError> {
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(c, field)| {
            let texts: StringArray = rows
                .iter()
                .map(|row| row.try_get::<_, Option<String>>(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(failure)?
                .into_iter()
                .collect();
            let text: ArrayRef = Arc::new(texts);
            let typed = cast(&text, field.data_type())
                .map_err(|e| failure(format!("column '{}': {e}", field.name())))?;
            if typed.null_count() != text.null_count() {
                return Err(failure(format!(
                    "column '{}': a value does not read as {}",
                    field.name(),
                    field.data_type()
                )));
            }
            Ok(typed)
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )?)
}

fn select_list(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}::text", quote_identifier(f.name())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each value of `array` as a SQL literal PostgreSQL assigns to a column.
fn literals(array: &ArrayRef) -> Result<Vec<String>, EngineError> {
    let text = match array.data_type() {
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            cast(array, &DataType::Utf8)?
        }
        _ => array.clone(),
    };
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(text.as_ref(), &options)?;
    Ok((0..text.len())
        .map(|i| match text.is_null(i) {
            true => "NULL".to_string(),
            false => format!("'{}'", formatter.value(i).to_string().replace('\'', "''")),
        })
        .collect())
}

// ------------------------------------------------------------------ scan

pub fn source(
    options: &Options,
    schema: SchemaRef,
) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
    let database = Database::from_options(options)?;
    let partitions = partitions(options, &schema)?;
    Ok(Arc::new(JdbcSource {
        database,
        schema,
        partitions,
    }))
}

/// Flink's `scan.partition.*`: the scan cut into ranges of an integer
/// column, read `column BETWEEN start AND end` each, dealt to the workers
/// in turn. As in Flink, the bounds filter too: rows outside them, or
/// NULL in the column, are not read.
#[derive(Clone, Debug)]
struct Partitions {
    column: String,
    ranges: Vec<(i64, i64)>,
}

const PARTITION_OPTIONS: [&str; 4] = [
    "scan.partition.column",
    "scan.partition.num",
    "scan.partition.lower-bound",
    "scan.partition.upper-bound",
];

fn partitions(options: &Options, schema: &SchemaRef) -> Result<Option<Partitions>, ConnectorError> {
    let given = PARTITION_OPTIONS.map(|key| options.get(key));
    if given.iter().all(Option::is_none) {
        return Ok(None);
    }
    let [Some(column), Some(_), Some(_), Some(_)] = given else {
        return Err(ConnectorError::Option(format!(
            "jdbc: either all or none of {} must be set",
            PARTITION_OPTIONS.join(", ")
        )));
    };
    let field = schema.field_with_name(column).map_err(|_| {
        ConnectorError::Option(format!(
            "jdbc: scan.partition.column '{column}' is not a column of the table"
        ))
    })?;
    if !field.data_type().is_integer() {
        return Err(ConnectorError::Option(format!(
            "jdbc: scan.partition.column '{column}' is {}; Runnel partitions a scan by an integer column only",
            field.data_type()
        )));
    }
    let bound = |key: &str| -> Result<i64, ConnectorError> {
        let text = options.required(key)?;
        text.trim().parse::<i64>().map_err(|_| {
            ConnectorError::Option(format!("jdbc: {key} must be an integer, not '{text}'"))
        })
    };
    let (lower, upper) = (
        bound("scan.partition.lower-bound")?,
        bound("scan.partition.upper-bound")?,
    );
    if lower > upper {
        return Err(ConnectorError::Option(format!(
            "jdbc: scan.partition.lower-bound {lower} is above scan.partition.upper-bound {upper}"
        )));
    }
    let num = options.u64("scan.partition.num")?.unwrap_or(0);
    if num == 0 {
        return Err(ConnectorError::Option(
            "jdbc: scan.partition.num must be at least 1".into(),
        ));
    }
    Ok(Some(Partitions {
        column: column.to_string(),
        ranges: partition_ranges(lower, upper, num),
    }))
}

/// Flink's `JdbcNumericBetweenParametersProvider`: at most `num` ranges
/// over [`lower`, `upper`], the first ones one longer where the count does
/// not divide evenly.
fn partition_ranges(lower: i64, upper: i64, num: u64) -> Vec<(i64, i64)> {
    let count = i128::from(upper) - i128::from(lower) + 1;
    let batches = i128::from(num).min(count);
    let size = (count + batches - 1) / batches;
    let big = count - (size - 1) * batches;
    let mut start = i128::from(lower);
    (0..batches)
        .map(|i| {
            let end = start + size - 1 - i128::from(i >= big);
            let range = (start as i64, end as i64);
            start = end + 1;
            range
        })
        .collect()
}

struct JdbcSource {
    database: Database,
    schema: SchemaRef,
    partitions: Option<Partitions>,
}

/// One query of a scan: the whole table, or one range of the partition
/// column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Query {
    Whole,
    Range(i64, i64),
}

impl SourceProvider for JdbcSource {
    fn checkpointable(&self) -> bool {
        true
    }

    fn reader(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        // Unpartitioned, one worker reads the table, the bounded snapshot
        // Flink's scan is; partitioned, each reads its share of ranges.
        let queries = match &self.partitions {
            None if worker == 0 => VecDeque::from([Query::Whole]),
            None => VecDeque::new(),
            Some(partitions) => partitions
                .ranges
                .iter()
                .enumerate()
                .filter(|(i, _)| i % peers.max(1) == worker)
                .map(|(_, (start, end))| Query::Range(*start, *end))
                .collect(),
        };
        Ok(Box::new(JdbcReader {
            database: self.database.clone(),
            schema: self.schema.clone(),
            column: self.partitions.as_ref().map(|p| p.column.clone()),
            queries,
            pending: VecDeque::new(),
        }))
    }
}

struct JdbcReader {
    database: Database,
    schema: SchemaRef,
    /// The partition column, when the scan is partitioned.
    column: Option<String>,
    /// The queries not run yet.
    queries: VecDeque<Query>,
    /// The rows of the last query run not given out yet.
    pending: VecDeque<RecordBatch>,
}

impl JdbcReader {
    fn run(&self, query: Query) -> Result<VecDeque<RecordBatch>, EngineError> {
        let mut sql = format!(
            "SELECT {} FROM {}",
            select_list(&self.schema),
            self.database.table()
        );
        if let (Query::Range(start, end), Some(column)) = (query, &self.column) {
            sql.push_str(&format!(
                " WHERE {} BETWEEN {start} AND {end}",
                quote_identifier(column)
            ));
        }
        let connection = self.database.connect()?;
        let rows = connection.text_rows(&sql)?;
        rows.chunks(SCAN_ROWS)
            .map(|chunk| rows_to_batch(chunk, &self.schema))
            .collect()
    }
}

impl BatchReader for JdbcReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        loop {
            if let Some(batch) = self.pending.pop_front() {
                return Ok(Poll::Batch(batch));
            }
            match self.queries.pop_front() {
                Some(query) => self.pending = self.run(query)?,
                None => return Ok(Poll::Done),
            }
        }
    }

    /// The queries not run yet and the rows of the last one not given out
    /// yet: a table read again after a restore may have changed (and comes
    /// in no fixed order), so the rows read once are what the job goes on
    /// with.
    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        let mut position = Vec::new();
        position.extend_from_slice(&(self.queries.len() as u32).to_le_bytes());
        for query in &self.queries {
            let (tag, start, end) = match query {
                Query::Whole => (0u8, 0, 0),
                Query::Range(start, end) => (1u8, *start, *end),
            };
            position.push(tag);
            position.extend_from_slice(&start.to_le_bytes());
            position.extend_from_slice(&end.to_le_bytes());
        }
        if !self.pending.is_empty() {
            let batches: Vec<RecordBatch> = self.pending.iter().cloned().collect();
            position.extend(runnel_engine::checkpoint::encoding::batches_to_bytes(
                &self.schema,
                &batches,
            )?);
        }
        Ok(Some(position))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        let broken = || failure("a checkpoint position that is not a jdbc scan's");
        let (count, mut rest) = position.split_first_chunk::<4>().ok_or_else(broken)?;
        let mut queries = VecDeque::new();
        for _ in 0..u32::from_le_bytes(*count) {
            let (&tag, after) = rest.split_first().ok_or_else(broken)?;
            let (start, after) = after.split_first_chunk::<8>().ok_or_else(broken)?;
            let (end, after) = after.split_first_chunk::<8>().ok_or_else(broken)?;
            queries.push_back(match tag {
                0 => Query::Whole,
                1 => Query::Range(i64::from_le_bytes(*start), i64::from_le_bytes(*end)),
                _ => return Err(broken()),
            });
            rest = after;
        }
        let pending = match rest.is_empty() {
            true => VecDeque::new(),
            false => {
                let batches = runnel_engine::checkpoint::encoding::batches_from_bytes(rest)?;
                if batches.iter().any(|b| b.schema() != self.schema) {
                    return Err(failure("a checkpoint's rows are not the table's columns"));
                }
                batches.into()
            }
        };
        if queries.iter().any(|q| matches!(q, Query::Range(..))) && self.column.is_none() {
            return Err(failure(
                "the checkpoint's scan was partitioned, and the table's scan.partition options are gone",
            ));
        }
        self.queries = queries;
        self.pending = pending;
        Ok(())
    }
}

#[cfg(test)]
mod partition_tests {
    use super::partition_ranges;

    #[test]
    fn ranges_are_flinks_between_parameters() {
        assert_eq!(partition_ranges(1, 10, 3), [(1, 4), (5, 7), (8, 10)]);
        assert_eq!(partition_ranges(0, 9, 2), [(0, 4), (5, 9)]);
        // No more ranges than values.
        assert_eq!(partition_ranges(5, 6, 4), [(5, 5), (6, 6)]);
        assert_eq!(partition_ranges(-3, -3, 1), [(-3, -3)]);
        assert_eq!(
            partition_ranges(i64::MIN, i64::MAX, 2),
            [(i64::MIN, -1), (0, i64::MAX)]
        );
    }
}

// ------------------------------------------------------------------ sink

pub fn sink(
    options: &Options,
    schema: &SchemaRef,
) -> Result<Arc<dyn SinkProvider>, ConnectorError> {
    let database = Database::from_options(options)?;
    let primary_key: Vec<usize> = match options.get(PRIMARY_KEY) {
        Some(keys) => keys
            .split(',')
            .map(|k| {
                schema.index_of(k).map_err(|_| {
                    ConnectorError::Option(format!(
                        "jdbc: primary key column '{k}' is not a column"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let max_rows = options.u64("sink.buffer-flush.max-rows")?.unwrap_or(100) as usize;
    let interval = match options.get("sink.buffer-flush.interval") {
        Some(text) => parse_duration(text).ok_or_else(|| {
            ConnectorError::Option(format!(
                "option 'sink.buffer-flush.interval' must be a duration, got '{text}'"
            ))
        })?,
        None => Duration::from_secs(1),
    };
    let max_retries = options.u64("sink.max-retries")?.unwrap_or(3) as u32;
    // Every worker writes its share, as the job's workers set.
    options.get("sink.parallelism");
    Ok(Arc::new(JdbcSinkProvider {
        database,
        schema: schema.clone(),
        primary_key,
        max_rows: max_rows.max(1),
        interval,
        max_retries,
    }))
}

/// A sink's table and `sink.*` options.
#[derive(Clone)]
struct JdbcSinkProvider {
    database: Database,
    schema: SchemaRef,
    primary_key: Vec<usize>,
    max_rows: usize,
    interval: Duration,
    max_retries: u32,
}

impl SinkProvider for JdbcSinkProvider {
    fn sink(&self, _worker: usize, _peers: usize) -> Result<Box<dyn BatchSink>, EngineError> {
        Ok(Box::new(JdbcSink {
            connection: None,
            settings: self.clone(),
            buffered: Vec::new(),
            rows: 0,
            since: Instant::now(),
        }))
    }

    /// Under a primary key the sink upserts and deletes: it takes the
    /// changelog of an updating query.
    fn accepts_changelog(&self) -> bool {
        !self.primary_key.is_empty()
    }

    /// At least once, as Flink's JDBC sink: what is buffered is written
    /// before a checkpoint completes, so rows after it may be written
    /// again on a restore. Under a primary key the writes are upserts, and
    /// a repeat leaves the table as it was.
    fn checkpointable(&self) -> bool {
        true
    }
}

struct JdbcSink {
    connection: Option<Connection>,
    settings: JdbcSinkProvider,
    buffered: Vec<RecordBatch>,
    rows: usize,
    since: Instant,
}

impl JdbcSink {
    /// The statements that bring the table to the buffered rows: per key
    /// (under a primary key) the last change wins.
    fn statements(&self) -> Result<Vec<String>, EngineError> {
        let table = self.settings.database.table();
        let width = self.settings.schema.fields().len();
        let names: Vec<String> = self
            .settings
            .schema
            .fields()
            .iter()
            .map(|f| quote_identifier(f.name()))
            .collect();
        let mut tuples: Vec<(Vec<String>, RowKind)> = Vec::new();
        for batch in &self.buffered {
            let values = (0..width)
                .map(|c| literals(batch.column(c)))
                .collect::<Result<Vec<_>, _>>()?;
            let kinds = match is_changelog(&batch.schema()) {
                true => runnel_engine::changelog::kinds(batch)
                    .ok_or_else(|| failure("a changelog row without its kind"))?,
                false => vec![RowKind::Insert; batch.num_rows()],
            };
            for (row, kind) in kinds.into_iter().enumerate() {
                if kind == RowKind::UpdateBefore {
                    continue;
                }
                tuples.push(((0..width).map(|c| values[c][row].clone()).collect(), kind));
            }
        }
        let row = |t: &[String]| format!("({})", t.join(", "));
        if self.settings.primary_key.is_empty() {
            if tuples.is_empty() {
                return Ok(Vec::new());
            }
            return Ok(vec![format!(
                "INSERT INTO {table} ({}) VALUES {}",
                names.join(", "),
                tuples
                    .iter()
                    .map(|(t, _)| row(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            )]);
        }
        let mut last: BTreeMap<Vec<String>, (Vec<String>, RowKind)> = BTreeMap::new();
        for (values, kind) in tuples {
            let key: Vec<String> = self
                .settings
                .primary_key
                .iter()
                .map(|&k| values[k].clone())
                .collect();
            last.insert(key, (values, kind));
        }
        let key_names: Vec<&String> = self
            .settings
            .primary_key
            .iter()
            .map(|&k| &names[k])
            .collect();
        let key_list = key_names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut statements = Vec::new();
        let deletes: Vec<String> = last
            .iter()
            .filter(|(_, (_, kind))| *kind == RowKind::Delete)
            .map(|(key, _)| row(key))
            .collect();
        if !deletes.is_empty() {
            statements.push(format!(
                "DELETE FROM {table} WHERE ({key_list}) IN ({})",
                deletes.join(", ")
            ));
        }
        let upserts: Vec<String> = last
            .values()
            .filter(|(_, kind)| *kind != RowKind::Delete)
            .map(|(values, _)| row(values))
            .collect();
        if !upserts.is_empty() {
            let updates: Vec<String> = names
                .iter()
                .enumerate()
                .filter(|(c, _)| !self.settings.primary_key.contains(c))
                .map(|(_, n)| format!("{n} = EXCLUDED.{n}"))
                .collect();
            let on_conflict = match updates.is_empty() {
                true => "DO NOTHING".to_string(),
                false => format!("DO UPDATE SET {}", updates.join(", ")),
            };
            statements.push(format!(
                "INSERT INTO {table} ({}) VALUES {} ON CONFLICT ({key_list}) {on_conflict}",
                names.join(", "),
                upserts.join(", ")
            ));
        }
        Ok(statements)
    }

    /// Writes the buffered rows in one transaction, retrying as
    /// `sink.max-retries` allows (a new connection each time).
    fn flush(&mut self) -> Result<(), EngineError> {
        self.since = Instant::now();
        if self.buffered.is_empty() {
            return Ok(());
        }
        let statements = self.statements()?;
        let script = format!("BEGIN; {}; COMMIT;", statements.join("; "));
        retrying(
            &self.settings.database,
            &mut self.connection,
            self.settings.max_retries,
            "sink",
            |connection| connection.execute(&script),
        )?;
        self.buffered.clear();
        self.rows = 0;
        Ok(())
    }
}

impl BatchSink for JdbcSink {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        self.rows += batch.num_rows();
        self.buffered.push(batch);
        if self.rows >= self.settings.max_rows || self.since.elapsed() >= self.settings.interval {
            self.flush()?;
        }
        Ok(())
    }

    fn watermark(&mut self, watermark: Option<Watermark>) -> Result<(), EngineError> {
        if watermark.is_none() || self.since.elapsed() >= self.settings.interval {
            self.flush()?;
        }
        Ok(())
    }

    fn checkpoint_output(
        &mut self,
        _checkpoint: u64,
    ) -> Result<Vec<runnel_engine::checkpoint::SinkOutput>, EngineError> {
        self.flush()?;
        Ok(Vec::new())
    }
}

// ---------------------------------------------------------------- lookup

pub fn lookup(
    options: &Options,
    schema: SchemaRef,
    keys: Vec<String>,
) -> Result<Arc<dyn LookupProvider>, ConnectorError> {
    let database = Database::from_options(options)?;
    let key_columns = keys
        .iter()
        .map(|k| {
            schema.index_of(k).map_err(|_| {
                ConnectorError::Option(format!("jdbc: lookup key '{k}' is not a column"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cache = match options.get("lookup.cache").unwrap_or("NONE") {
        "NONE" => None,
        "PARTIAL" => {
            let duration = |key: &str| -> Result<Option<Duration>, ConnectorError> {
                options
                    .get(key)
                    .map(|text| {
                        parse_duration(text).ok_or_else(|| {
                            ConnectorError::Option(format!(
                                "option '{key}' must be a duration, got '{text}'"
                            ))
                        })
                    })
                    .transpose()
            };
            Some(CacheOptions {
                max_rows: options
                    .u64("lookup.partial-cache.max-rows")?
                    .unwrap_or(10_000) as usize,
                expire_after_write: duration("lookup.partial-cache.expire-after-write")?,
                expire_after_access: duration("lookup.partial-cache.expire-after-access")?,
                cache_missing_key: options.bool("lookup.partial-cache.cache-missing-key", true)?,
            })
        }
        other => {
            return Err(ConnectorError::Option(format!(
                "option 'lookup.cache' must be NONE or PARTIAL, got '{other}'"
            )));
        }
    };
    let max_retries = options.u64("lookup.max-retries")?.unwrap_or(3) as u32;
    Ok(Arc::new(JdbcLookupProvider {
        database,
        schema,
        key_columns,
        cache,
        max_retries,
    }))
}

#[derive(Clone, Copy, Debug)]
struct CacheOptions {
    max_rows: usize,
    expire_after_write: Option<Duration>,
    expire_after_access: Option<Duration>,
    cache_missing_key: bool,
}

struct JdbcLookupProvider {
    database: Database,
    schema: SchemaRef,
    key_columns: Vec<usize>,
    cache: Option<CacheOptions>,
    max_retries: u32,
}

impl LookupProvider for JdbcLookupProvider {
    fn source(&self, _worker: usize) -> Result<Box<dyn LookupSource>, EngineError> {
        Ok(Box::new(JdbcLookup {
            database: self.database.clone(),
            schema: self.schema.clone(),
            key_columns: self.key_columns.clone(),
            cache: self.cache,
            max_retries: self.max_retries,
            connection: None,
            entries: BTreeMap::new(),
            cached_rows: 0,
        }))
    }
}

/// A key's rows as found, and when.
struct Entry {
    rows: RecordBatch,
    written: Instant,
    accessed: Instant,
}

struct JdbcLookup {
    database: Database,
    schema: SchemaRef,
    key_columns: Vec<usize>,
    cache: Option<CacheOptions>,
    max_retries: u32,
    connection: Option<Connection>,
    entries: BTreeMap<Vec<String>, Entry>,
    cached_rows: usize,
}

impl JdbcLookup {
    fn fresh(&self, entry: &Entry, now: Instant) -> bool {
        let Some(cache) = self.cache else {
            return false;
        };
        cache
            .expire_after_write
            .is_none_or(|d| now.duration_since(entry.written) < d)
            && cache
                .expire_after_access
                .is_none_or(|d| now.duration_since(entry.accessed) < d)
    }

    fn query(&mut self, keys: &[Vec<String>]) -> Result<RecordBatch, EngineError> {
        let key_names: Vec<String> = self
            .key_columns
            .iter()
            .map(|&k| quote_identifier(self.schema.field(k).name()))
            .collect();
        let tuples: Vec<String> = keys.iter().map(|k| format!("({})", k.join(", "))).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE ({}) IN ({})",
            select_list(&self.schema),
            self.database.table(),
            key_names.join(", "),
            tuples.join(", ")
        );
        let rows = retrying(
            &self.database,
            &mut self.connection,
            self.max_retries,
            "lookup",
            |connection| connection.text_rows(&sql),
        )?;
        rows_to_batch(&rows, &self.schema)
    }

    /// Keeps each key's rows, forgetting the oldest written when over
    /// `max-rows`.
    fn remember(&mut self, found: &RecordBatch, asked: &[Vec<String>]) -> Result<(), EngineError> {
        let Some(cache) = self.cache else {
            return Ok(());
        };
        let columns = self
            .key_columns
            .iter()
            .map(|&k| literals(found.column(k)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_key: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
        for row in 0..found.num_rows() {
            let key: Vec<String> = columns.iter().map(|c| c[row].clone()).collect();
            by_key.entry(key).or_default().push(row as u32);
        }
        let now = Instant::now();
        for key in asked {
            let rows = by_key.remove(key).unwrap_or_default();
            if rows.is_empty() && !cache.cache_missing_key {
                continue;
            }
            let rows = datafusion::arrow::compute::take_record_batch(
                found,
                &datafusion::arrow::array::UInt32Array::from(rows),
            )?;
            self.cached_rows += rows.num_rows().max(1);
            if let Some(old) = self.entries.insert(
                key.clone(),
                Entry {
                    rows,
                    written: now,
                    accessed: now,
                },
            ) {
                self.cached_rows -= old.rows.num_rows().max(1);
            }
        }
        while self.cached_rows > cache.max_rows {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.written)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = self.entries.remove(&oldest) {
                self.cached_rows -= gone.rows.num_rows().max(1);
            }
        }
        Ok(())
    }
}

impl LookupSource for JdbcLookup {
    fn lookup(&mut self, keys: &RecordBatch) -> Result<RecordBatch, EngineError> {
        let columns = keys
            .columns()
            .iter()
            .map(literals)
            .collect::<Result<Vec<_>, _>>()?;
        let asked: Vec<Vec<String>> = (0..keys.num_rows())
            .map(|row| columns.iter().map(|c| c[row].clone()).collect())
            .collect();
        let now = Instant::now();
        let mut parts = Vec::new();
        let mut missing = Vec::new();
        for key in asked {
            let hit = self
                .entries
                .get(&key)
                .filter(|e| self.fresh(e, now))
                .map(|e| e.rows.clone());
            match hit {
                Some(rows) => {
                    if let Some(entry) = self.entries.get_mut(&key) {
                        entry.accessed = now;
                    }
                    parts.push(rows);
                }
                None => missing.push(key),
            }
        }
        if !missing.is_empty() {
            let found = self.query(&missing)?;
            self.remember(&found, &missing)?;
            parts.push(found);
        }
        Ok(datafusion::arrow::compute::concat_batches(
            &self.schema,
            &parts,
        )?)
    }
}
