//! The `kinesis` connector against a real stream log in a temporary data
//! dir: shards read in lineage order across a split, by one worker or
//! several, and rows written back as records; readers resumed from their
//! checkpointed positions, and sinks in checkpointed jobs.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use runnel_connectors::{Connectors, Services};
use runnel_engine::source::{BatchReader, Poll};
use runnel_store::Store;
use runnel_streams::{CapacityMode, IteratorStart, PutEntry, Streams, StreamsConfig};

struct Fixture {
    streams: Arc<Streams>,
    runtime: tokio::runtime::Runtime,
    _store: Store,
    _dir: tempfile::TempDir,
}

fn open() -> Fixture {
    open_with(StreamsConfig {
        limits: None,
        ..StreamsConfig::default()
    })
}

fn open_with(config: StreamsConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), runnel_streams::COLUMN_FAMILIES).unwrap();
    let streams = Streams::open(store.db().clone(), config).unwrap();
    Fixture {
        streams: Arc::new(streams),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        _store: store,
        _dir: dir,
    }
}

impl Fixture {
    fn create(&self, name: &str, shards: u32) {
        self.runtime
            .block_on(
                self.streams
                    .create_stream(name, shards, CapacityMode::Provisioned),
            )
            .unwrap();
    }

    fn put(&self, stream: &str, values: std::ops::Range<i64>) {
        let entries = values
            .map(|k| PutEntry {
                partition_key: format!("key-{k}"),
                explicit_hash_key: None,
                data: format!("{{\"k\": {k}}}").into_bytes(),
            })
            .collect();
        self.streams.put_blocking(stream, entries).unwrap();
    }

    fn connectors(&self) -> Connectors {
        Connectors::new(Services {
            streams: Some(self.streams.clone()),
            firehose: None,
            video: None,
            port: None,
        })
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]))
}

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn values(batch: &RecordBatch) -> Vec<i64> {
    batch
        .column(0)
        .as_primitive::<Int64Type>()
        .iter()
        .flatten()
        .collect()
}

/// Polls every reader in turn until `expected` rows have come or nothing
/// comes for a while; the rows in the order they were handed over.
fn drain(readers: &mut [Box<dyn BatchReader>], expected: usize) -> Vec<i64> {
    let mut rows = Vec::new();
    let mut idle_rounds = 0;
    while rows.len() < expected && idle_rounds < 200 {
        let mut any = false;
        for reader in readers.iter_mut() {
            match reader.poll().unwrap() {
                Poll::Batch(batch) => {
                    any = true;
                    rows.extend(values(&batch));
                }
                Poll::Idle => {}
                Poll::Done => panic!("a kinesis source never ends by itself"),
            }
        }
        if !any {
            idle_rounds += 1;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    rows
}

fn read_across_a_split(workers: usize) {
    let fixture = open();
    fixture.create("clicks", 1);
    fixture.put("clicks", 0..100);
    let middle = u128::MAX / 2;
    fixture
        .runtime
        .block_on(fixture.streams.split_shard("clicks", 0, middle))
        .unwrap();
    fixture.put("clicks", 100..200);
    let provider = fixture
        .connectors()
        .source_provider(
            options(&[
                ("connector", "kinesis"),
                (
                    "stream.arn",
                    "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks",
                ),
                ("aws.region", "eu-west-1"),
                ("source.init.position", "TRIM_HORIZON"),
                ("format", "json"),
            ]),
            schema(),
        )
        .unwrap();
    let mut readers: Vec<Box<dyn BatchReader>> = (0..workers)
        .map(|w| provider.reader(w, workers).unwrap())
        .collect();
    let rows = drain(&mut readers, 200);
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..200).collect::<Vec<_>>(), "every record once");
    let first_child_row = rows.iter().position(|&k| k >= 100).unwrap();
    assert!(
        rows[first_child_row..].iter().all(|&k| k >= 100),
        "a child shard is read only after its parent: {rows:?}"
    );
    assert_eq!(
        rows[..first_child_row],
        (0..100).collect::<Vec<_>>()[..],
        "a shard is read in order"
    );
    let positions = provider.positions();
    assert_eq!(positions.len(), 3, "{positions:?}");
    assert!(positions[0].finished && !positions[1].finished && !positions[2].finished);
}

