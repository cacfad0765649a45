//! A stream's persisted description: its shards with their hash ranges and
//! lineage, and the settings Kinesis lets clients change.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapacityMode {
    Provisioned,
    OnDemand,
}

impl CapacityMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CapacityMode::Provisioned => "PROVISIONED",
            CapacityMode::OnDemand => "ON_DEMAND",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardMeta {
    pub index: u32,
    #[serde(with = "u128_text")]
    pub start_hash: u128,
    #[serde(with = "u128_text")]
    pub end_hash: u128,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    /// The counter part of the first sequence number this shard may use.
    pub start_counter: u64,
    /// Set when resharding closes the shard: its last counter.
    pub end_counter: Option<u64>,
    pub closed_ms: Option<u64>,
}

impl ShardMeta {
    pub fn shard_id(&self) -> String {
        shard_id(self.index)
    }

    pub fn is_open(&self) -> bool {
        self.end_counter.is_none()
    }

    pub fn starting_sequence_number(&self) -> String {
        sequence_number(self.index, self.start_counter)
    }

    pub fn ending_sequence_number(&self) -> Option<String> {
        self.end_counter.map(|c| sequence_number(self.index, c))
    }

    pub fn contains(&self, hash: u128) -> bool {
        self.start_hash <= hash && hash <= self.end_hash
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerMeta {
    pub name: String,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamMeta {
    /// Internal id keying the stream's records, so a stream deleted and
    /// created again under the same name never sees the old records.
    pub id: u64,
    pub name: String,
    pub created_ms: u64,
    pub status: StreamStatus,
    pub mode: CapacityMode,
    pub retention_hours: u32,
    pub shards: Vec<ShardMeta>,
    pub next_shard_index: u32,
    pub tags: BTreeMap<String, String>,
    /// The KMS key id named by StartStreamEncryption, while encryption is on.
    pub encryption_key_id: Option<String>,
    pub shard_level_metrics: BTreeSet<String>,
    pub consumers: Vec<ConsumerMeta>,
    /// Resource policies by resource ARN (the stream's or a consumer's).
    pub policies: BTreeMap<String, String>,
    pub max_record_size_kib: u32,
    pub warm_throughput_mibps: Option<u32>,
}

impl StreamMeta {
    pub fn open_shards(&self) -> impl Iterator<Item = &ShardMeta> {
        self.shards.iter().filter(|s| s.is_open())
    }

    pub fn shard(&self, index: u32) -> Option<&ShardMeta> {
        self.shards.iter().find(|s| s.index == index)
    }

    pub fn children_of(&self, index: u32) -> Vec<&ShardMeta> {
        self.shards
            .iter()
            .filter(|s| s.parent == Some(index) || s.adjacent_parent == Some(index))
            .collect()
    }

    pub fn max_record_bytes(&self) -> usize {
        self.max_record_size_kib as usize * 1024
    }
}

pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// `shardId-000000000007` -> 7. Kinesis also accepts the bare index.
pub fn parse_shard_id(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("shardId-").unwrap_or(text);
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A sequence number is the shard index above a per-shard counter, printed
/// in decimal: strictly increasing within a shard and comparable as a big
/// integer, as clients expect, and it names its own shard.
pub fn sequence_number(shard: u32, counter: u64) -> String {
    ((u128::from(shard) << 64) | u128::from(counter)).to_string()
}

pub fn parse_sequence_number(text: &str) -> Option<(u32, u64)> {
    if text.is_empty() || text.len() > 128 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u128 = text.parse().ok()?;
    let shard = u32::try_from(value >> 64).ok()?;
    Some((shard, value as u64))
}

mod u128_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_round_trip_and_order_as_integers() {
        let a = sequence_number(3, 1_000);
        let b = sequence_number(3, 1_001);
        assert_eq!(parse_sequence_number(&a), Some((3, 1_000)));
        assert!(a.parse::<u128>().unwrap() < b.parse::<u128>().unwrap());
        assert_eq!(parse_sequence_number("12x"), None);
        assert_eq!(parse_sequence_number(""), None);
    }

    #[test]
    fn shard_ids_are_zero_padded_and_parse_back() {
        assert_eq!(shard_id(7), "shardId-000000000007");
        assert_eq!(parse_shard_id("shardId-000000000007"), Some(7));
        assert_eq!(parse_shard_id("7"), Some(7));
        assert_eq!(parse_shard_id("shardId-x"), None);
    }
}
