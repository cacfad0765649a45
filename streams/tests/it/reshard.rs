use runnel_streams::model::shard_id;
use runnel_streams::{CapacityMode, IteratorStart, StreamsError};

use crate::log::{entry, open};

#[tokio::test]
async fn split_then_merge_keeps_lineage_and_hands_readers_to_children() {
    let f = open();
    let s = &f.streams;
    s.create_stream("s", 1, CapacityMode::Provisioned)
        .await
        .unwrap();
    s.put("s", vec![entry("k", "before")]).await.unwrap();
    s.split_shard("s", 0, 1u128 << 127).await.unwrap();
    let meta = s.describe("s").unwrap().meta;
    assert_eq!(meta.shards.len(), 3);
    assert!(meta.shards[0].ending_sequence_number().is_some());
    assert_eq!(meta.shards[1].parent, Some(0));
    assert_eq!(meta.shards[2].start_hash, 1u128 << 127);

    let it = s
        .shard_iterator("s", 0, &IteratorStart::TrimHorizon)
        .unwrap();
    let out = s.get_records(&it, 100).unwrap();
    assert_eq!(out.records.len(), 1);
    assert!(out.next_iterator.is_none());
    let children: Vec<String> = out.child_shards.iter().map(|c| c.shard_id()).collect();
    assert_eq!(children, [shard_id(1), shard_id(2)]);

    s.merge_shards("s", 1, 2).await.unwrap();
    let meta = s.describe("s").unwrap().meta;
    let merged = meta.shards.last().unwrap();
    assert_eq!((merged.parent, merged.adjacent_parent), (Some(1), Some(2)));
    assert_eq!((merged.start_hash, merged.end_hash), (0, u128::MAX));

    assert!(matches!(
        s.split_shard("s", 0, 5).await,
        Err(StreamsError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn update_shard_count_reaches_uniform_ranges() {
    let f = open();
    let s = &f.streams;
    s.create_stream("s", 3, CapacityMode::Provisioned)
        .await
        .unwrap();
    for target in [5, 4, 2, 1] {
        s.update_shard_count("s", target).await.unwrap();
        let meta = s.describe("s").unwrap().meta;
        let mut open: Vec<(u128, u128)> = meta
            .open_shards()
            .map(|s| (s.start_hash, s.end_hash))
            .collect();
        open.sort();
        assert_eq!(open, runnel_streams::hash::uniform_ranges(target));
        for shard in &meta.shards {
            assert!(shard.parent.is_none() || shard.index >= 3);
        }
    }
    assert!(matches!(
        s.update_shard_count("s", 3).await,
        Err(StreamsError::InvalidArgument(_))
    ));
    s.update_mode("s", CapacityMode::OnDemand).unwrap();
    assert!(matches!(
        s.update_shard_count("s", 2).await,
        Err(StreamsError::Validation(_))
    ));
}