#[test]
fn one_worker_reads_a_parent_shard_before_its_children() {
    read_across_a_split(1);
}

#[test]
fn workers_share_which_parents_are_done() {
    read_across_a_split(2);
}

#[test]
fn latest_skips_what_was_there_and_reads_what_comes() {
    let fixture = open();
    fixture.create("events", 2);
    fixture.put("events", 0..10);
    let provider = fixture
        .connectors()
        .source_provider(
            options(&[
                ("connector", "kinesis"),
                ("stream", "events"),
                ("format", "json"),
            ]),
            schema(),
        )
        .unwrap();
    let mut readers = vec![provider.reader(0, 1).unwrap()];
    assert!(drain(&mut readers, 1).is_empty());
    fixture.put("events", 10..20);
    let mut rows = drain(&mut readers, 10);
    rows.sort_unstable();
    assert_eq!(rows, (10..20).collect::<Vec<_>>());
}

#[test]
fn rows_are_written_as_records_keyed_by_their_partition_columns() {
    let fixture = open();
    fixture.create("out", 1);
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("page", DataType::Utf8, true),
        Field::new("k", DataType::Int64, true),
    ]));
    let provider = fixture
        .connectors()
        .sink_provider(
            options(&[
                ("connector", "kinesis"),
                ("stream", "out"),
                ("format", "json"),
                ("sink.batch.max-size", "2"),
                (runnel_engine::connector::PARTITION_KEYS, "page,k"),
            ]),
            schema.clone(),
        )
        .unwrap();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![Some("/a"), None, Some("/c")])),
            Arc::new(Int64Array::from(vec![1, 2, 3])),
        ],
    )
    .unwrap();
    let mut sink = provider.sink(0, 1).unwrap();
    sink.write(batch, 0).unwrap();
    let iterator = fixture
        .streams
        .shard_iterator("out", 0, &IteratorStart::TrimHorizon)
        .unwrap();
    let records = fixture.streams.get_records(&iterator, 100).unwrap().records;
    let got: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r.partition_key.clone(),
                String::from_utf8(r.data.clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("/a|1".to_string(), "{\"page\":\"/a\",\"k\":1}".to_string()),
            ("null|2".to_string(), "{\"page\":null,\"k\":2}".to_string()),
            ("/c|3".to_string(), "{\"page\":\"/c\",\"k\":3}".to_string()),
        ]
    );
}

