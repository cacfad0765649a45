//! Buffering hints: an object when the buffer reaches `SizeInMBs` or when
//! `IntervalInSeconds` has passed since its oldest record; buffers survive
//! a restart.

use std::time::Duration;

use serde_json::json;

use crate::{Fixture, create, eventually, objects, records};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_is_delivered_at_once_and_the_rest_waits_for_the_interval() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    create(
        &firehose,
        "sized",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
               "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 900}}),
    );
    // 2.5 MiB: two full objects of 1 MiB; half a MiB stays buffered.
    for batch in records(2560, 1024).chunks(500) {
        firehose.put("sized", batch.to_vec()).await.unwrap();
    }
    let root = fixture.buckets().join("lake");
    assert!(eventually(Duration::from_secs(20), || objects(&root).len() == 2).await);
    let delivered = objects(&root);
    for (key, body) in &delivered {
        assert_eq!(body.len(), 1024 * 1024, "{key}");
    }
    // The records are in put order, across both objects.
    let all: Vec<u8> = delivered.iter().flat_map(|(_, b)| b.clone()).collect();
    let expected: Vec<u8> = records(2048, 1024).concat();
    let mut got = all
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect::<Vec<_>>();
    got.sort();
    let mut want = expected
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect::<Vec<_>>();
    want.sort();
    assert_eq!(got, want);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        objects(&root).len(),
        2,
        "the remainder waits for its interval"
    );
    let figures = firehose.figures();
    assert_eq!(figures[0].1.buffered_bytes, 512 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_buffer_is_delivered_when_its_interval_has_passed() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    create(
        &firehose,
        "timed",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
               "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 2}}),
    );
    let started = std::time::Instant::now();
    firehose.put("timed", records(10, 100)).await.unwrap();
    let root = fixture.buckets().join("lake");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(objects(&root).is_empty(), "written before its interval");
    assert!(eventually(Duration::from_secs(20), || objects(&root).len() == 1).await);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(objects(&root)[0].1, records(10, 100).concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_seconds_delivers_each_put_as_it_comes() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    create(
        &firehose,
        "now",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
               "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0}}),
    );
    let root = fixture.buckets().join("lake");
    for round in 1..=3 {
        firehose.put("now", records(5, 50)).await.unwrap();
        assert!(eventually(Duration::from_secs(10), || objects(&root).len() == round).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_records_survive_a_restart_and_are_delivered_after_it() {
    let mut fixture = Fixture::new();
    {
        let firehose = fixture.open();
        create(
            &firehose,
            "kept",
            json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
                   "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 900}}),
        );
        firehose.put("kept", records(100, 100)).await.unwrap();
    }
    fixture.reopen_store().await;
    let firehose = fixture.open();
    assert_eq!(firehose.figures()[0].1.buffered_bytes, 100 * 100);
    let version = firehose.describe("kept").unwrap().version;
    firehose
        .update_destination(
            "kept",
            &version.to_string(),
            runnel_firehose::DESTINATION_ID,
            &json!({"BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0}}),
        )
        .unwrap();
    let root = fixture.buckets().join("lake");
    assert!(eventually(Duration::from_secs(10), || objects(&root).len() == 1).await);
    assert_eq!(objects(&root)[0].1, records(100, 100).concat());
    assert!(
        eventually(Duration::from_secs(5), || firehose.figures()[0]
            .1
            .buffered_bytes
            == 0)
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_or_deleted_stream_is_refused() {
    let fixture = Fixture::new();
    let firehose = fixture.open();
    create(
        &firehose,
        "s",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r"}),
    );
    let error = firehose
        .update_destination("s", "7", runnel_firehose::DESTINATION_ID, &json!({}))
        .unwrap_err();
    assert!(
        matches!(
            error,
            runnel_firehose::FirehoseError::ConcurrentModification(_)
        ),
        "{error}"
    );
    assert!(
        eventually(Duration::from_secs(5), || firehose
            .describe("s")
            .is_ok_and(|m| m.status == runnel_firehose::Status::Active))
        .await
    );
    firehose.put("s", records(3, 10)).await.unwrap();
    firehose.delete("s").unwrap();
    // DELETING until its buffer is gone: no records, no changes.
    if let Ok(meta) = firehose.describe("s") {
        assert_eq!(meta.status, runnel_firehose::Status::Deleting);
        let error = firehose
            .tag("s", vec![("k".into(), "v".into())])
            .unwrap_err();
        assert!(
            matches!(error, runnel_firehose::FirehoseError::InUse(_)),
            "{error}"
        );
    }
    let error = firehose.put("s", records(1, 10)).await.unwrap_err();
    assert!(
        matches!(error, runnel_firehose::FirehoseError::NotFound(_)),
        "{error}"
    );
    assert!(eventually(Duration::from_secs(5), || firehose.describe("s").is_err()).await);
    // The name can be used again, with nothing of the old stream in it.
    create(
        &firehose,
        "s",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r"}),
    );
    assert_eq!(firehose.figures()[0].1.buffered_bytes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_streams_seal_their_buffer_and_deliver_plain_records() {
    let fixture = Fixture::new();
    let mut config = runnel_firehose::FirehoseConfig::new(fixture.buckets());
    config.encryption_key = Some([7u8; 32]);
    let db = fixture.store.as_ref().unwrap().db().clone();
    let firehose = runnel_firehose::Firehose::open(db.clone(), config).unwrap();
    create(
        &firehose,
        "sealed",
        json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
               "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 900}}),
    );
    firehose
        .put("sealed", vec![b"plain-before\n".to_vec()])
        .await
        .unwrap();
    firehose
        .set_encryption(
            "sealed",
            Some(runnel_firehose::Encryption {
                key_type: "AWS_OWNED_CMK".into(),
                key_arn: None,
            }),
        )
        .unwrap();
    assert!(firehose.is_encrypted("sealed"));
    firehose
        .put("sealed", vec![b"secret-after\n".to_vec()])
        .await
        .unwrap();
    // On disk: the first record as it came, the second sealed.
    let cf = db.cf_handle("firehose.records").unwrap();
    let stored: Vec<Vec<u8>> = db
        .iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|item| item.unwrap().1.to_vec())
        .collect();
    assert_eq!(stored.len(), 2);
    let contains =
        |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&stored[0], b"plain-before"));
    assert!(!contains(&stored[1], b"secret-after"));
    firehose
        .update_destination(
            "sealed",
            "1",
            runnel_firehose::DESTINATION_ID,
            &json!({"BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0}}),
        )
        .unwrap();
    let root = fixture.buckets().join("lake");
    assert!(eventually(Duration::from_secs(10), || objects(&root).len() == 1).await);
    assert_eq!(objects(&root)[0].1, b"plain-before\nsecret-after\n");
    // Without a key configured, encryption is refused by name.
    let plain = fixture.open();
    let error = plain
        .set_encryption(
            "sealed",
            Some(runnel_firehose::Encryption {
                key_type: "AWS_OWNED_CMK".into(),
                key_arn: None,
            }),
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("streams.encryption_key"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_may_end_inside_a_block_and_the_rest_survives_a_restart() {
    let mut fixture = Fixture::new();
    // 1,500-byte records: 1 MiB objects end inside 64 KiB blocks.
    let all = records(1000, 1500);
    {
        let firehose = fixture.open();
        create(
            &firehose,
            "split",
            json!({"BucketARN": "arn:aws:s3:::lake", "RoleARN": "r",
                   "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 900}}),
        );
        firehose.put("split", all.clone()).await.unwrap();
        let root = fixture.buckets().join("lake");
        assert!(eventually(Duration::from_secs(20), || objects(&root).len() == 1).await);
        assert!(
            eventually(Duration::from_secs(5), || firehose.figures()[0]
                .1
                .buffered_bytes
                < 1 << 20)
            .await
        );
    }
    fixture.reopen_store().await;
    let firehose = fixture.open();
    let left = firehose.figures()[0].1.buffered_bytes;
    let delivered: usize = objects(&fixture.buckets().join("lake"))
        .iter()
        .map(|(_, b)| b.len())
        .sum();
    assert_eq!(left as usize + delivered, 1000 * 1500);
    firehose
        .update_destination(
            "split",
            "1",
            runnel_firehose::DESTINATION_ID,
            &json!({"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}),
        )
        .unwrap();
    let root = fixture.buckets().join("lake");
    assert!(
        eventually(Duration::from_secs(10), || firehose.figures()[0]
            .1
            .buffered_bytes
            == 0)
        .await
    );
    let body: Vec<u8> = objects(&root).into_iter().flat_map(|(_, b)| b).collect();
    let mut lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    let mut want: Vec<&[u8]> = all.iter().map(|r| &r[..r.len() - 1]).collect();
    want.sort();
    assert_eq!(lines, want, "every record once");
}
