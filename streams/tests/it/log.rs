use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use runnel_store::Store;
use runnel_streams::{
    CapacityMode, IteratorStart, PutEntry, PutOutcome, Streams, StreamsConfig, StreamsError,
};

pub struct Fixture {
    pub streams: Streams,
    pub clock: Arc<AtomicU64>,
    _store: Store,
    _dir: tempfile::TempDir,
}

pub fn open_with(config: StreamsConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), runnel_streams::COLUMN_FAMILIES).unwrap();
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let c = clock.clone();
    let config = StreamsConfig {
        clock: Arc::new(move || c.load(Ordering::SeqCst)),
        ..config
    };
    let streams = Streams::open(store.db().clone(), config).unwrap();
    Fixture {
        streams,
        clock,
        _store: store,
        _dir: dir,
    }
}

pub fn open() -> Fixture {
    open_with(StreamsConfig {
        limits: None,
        ..StreamsConfig::default()
    })
}

pub fn entry(key: &str, data: &str) -> PutEntry {
    PutEntry {
        partition_key: key.into(),
        explicit_hash_key: None,
        data: data.as_bytes().to_vec(),
    }
}

pub fn seq(outcome: &PutOutcome) -> String {
    match outcome {
        PutOutcome::Written { shard, counter } => {
            runnel_streams::model::sequence_number(*shard, *counter)
        }
        PutOutcome::Throttled { message } => panic!("put throttled: {message}"),
    }
}