#[test]
fn bad_tables_are_refused_when_the_job_is_planned() {
    let fixture = open();
    fixture.create("s", 1);
    let refuse = |pairs: &[(&str, &str)], services: Option<&Connectors>| {
        let connectors = services.cloned().unwrap_or_default();
        let source = connectors
            .source_provider(options(pairs), schema())
            .err()
            .map(|e| e.to_string());
        source.unwrap_or_default()
    };
    let connectors = fixture.connectors();
    let message = refuse(
        &[
            ("connector", "kinesis"),
            ("stream", "nope"),
            ("format", "json"),
        ],
        Some(&connectors),
    );
    assert!(message.contains("nope"), "{message}");
    let message = refuse(
        &[("connector", "kinesis"), ("format", "json")],
        Some(&connectors),
    );
    assert!(message.contains("stream.arn"), "{message}");
    let message = refuse(
        &[
            ("connector", "kinesis"),
            ("stream", "s"),
            ("format", "parquet"),
        ],
        Some(&connectors),
    );
    assert!(message.contains("unsupported format"), "{message}");
    let message = refuse(
        &[
            ("connector", "kinesis"),
            ("stream", "s"),
            ("format", "json"),
            ("scan.typo", "1"),
        ],
        Some(&connectors),
    );
    assert!(message.contains("scan.typo"), "{message}");
    let message = refuse(
        &[
            ("connector", "kinesis"),
            ("stream", "s"),
            ("format", "json"),
        ],
        None,
    );
    assert!(message.contains("runnel jobs submit"), "{message}");
    let sink = connectors
        .sink_provider(
            options(&[
                ("connector", "kinesis"),
                ("stream", "s"),
                ("format", "json"),
                ("sink.partitioner", "fixed"),
                (runnel_engine::connector::PARTITION_KEYS, "k"),
            ]),
            schema(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(sink.contains("PARTITIONED BY"), "{sink}");
}

// Checkpoints.

fn provider_of(
    fixture: &Fixture,
    stream: &str,
    extra: &[(&str, &str)],
) -> Arc<dyn runnel_engine::connector::SourceProvider> {
    let mut pairs = vec![
        ("connector", "kinesis"),
        ("stream", stream),
        ("format", "json"),
    ];
    pairs.extend_from_slice(extra);
    fixture
        .connectors()
        .source_provider(options(&pairs), schema())
        .unwrap()
}

/// Each reader's position, then new readers of a new provider (a
/// restarted job) restored from them.
fn restart(
    provider: &dyn Fn() -> Arc<dyn runnel_engine::connector::SourceProvider>,
    readers: &mut [Box<dyn BatchReader>],
) -> Vec<Box<dyn BatchReader>> {
    let workers = readers.len();
    let positions: Vec<Vec<u8>> = readers
        .iter_mut()
        .map(|r| r.checkpoint_position().unwrap().unwrap())
        .collect();
    let provider = provider();
    assert!(provider.checkpointable());
    positions
        .iter()
        .enumerate()
        .map(|(worker, position)| {
            let mut reader = provider.reader(worker, workers).unwrap();
            reader.restore_position(position).unwrap();
            reader
        })
        .collect()
}

fn assert_once(mut rows: Vec<i64>, expected: std::ops::Range<i64>) {
    rows.sort_unstable();
    assert_eq!(
        rows,
        expected.collect::<Vec<_>>(),
        "every record exactly once"
    );
}

#[test]
fn a_restored_reader_drops_the_rows_of_a_page_it_had_handed_out() {
    let fixture = open();
    fixture.create("big", 1);
    // One page of 10,000 records is decoded into two batches: the
    // checkpoint comes between them.
    fixture.put("big", 0..20_000);
    let provider = || provider_of(&fixture, "big", &[("source.init.position", "TRIM_HORIZON")]);
    let mut readers = vec![provider().reader(0, 1).unwrap()];
    let mut before = Vec::new();
    match readers[0].poll().unwrap() {
        Poll::Batch(batch) => before.extend(values(&batch)),
        _ => panic!("the first poll reads a batch"),
    }
    assert!(before.len() < 10_000, "a page in several batches");
    let position = readers[0].checkpoint_position().unwrap().unwrap();
    // What the old reader reads after the checkpoint is read again by the
    // restored one.
    drain(&mut readers, 5_000);
    let mut restored = provider().reader(0, 1).unwrap();
    restored.restore_position(&position).unwrap();
    let after = drain(std::slice::from_mut(&mut restored), 20_000 - before.len());
    let mut rows = before;
    rows.extend(after);
    assert_eq!(rows, (0..20_000).collect::<Vec<_>>(), "in order, once");
}

/// Reads part of a stream split in two, checkpoints every reader, and
/// reads the rest with readers restored from that: parents before
/// children, nothing twice, nothing lost.
fn restore_across_a_split(workers: usize, cut: usize, remote: bool) {
    let fixture = open();
    // Another endpoint's stream, read through its API.
    let endpoint = remote.then(|| endpoint::serve(fixture.streams.clone()));
    let mut extra = vec![
        ("source.init.position", "TRIM_HORIZON"),
        ("source.shard.get-records.max-record-count", "7"),
        ("source.reader.empty-records-fetch-interval", "1 ms"),
    ];
    if let Some(url) = &endpoint {
        extra.push(("aws.endpoint", url.as_str()));
    }
    fixture.create("clicks", 1);
    fixture.put("clicks", 0..100);
    fixture
        .runtime
        .block_on(fixture.streams.split_shard("clicks", 0, u128::MAX / 2))
        .unwrap();
    fixture.put("clicks", 100..200);
    let provider = || provider_of(&fixture, "clicks", &extra);
    let first = provider();
    let mut readers: Vec<Box<dyn BatchReader>> = (0..workers)
        .map(|w| first.reader(w, workers).unwrap())
        .collect();
    let before = drain(&mut readers, cut);
    assert!(
        before.len() >= cut.min(200) && before.len() < 200,
        "{cut}: {}",
        before.len()
    );
    let mut restored = restart(&provider, &mut readers);
    drop(readers);
    // Written while the job was down.
    fixture.put("clicks", 200..250);
    let after = drain(&mut restored, 250 - before.len());
    let parent_rest: Vec<i64> = after.iter().copied().filter(|k| *k < 100).collect();
    if let Some(first_child_row) = after.iter().position(|&k| k >= 100) {
        assert!(
            after[first_child_row..].iter().all(|&k| k >= 100) || workers > 1,
            "{cut}: a child shard only after its parent: {after:?}"
        );
    }
    assert!(
        parent_rest.windows(2).all(|w| w[0] < w[1]),
        "{parent_rest:?}"
    );
    let mut rows = before;
    rows.extend(after);
    assert_once(rows, 0..250);
}

#[test]
fn a_restored_reader_reads_exactly_the_rest_across_a_split() {
    for cut in [1, 35, 100, 150] {
        restore_across_a_split(1, cut, false);
    }
}

#[test]
fn restored_workers_read_exactly_the_rest_across_a_split() {
    for cut in [1, 35, 100, 150] {
        restore_across_a_split(2, cut, false);
    }
}

#[test]
fn restored_readers_of_another_endpoint_read_exactly_the_rest() {
    for cut in [35, 150] {
        restore_across_a_split(2, cut, true);
    }
}

#[test]
fn a_shard_started_at_latest_resumes_where_it_started() {
    let fixture = open();
    fixture.create("events", 1);
    fixture.put("events", 0..10);
    let provider = || provider_of(&fixture, "events", &[]);
    // Not in the millisecond the reader starts in.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let mut readers = vec![provider().reader(0, 1).unwrap()];
    assert!(drain(&mut readers, 1).is_empty());
    let mut restored = restart(&provider, &mut readers);
    // Written after the checkpoint, before the restored reader starts: a
    // LATEST taken again would skip them.
    fixture.put("events", 10..20);
    assert_once(drain(&mut restored, 10), 10..20);
}

#[test]
fn a_position_trimmed_by_retention_resumes_at_the_trim_horizon() {
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(1_700_000_000_000));
    let fixture = open_with(StreamsConfig {
        limits: None,
        clock: {
            let clock = clock.clone();
            Arc::new(move || clock.load(std::sync::atomic::Ordering::SeqCst))
        },
        ..StreamsConfig::default()
    });
    fixture.create("old", 1);
    fixture.put("old", 0..10);
    let provider = || {
        provider_of(
            &fixture,
            "old",
            &[
                ("source.init.position", "TRIM_HORIZON"),
                ("source.shard.get-records.max-record-count", "5"),
            ],
        )
    };
    let mut readers = vec![provider().reader(0, 1).unwrap()];
    let before = drain(&mut readers, 5);
    assert_eq!(before, (0..5).collect::<Vec<_>>());
    let position = readers[0].checkpoint_position().unwrap().unwrap();
    // The job stays down past the stream's 24 hours of retention.
    clock.fetch_add(25 * 3_600_000, std::sync::atomic::Ordering::SeqCst);
    fixture.put("old", 10..20);
    fixture
        .runtime
        .block_on(fixture.streams.trim_expired())
        .unwrap();
    let mut restored = provider().reader(0, 1).unwrap();
    restored.restore_position(&position).unwrap();
    let after = drain(std::slice::from_mut(&mut restored), 10);
    assert_eq!(after, (10..20).collect::<Vec<_>>());
}

#[test]
fn a_position_of_another_worker_count_is_refused() {
    let fixture = open();
    fixture.create("two", 2);
    fixture.put("two", 0..10);
    let provider = provider_of(&fixture, "two", &[("source.init.position", "TRIM_HORIZON")]);
    let mut readers = vec![provider.reader(0, 1).unwrap()];
    drain(&mut readers, 10);
    let position = readers[0].checkpoint_position().unwrap().unwrap();
    let mut reader = provider.reader(0, 2).unwrap();
    let refused = reader
        .restore_position(&position)
        .err()
        .map(|e| e.to_string());
    assert!(
        refused.as_deref().is_some_and(|m| m.contains("workers")),
        "{refused:?}"
    );
}

fn sink_provider_of(
    fixture: &Fixture,
    stream: &str,
    extra: &[(&str, &str)],
) -> Arc<dyn runnel_engine::connector::SinkProvider> {
    let mut pairs = vec![
        ("connector", "kinesis"),
        ("stream", stream),
        ("format", "json"),
    ];
    pairs.extend_from_slice(extra);
    fixture
        .connectors()
        .sink_provider(options(&pairs), schema())
        .unwrap()
}

fn rows(values: std::ops::Range<i64>) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from_iter_values(values))],
    )
    .unwrap()
}

