//! `Streams::commit_with`: the records of several streams and writes to
//! another column family, all in one synced write or none of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use runnel_store::Store;
use runnel_streams::{
    CapacityMode, ExtraWrite, IteratorStart, PutEntry, Streams, StreamsConfig, StreamsError, Wake,
};

use crate::log::entry;

const EXTRA_CF: &str = "test.checkpoints";

struct Fixture {
    streams: Streams,
    runtime: tokio::runtime::Runtime,
    store: Store,
    _dir: tempfile::TempDir,
}

/// Streams with their default write limits on, and a column family of
/// another owner for the extra writes.
fn open() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut families = runnel_streams::COLUMN_FAMILIES.to_vec();
    families.push(EXTRA_CF);
    let store = Store::open(dir.path(), &families).unwrap();
    let streams = Streams::open(store.db().clone(), StreamsConfig::default()).unwrap();
    Fixture {
        streams,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        store,
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

    fn extra(&self, key: &[u8]) -> Option<Vec<u8>> {
        let db = self.store.db();
        db.get_cf(db.cf_handle(EXTRA_CF).unwrap(), key).unwrap()
    }

    /// Every record of every shard of `stream`, as text, shard by shard.
    fn read_all(&self, stream: &str) -> Vec<String> {
        let shards = self.streams.describe(stream).unwrap().meta.shards;
        let mut datas = Vec::new();
        for shard in shards {
            let iterator = self
                .streams
                .shard_iterator(stream, shard.index, &IteratorStart::TrimHorizon)
                .unwrap();
            let out = self.streams.read_subscription(&iterator, 10_000).unwrap();
            datas.extend(
                out.records
                    .iter()
                    .map(|r| String::from_utf8(r.data.clone()).unwrap()),
            );
        }
        datas
    }
}

fn records(prefix: &str, n: usize) -> Vec<PutEntry> {
    (0..n)
        .map(|i| entry(&format!("{prefix}-{i}"), &format!("{prefix}{i}")))
        .collect()
}

fn checkpoint_key(value: &[u8]) -> ExtraWrite {
    ExtraWrite {
        column_family: EXTRA_CF.into(),
        key: b"checkpoint/1".to_vec(),
        value: Some(value.to_vec()),
    }
}

fn sorted(mut datas: Vec<String>) -> Vec<String> {
    datas.sort();
    datas
}

#[test]
fn records_of_two_streams_and_an_extra_key_land_together() {
    let f = open();
    f.create("a", 1);
    f.create("b", 2);
    let woken = Arc::new(AtomicUsize::new(0));
    let wake: Wake = {
        let woken = woken.clone();
        Arc::new(move || {
            woken.fetch_add(1, Ordering::SeqCst);
        })
    };
    f.streams.on_append("b", &wake).unwrap();
    // More records than a shard's write limit takes in a second (1,000):
    // a transaction is never throttled.
    f.streams
        .commit_with(
            vec![
                ("a".into(), records("a", 1_500)),
                ("b".into(), records("b", 20)),
                ("a".into(), records("again", 2)),
            ],
            vec![checkpoint_key(b"state")],
        )
        .unwrap();
    assert_eq!(f.extra(b"checkpoint/1").as_deref(), Some(&b"state"[..]));
    let a = f.read_all("a");
    assert_eq!(a.len(), 1_502);
    assert_eq!(a[..3], ["a0", "a1", "a2"], "in the order given");
    assert_eq!(a[1_500..], ["again0", "again1"]);
    assert_eq!(
        sorted(f.read_all("b")),
        sorted((0..20).map(|i| format!("b{i}")).collect())
    );
    assert!(woken.load(Ordering::SeqCst) >= 1, "readers are woken");
    // A put after the transaction goes on after its sequence numbers.
    f.streams
        .put_blocking("a", vec![entry("k", "later")])
        .unwrap();
    assert_eq!(f.read_all("a").last().map(String::as_str), Some("later"));
    // A delete among the extra writes.
    f.streams
        .commit_with(
            Vec::new(),
            vec![ExtraWrite {
                value: None,
                ..checkpoint_key(b"")
            }],
        )
        .unwrap();
    assert_eq!(f.extra(b"checkpoint/1"), None);
}

#[test]
fn a_missing_stream_writes_nothing() {
    let f = open();
    f.create("a", 1);
    // A put just before: committed on its own, not dropped with the
    // transaction.
    f.streams
        .put_blocking("a", vec![entry("k", "before")])
        .unwrap();
    let failed = f.streams.commit_with(
        vec![
            ("a".into(), records("a", 3)),
            ("nope".into(), records("n", 1)),
        ],
        vec![checkpoint_key(b"state")],
    );
    assert!(
        matches!(failed, Err(StreamsError::NotFound(ref m)) if m.contains("nope")),
        "{failed:?}"
    );
    assert_eq!(f.read_all("a"), ["before"]);
    assert_eq!(f.extra(b"checkpoint/1"), None);
}

#[test]
fn a_record_too_large_or_an_unknown_column_family_writes_nothing() {
    let f = open();
    f.create("a", 1);
    let max = f.streams.max_record_bytes("a").unwrap();
    let mut big = records("a", 2);
    big[1].data = vec![b'x'; max];
    let too_large = f
        .streams
        .commit_with(vec![("a".into(), big)], vec![checkpoint_key(b"state")]);
    assert!(
        matches!(
            too_large,
            Err(StreamsError::RecordTooLarge { index: 1, .. })
        ),
        "{too_large:?}"
    );
    let unknown_family = f.streams.commit_with(
        vec![("a".into(), records("a", 2))],
        vec![ExtraWrite {
            column_family: "not.open".into(),
            key: b"k".to_vec(),
            value: None,
        }],
    );
    assert!(unknown_family.is_err());
    assert!(f.read_all("a").is_empty());
    assert_eq!(f.extra(b"checkpoint/1"), None);
    assert!(f.streams.max_record_bytes("nope").is_err());
}