fn datas(out: &runnel_streams::GetRecordsOutput) -> Vec<String> {
    out.records
        .iter()
        .map(|r| String::from_utf8(r.data.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn every_iterator_type_reads_from_where_it_says() {
    let f = open();
    let s = &f.streams;
    s.create_stream("s", 1, CapacityMode::Provisioned)
        .await
        .unwrap();
    let latest = s.shard_iterator("s", 0, &IteratorStart::Latest).unwrap();
    let first = s
        .put("s", vec![entry("k", "a"), entry("k", "b")])
        .await
        .unwrap();
    f.clock.fetch_add(1000, Ordering::SeqCst);
    let t1 = f.clock.load(Ordering::SeqCst);
    let second = s.put("s", vec![entry("k", "c")]).await.unwrap();
    assert!(seq(&first[0]).parse::<u128>().unwrap() < seq(&first[1]).parse::<u128>().unwrap());

    let read = |start: IteratorStart| {
        let it = s.shard_iterator("s", 0, &start).unwrap();
        datas(&s.get_records(&it, 100).unwrap())
    };
    assert_eq!(read(IteratorStart::TrimHorizon), ["a", "b", "c"]);
    assert_eq!(
        datas(&s.get_records(&latest, 100).unwrap()),
        ["a", "b", "c"]
    );
    assert!(read(IteratorStart::Latest).is_empty());
    assert_eq!(read(IteratorStart::AtSequence(seq(&first[1]))), ["b", "c"]);
    assert_eq!(read(IteratorStart::AfterSequence(seq(&first[1]))), ["c"]);
    assert_eq!(read(IteratorStart::AtTimestamp(t1)), ["c"]);
    assert_eq!(read(IteratorStart::AtSequence(seq(&second[0]))), ["c"]);
}

#[tokio::test]
async fn get_records_pages_with_the_limit_and_reports_lag() {
    let f = open();
    let s = &f.streams;
    s.create_stream("s", 1, CapacityMode::Provisioned)
        .await
        .unwrap();
    let entries = (0..25).map(|i| entry("k", &i.to_string())).collect();
    s.put("s", entries).await.unwrap();
    f.clock.fetch_add(5000, Ordering::SeqCst);
    let mut it = s
        .shard_iterator("s", 0, &IteratorStart::TrimHorizon)
        .unwrap();
    let mut seen = Vec::new();
    for round in 0..3 {
        let out = s.get_records(&it, 10).unwrap();
        if round < 2 {
            assert_eq!(out.millis_behind_latest, 5000);
        } else {
            assert_eq!(out.millis_behind_latest, 0);
        }
        seen.extend(datas(&out));
        it = out.next_iterator.unwrap();
    }
    assert_eq!(seen, (0..25).map(|i| i.to_string()).collect::<Vec<_>>());
    assert!(s.get_records(&it, 10).unwrap().records.is_empty());
}

#[tokio::test]
async fn iterators_expire_after_five_minutes() {
    let f = open();
    let s = &f.streams;
    s.create_stream("s", 1, CapacityMode::Provisioned)
        .await
        .unwrap();
    let it = s
        .shard_iterator("s", 0, &IteratorStart::TrimHorizon)
        .unwrap();
    f.clock.fetch_add(5 * 60 * 1000 + 1, Ordering::SeqCst);
    assert!(matches!(
        s.get_records(&it, 10),
        Err(StreamsError::ExpiredIterator(_))
    ));
    assert!(matches!(
        s.get_records("garbage", 10),
        Err(StreamsError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn retention_trims_by_arrival_time() {
    let f = open();
    let s = &f.streams;
    s.create_stream("s", 1, CapacityMode::Provisioned)
        .await
        .unwrap();
    s.put("s", vec![entry("k", "old")]).await.unwrap();
    f.clock.fetch_add(23 * 3_600_000, Ordering::SeqCst);
    s.put("s", vec![entry("k", "new")]).await.unwrap();
    f.clock.fetch_add(3_600_000 + 1, Ordering::SeqCst);
    assert_eq!(s.trim_expired().await.unwrap(), 1);
    let it = s
        .shard_iterator("s", 0, &IteratorStart::TrimHorizon)
        .unwrap();
    assert_eq!(datas(&s.get_records(&it, 10).unwrap()), ["new"]);
}

#[tokio::test]
async fn writes_beyond_the_shard_limit_are_throttled_per_record() {
    let f = open_with(StreamsConfig::default());
    let s = &f.streams;
    s.create_stream("s", 1, CapacityMode::Provisioned)
        .await
        .unwrap();
    let entries = (0..1200).map(|i| entry("k", &i.to_string())).collect();
    let out = s.put("s", entries).await.unwrap();
    let failed = out
        .iter()
        .filter(|o| matches!(o, PutOutcome::Throttled { .. }))
        .count();
    assert_eq!(failed, 200);
    let it = s
        .shard_iterator("s", 0, &IteratorStart::TrimHorizon)
        .unwrap();
    for _ in 0..5 {
        s.get_records(&it, 1).unwrap();
    }
    assert!(matches!(
        s.get_records(&it, 1),
        Err(StreamsError::Throughput(_))
    ));
}

#[tokio::test]
async fn records_and_streams_survive_a_reopen_and_encryption_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let config = || StreamsConfig {
        limits: None,
        encryption_key: Some([9u8; 32]),
        ..StreamsConfig::default()
    };
    let sequences;
    {
        let store = Store::open(dir.path(), runnel_streams::COLUMN_FAMILIES).unwrap();
        let s = Streams::open(store.db().clone(), config()).unwrap();
        s.create_stream("s", 2, CapacityMode::Provisioned)
            .await
            .unwrap();
        s.set_encryption("s", Some("alias/k".into())).unwrap();
        let out = s
            .put("s", vec![entry("a", "secret"), entry("a", "two")])
            .await
            .unwrap();
        sequences = out.iter().map(seq).collect::<Vec<_>>();
        // Encrypted on disk: the plaintext is not in the raw value.
        let cf = store.cf("streams.records").unwrap();
        let raw: Vec<Vec<u8>> = store
            .db()
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|kv| kv.unwrap().1.to_vec())
            .collect();
        // One put into one shard is one block.
        assert_eq!(raw.len(), 1);
        assert!(!raw.iter().any(|v| v.windows(6).any(|w| w == b"secret")));
    }
    let store = Store::open(dir.path(), runnel_streams::COLUMN_FAMILIES).unwrap();
    let s = Streams::open(store.db().clone(), config()).unwrap();
    let info = s.describe("s").unwrap();
    let shard = runnel_streams::model::parse_sequence_number(&sequences[0])
        .unwrap()
        .0;
    let it = s
        .shard_iterator("s", shard, &IteratorStart::TrimHorizon)
        .unwrap();
    let out = s.get_records(&it, 10).unwrap();
    assert_eq!(info.meta.shards.len(), 2);
    assert_eq!(datas(&out), ["secret", "two"]);
    assert!(out.records.iter().all(|r| r.encrypted));
    assert_eq!(
        out.records
            .iter()
            .map(|r| r.sequence_number.clone())
            .collect::<Vec<_>>(),
        sequences
    );
    // A put after reopening continues the sequence.
    let next = s.put("s", vec![entry("a", "three")]).await.unwrap();
    assert!(seq(&next[0]).parse::<u128>().unwrap() > sequences[1].parse::<u128>().unwrap());
}

/// Records are stored a block per group commit and shard: reads that stop
/// inside a block go on from the next record, never skipping or repeating.
#[tokio::test]
async fn reads_that_stop_inside_a_block_go_on_from_the_next_record() {
    let f = open();
    let s = &f.streams;
    s.create_stream("s", 1, CapacityMode::Provisioned)
        .await
        .unwrap();
    let data: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
    s.put("s", data.iter().map(|d| entry("k", d)).collect())
        .await
        .unwrap();
    s.put("s", vec![entry("k", "r100")]).await.unwrap();
    let mut iterator = s
        .shard_iterator("s", 0, &IteratorStart::TrimHorizon)
        .unwrap();
    let mut read = Vec::new();
    for _ in 0..30 {
        let page = s.get_records(&iterator, 7).unwrap();
        assert!(page.records.len() <= 7);
        read.extend(
            page.records
                .iter()
                .map(|r| String::from_utf8(r.data.clone()).unwrap()),
        );
        iterator = page.next_iterator.unwrap();
        if page.millis_behind_latest == 0 && page.records.is_empty() {
            break;
        }
    }
    let expected: Vec<String> = (0..=100).map(|i| format!("r{i}")).collect();
    assert_eq!(read, expected);
    // AT_SEQUENCE_NUMBER inside a block starts at that record.
    let all = s
        .get_records(
            &s.shard_iterator("s", 0, &IteratorStart::TrimHorizon)
                .unwrap(),
            1000,
        )
        .unwrap();
    let at = s
        .shard_iterator(
            "s",
            0,
            &IteratorStart::AtSequence(all.records[42].sequence_number.clone()),
        )
        .unwrap();
    assert_eq!(s.get_records(&at, 1).unwrap().records[0].data, b"r42");
}

/// A data dir written before blocks (one record per key) is read as it
/// was, and new records follow its last one.
#[tokio::test]
async fn records_written_one_per_key_are_read_and_followed() {
    let dir = tempfile::tempdir().unwrap();
    let config = || StreamsConfig {
        limits: None,
        ..StreamsConfig::default()
    };
    {
        let store = Store::open(dir.path(), runnel_streams::COLUMN_FAMILIES).unwrap();
        let s = Streams::open(store.db().clone(), config()).unwrap();
        s.create_stream("old", 1, CapacityMode::Provisioned)
            .await
            .unwrap();
        let id = s.describe("old").unwrap().meta.id;
        let cf = store.cf("streams.records").unwrap();
        let now = s.now();
        for (i, counter) in [(0, now << 20), (1, (now << 20) + 1)] {
            store
                .db()
                .put_cf(
                    cf,
                    runnel_streams::keys::record_key(id, 0, counter),
                    runnel_streams::keys::encode_value(now, 0, "k", format!("old{i}").as_bytes()),
                )
                .unwrap();
        }
    }
    let store = Store::open(dir.path(), runnel_streams::COLUMN_FAMILIES).unwrap();
    let s = Streams::open(store.db().clone(), config()).unwrap();
    s.put("old", vec![entry("k", "new")]).await.unwrap();
    let page = s
        .get_records(
            &s.shard_iterator("old", 0, &IteratorStart::TrimHorizon)
                .unwrap(),
            100,
        )
        .unwrap();
    let data: Vec<&[u8]> = page.records.iter().map(|r| &r.data[..]).collect();
    assert_eq!(data, [&b"old0"[..], b"old1", b"new"]);
}
