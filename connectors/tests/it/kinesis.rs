//! The `kinesis` connector against a real stream log in a temporary data
//! dir: shards read in lineage order across a split, by one worker or
//! several, and rows written back as records.

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
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), runnel_streams::COLUMN_FAMILIES).unwrap();
    let streams = Streams::open(
        store.db().clone(),
        StreamsConfig {
            limits: None,
            ..StreamsConfig::default()
        },
    )
    .unwrap();
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