/// Every record's data in a stream, shard by shard.
fn stream_datas(fixture: &Fixture, stream: &str) -> Vec<String> {
    let shards = fixture.streams.describe(stream).unwrap().meta.shards;
    let mut datas = Vec::new();
    for shard in shards {
        let iterator = fixture
            .streams
            .shard_iterator(stream, shard.index, &IteratorStart::TrimHorizon)
            .unwrap();
        let out = fixture.streams.get_records(&iterator, 10_000).unwrap();
        datas.extend(
            out.records
                .into_iter()
                .map(|r| String::from_utf8(r.data).unwrap()),
        );
    }
    datas
}

/// Runs `body` as a worker of a job checkpointed in `mode`.
fn in_checkpointed_worker<T>(mode: runnel_engine::checkpoint::Mode, body: impl FnOnce() -> T) -> T {
    runnel_engine::checkpoint::worker::install(mode, None);
    let result = body();
    runnel_engine::checkpoint::worker::uninstall();
    result
}

#[test]
fn an_exactly_once_sink_holds_its_records_until_a_checkpoint_takes_them() {
    let fixture = open();
    fixture.create("out", 2);
    let provider = sink_provider_of(&fixture, "out", &[("sink.batch.max-size", "2")]);
    assert!(provider.checkpointable());
    let mut sink = in_checkpointed_worker(runnel_engine::checkpoint::Mode::ExactlyOnce, || {
        provider.sink(0, 1).unwrap()
    });
    sink.write(rows(0..3), 0).unwrap();
    sink.write(rows(3..5), 0).unwrap();
    sink.watermark(Some(0)).unwrap();
    // The end of input writes nothing either: the final checkpoint does.
    sink.watermark(None).unwrap();
    assert!(stream_datas(&fixture, "out").is_empty());
    let outputs = sink.checkpoint_output(1).unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].stream, "out");
    assert_eq!(outputs[0].records.len(), 5);
    assert!(sink.checkpoint_output(2).unwrap().is_empty(), "taken once");
    let puts = runnel_connectors::kinesis::stream_puts(outputs);
    fixture.streams.commit_with(puts, Vec::new()).unwrap();
    let mut datas = stream_datas(&fixture, "out");
    datas.sort();
    assert_eq!(
        datas,
        (0..5).map(|k| format!("{{\"k\":{k}}}")).collect::<Vec<_>>()
    );
}

#[test]
fn an_exactly_once_sink_refuses_an_oversized_record_when_it_is_written() {
    let fixture = open();
    fixture.create("out", 1);
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
    let provider = fixture
        .connectors()
        .sink_provider(
            options(&[
                ("connector", "kinesis"),
                ("stream", "out"),
                ("format", "json"),
                ("sink.fail-on-error", "true"),
            ]),
            schema.clone(),
        )
        .unwrap();
    let mut sink = in_checkpointed_worker(runnel_engine::checkpoint::Mode::ExactlyOnce, || {
        provider.sink(0, 1).unwrap()
    });
    let big = "x".repeat(fixture.streams.max_record_bytes("out").unwrap());
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec![
            Some("small"),
            Some(big.as_str()),
        ]))],
    )
    .unwrap();
    let refused = sink.write(batch, 0).err().map(|e| e.to_string());
    assert!(
        refused.as_deref().is_some_and(|m| m.contains("larger")),
        "{refused:?}"
    );
}

#[test]
fn an_at_least_once_sink_writes_at_once() {
    let fixture = open();
    fixture.create("out", 1);
    let provider = sink_provider_of(&fixture, "out", &[]);
    let mut sink = in_checkpointed_worker(runnel_engine::checkpoint::Mode::AtLeastOnce, || {
        provider.sink(0, 1).unwrap()
    });
    sink.write(rows(0..3), 0).unwrap();
    assert_eq!(stream_datas(&fixture, "out").len(), 3);
    assert!(sink.checkpoint_output(1).unwrap().is_empty());
}

/// A Kinesis endpoint over HTTP in front of the fixture's streams: the few
/// operations the connector calls, so that its remote log and remote sink
/// are tried against the same data as the local ones.
mod endpoint {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use runnel_streams::model::{parse_shard_id, shard_id};
    use runnel_streams::{IteratorStart, PutEntry, PutOutcome, Streams, StreamsError};
    use serde_json::{Value, json};

    /// Serves until the test process ends; the endpoint's URL.
    pub fn serve(streams: Arc<Streams>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for connection in listener.incoming().flatten() {
                let streams = streams.clone();
                std::thread::spawn(move || connection_loop(&streams, connection));
            }
        });
        url
    }

    fn connection_loop(streams: &Streams, connection: TcpStream) {
        let _ = connection.set_nodelay(true);
        let Ok(mut writer) = connection.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(connection);
        while let Some((target, body)) = request(&mut reader) {
            let operation = target.rsplit('.').next().unwrap_or_default().to_string();
            let (status, answer) = match call(streams, &operation, &body) {
                Ok(answer) => (200, answer),
                Err(error) => (400, error),
            };
            let text = answer.to_string();
            // One write: a head and body written apart wait on delayed ACKs.
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            );
            if writer.write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    }

    /// One request's `x-amz-target` and JSON body; `None` once the client
    /// closes the connection.
    fn request(reader: &mut BufReader<TcpStream>) -> Option<(String, Value)> {
        let mut target = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "x-amz-target" => target = value.trim().to_string(),
                    "content-length" => length = value.trim().parse().ok()?,
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some((target, serde_json::from_slice(&body).ok()?))
    }

    fn error(error: StreamsError) -> Value {
        let kind = match error {
            StreamsError::ExpiredIterator(_) => "ExpiredIteratorException",
            StreamsError::NotFound(_) => "ResourceNotFoundException",
            _ => "InvalidArgumentException",
        };
        json!({"__type": kind, "message": error.to_string()})
    }

    fn text<'a>(body: &'a Value, field: &str) -> &'a str {
        body.get(field).and_then(Value::as_str).unwrap_or_default()
    }

    fn call(streams: &Streams, operation: &str, body: &Value) -> Result<Value, Value> {
        let stream = text(body, "StreamName");
        match operation {
            "DescribeStreamSummary" => {
                streams.describe(stream).map_err(error)?;
                Ok(json!({"StreamDescriptionSummary": {"StreamName": stream}}))
            }
            "ListShards" => {
                let meta = streams.describe(stream).map_err(error)?.meta;
                let shards: Vec<Value> = meta
                    .shards
                    .iter()
                    .map(|s| {
                        json!({
                            "ShardId": s.shard_id(),
                            "ParentShardId": s.parent.map(shard_id),
                            "AdjacentParentShardId": s.adjacent_parent.map(shard_id),
                        })
                    })
                    .collect();
                Ok(json!({ "Shards": shards }))
            }
            "GetShardIterator" => {
                let shard = parse_shard_id(text(body, "ShardId")).unwrap_or(u32::MAX);
                let sequence = text(body, "StartingSequenceNumber").to_string();
                let start = match text(body, "ShardIteratorType") {
                    "TRIM_HORIZON" => IteratorStart::TrimHorizon,
                    "LATEST" => IteratorStart::Latest,
                    "AT_SEQUENCE_NUMBER" => IteratorStart::AtSequence(sequence),
                    "AFTER_SEQUENCE_NUMBER" => IteratorStart::AfterSequence(sequence),
                    _ => IteratorStart::AtTimestamp(
                        (body.get("Timestamp").and_then(Value::as_f64).unwrap_or(0.0) * 1000.0)
                            as u64,
                    ),
                };
                let iterator = streams
                    .shard_iterator(stream, shard, &start)
                    .map_err(error)?;
                Ok(json!({ "ShardIterator": iterator }))
            }
            "GetRecords" => {
                let limit = body.get("Limit").and_then(Value::as_u64).unwrap_or(10_000);
                let out = streams
                    .get_records(text(body, "ShardIterator"), limit as usize)
                    .map_err(error)?;
                let records: Vec<Value> = out
                    .records
                    .iter()
                    .map(|r| {
                        json!({
                            "Data": STANDARD.encode(&r.data),
                            "PartitionKey": r.partition_key,
                            "SequenceNumber": r.sequence_number,
                            "ApproximateArrivalTimestamp": r.arrival_ms as f64 / 1000.0,
                        })
                    })
                    .collect();
                Ok(json!({
                    "Records": records,
                    "NextShardIterator": out.next_iterator,
                    "MillisBehindLatest": out.millis_behind_latest,
                }))
            }
            "PutRecords" => {
                let entries: Vec<PutEntry> = body
                    .get("Records")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|r| PutEntry {
                        partition_key: text(r, "PartitionKey").to_string(),
                        explicit_hash_key: r
                            .get("ExplicitHashKey")
                            .and_then(Value::as_str)
                            .and_then(|h| h.parse().ok()),
                        data: STANDARD.decode(text(r, "Data")).unwrap_or_default(),
                    })
                    .collect();
                let outcomes = streams.put_blocking(stream, entries).map_err(error)?;
                let records: Vec<Value> = outcomes
                    .iter()
                    .map(|o| match o {
                        PutOutcome::Written { shard, counter } => json!({
                            "ShardId": shard_id(*shard),
                            "SequenceNumber": runnel_streams::model::sequence_number(*shard, *counter),
                        }),
                        PutOutcome::Throttled { message } => json!({
                            "ErrorCode": "ProvisionedThroughputExceededException",
                            "ErrorMessage": message,
                        }),
                    })
                    .collect();
                Ok(json!({"FailedRecordCount": 0, "Records": records}))
            }
            other => Err(json!({"__type": "UnknownOperationException", "message": other})),
        }
    }
}

#[test]
fn a_sink_to_another_endpoint_sends_everything_at_a_checkpoint() {
    let fixture = open();
    fixture.create("out", 1);
    let url = endpoint::serve(fixture.streams.clone());
    let provider = sink_provider_of(
        &fixture,
        "out",
        &[
            ("aws.endpoint", url.as_str()),
            ("sink.flush-buffer.timeout", "1 h"),
        ],
    );
    let mut sink = in_checkpointed_worker(runnel_engine::checkpoint::Mode::ExactlyOnce, || {
        provider.sink(0, 1).unwrap()
    });
    sink.write(rows(0..3), 0).unwrap();
    sink.write(rows(3..5), 0).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(
        stream_datas(&fixture, "out").is_empty(),
        "buffered until the flush timeout"
    );
    assert!(sink.checkpoint_output(1).unwrap().is_empty());
    assert_eq!(stream_datas(&fixture, "out").len(), 5, "acknowledged");
    sink.write(rows(5..6), 0).unwrap();
    sink.watermark(None).unwrap();
    assert!(sink.checkpoint_output(2).unwrap().is_empty());
    assert_eq!(stream_datas(&fixture, "out").len(), 6);
}
