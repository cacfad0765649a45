//! The control plane: creating and deleting streams, and the settings
//! Kinesis lets clients change (tags, retention, capacity mode, encryption,
//! enhanced monitoring, consumers, resource policies).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use crate::Streams;
use crate::error::{Result, StreamsError};
use crate::hash::uniform_ranges;
use crate::keys;
use crate::limits::{ReadLimiter, WriteLimiter};
use crate::model::{CapacityMode, ConsumerMeta, ShardMeta, StreamMeta, StreamStatus};
use crate::state::{CF_META, CF_RECORDS, Inner, ShardState, StreamEntry, write_multiplier};

pub const MAX_TAGS: usize = 50;
pub const MAX_CONSUMERS: usize = 20;
pub const MIN_RETENTION_HOURS: u32 = 24;
pub const MAX_RETENTION_HOURS: u32 = 8760;
/// Shards an on-demand stream starts with.
pub const ON_DEMAND_SHARDS: u32 = 4;
pub const SHARD_LEVEL_METRICS: &[&str] = &[
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];
const ACCOUNT_SETTINGS_KEY: &[u8] = b"account_settings";

#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub meta: StreamMeta,
    pub arn: String,
}

#[derive(Debug, Clone)]
pub struct ConsumerInfo {
    pub name: String,
    pub arn: String,
    pub created_ms: u64,
    pub stream_arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    /// ENABLED or DISABLED, once set.
    pub commitment_status: Option<String>,
    pub commitment_started_ms: Option<u64>,
    pub commitment_ended_ms: Option<u64>,
}

impl Inner {
    pub fn create_stream(&self, name: &str, shards: u32, mode: CapacityMode) -> Result<()> {
        let now = self.now();
        let shards = match mode {
            CapacityMode::OnDemand => ON_DEMAND_SHARDS,
            CapacityMode::Provisioned => shards,
        };
        let open_total = self.open_shard_total();
        let mut registry = self.write();
        if registry.streams.contains_key(name) {
            return Err(StreamsError::InUse(format!(
                "Stream {name} under account {} already exists.",
                self.config.account
            )));
        }
        if open_total + shards > self.config.max_open_shards {
            return Err(StreamsError::LimitExceeded(format!(
                "This request would exceed the shard limit for the account {} in {}. Current shard limit for the account is {}.",
                self.config.account, self.config.region, self.config.max_open_shards
            )));
        }
        let id = registry.next_id;
        let start_counter = now.saturating_mul(1 << 20);
        let meta = StreamMeta {
            id,
            name: name.to_string(),
            created_ms: now,
            status: StreamStatus::Active,
            mode,
            retention_hours: MIN_RETENTION_HOURS,
            shards: uniform_ranges(shards)
                .into_iter()
                .enumerate()
                .map(|(i, (start_hash, end_hash))| ShardMeta {
                    index: i as u32,
                    start_hash,
                    end_hash,
                    parent: None,
                    adjacent_parent: None,
                    start_counter,
                    end_counter: None,
                    closed_ms: None,
                })
                .collect(),
            next_shard_index: shards,
            tags: BTreeMap::new(),
            encryption_key_id: None,
            shard_level_metrics: Default::default(),
            consumers: Vec::new(),
            policies: BTreeMap::new(),
            max_record_size_kib: 1024,
            warm_throughput_mibps: None,
        };
        let mut batch = WriteBatch::default();
        self.stage_meta(&mut batch, &meta, id + 1)?;
        // Records of an earlier stream with this id cannot exist (ids are
        // never reused), but a crash between writes must not resurrect any.
        let (from, to) = keys::stream_range(id);
        batch.delete_range_cf(self.cf(CF_RECORDS)?, from, to);
        self.write_synced(batch)?;
        let states: HashMap<u32, Arc<ShardState>> = meta
            .shards
            .iter()
            .map(|s| (s.index, Arc::new(ShardState::new(&self.config, mode, now))))
            .collect();
        registry.next_id = id + 1;
        registry.streams.insert(
            name.to_string(),
            StreamEntry {
                meta,
                shards: states,
            },
        );
        Ok(())
    }

    pub fn delete_stream(&self, name: &str, enforce_consumer_deletion: bool) -> Result<()> {
        let mut registry = self.write();
        let entry = registry
            .streams
            .get(name)
            .ok_or_else(|| self.not_found(name))?;
        if !entry.meta.consumers.is_empty() && !enforce_consumer_deletion {
            return Err(StreamsError::InUse(format!(
                "Stream {name} under account {} has registered consumers; pass EnforceConsumerDeletion to delete it with them.",
                self.config.account
            )));
        }
        let mut batch = WriteBatch::default();
        self.stage_meta_delete(&mut batch, name)?;
        let (from, to) = keys::stream_range(entry.meta.id);
        batch.delete_range_cf(self.cf(CF_RECORDS)?, from, to);
        self.write_synced(batch)?;
        registry.streams.remove(name);
        Ok(())
    }

    pub fn describe(&self, name: &str) -> Result<StreamInfo> {
        let registry = self.read();
        let entry = registry
            .streams
            .get(name)
            .ok_or_else(|| self.not_found(name))?;
        Ok(StreamInfo {
            meta: entry.meta.clone(),
            arn: self.stream_arn(name),
        })
    }

    pub fn list_streams(&self) -> Vec<StreamInfo> {
        self.read()
            .streams
            .values()
            .map(|e| StreamInfo {
                meta: e.meta.clone(),
                arn: self.stream_arn(&e.meta.name),
            })
            .collect()
    }

    fn consumer_arn(&self, stream: &str, consumer: &ConsumerMeta) -> String {
        format!(
            "{}/consumer/{}:{}",
            self.stream_arn(stream),
            consumer.name,
            consumer.created_ms / 1000
        )
    }
}

/// `arn:aws:kinesis:<region>:<account>:stream/<name>[/consumer/...]` -> name.
pub fn stream_name_from_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(6, ':');
    let (_partition, service, _region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if service != "kinesis" {
        return None;
    }
    let name = resource.strip_prefix("stream/")?;
    Some(name.split('/').next().unwrap_or(name))
}

impl Streams {
    fn update<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut StreamEntry, u64) -> Result<T>,
    ) -> Result<T> {
        self.inner.update(name, change)
    }

    pub fn add_tags(&self, stream: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.update(stream, |entry, _| {
            let mut merged = entry.meta.tags.clone();
            merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            if merged.len() > MAX_TAGS {
                return Err(StreamsError::InvalidArgument(format!(
                    "Failed to add tags to stream {stream} under account {} because a given stream cannot have more than {MAX_TAGS} tags.",
                    self.inner.config.account
                )));
            }
            entry.meta.tags = merged;
            Ok(())
        })
    }

    pub fn remove_tags(&self, stream: &str, keys: &[String]) -> Result<()> {
        self.update(stream, |entry, _| {
            for key in keys {
                entry.meta.tags.remove(key);
            }
            Ok(())
        })
    }

    pub fn set_retention(&self, stream: &str, hours: u32, increase: bool) -> Result<()> {
        let account = self.inner.config.account.clone();
        self.update(stream, |entry, _| {
            if hours < MIN_RETENTION_HOURS {
                return Err(StreamsError::InvalidArgument(format!(
                    "Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too short."
                )));
            }
            if hours > MAX_RETENTION_HOURS {
                return Err(StreamsError::InvalidArgument(format!(
                    "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too long."
                )));
            }
            let current = entry.meta.retention_hours;
            if increase && hours < current {
                return Err(StreamsError::InvalidArgument(format!(
                    "Requested retention period ({hours} hours) for stream {stream} under account {account} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
                )));
            }
            if !increase && hours > current {
                return Err(StreamsError::InvalidArgument(format!(
                    "Requested retention period ({hours} hours) for stream {stream} under account {account} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
                )));
            }
            entry.meta.retention_hours = hours;
            Ok(())
        })
    }

    pub fn update_mode(&self, stream: &str, mode: CapacityMode) -> Result<()> {
        let config = self.inner.config.clone();
        self.update(stream, |entry, now| {
            entry.meta.mode = mode;
            let limits = config.limits.unwrap_or_default();
            for state in entry.shards.values() {
                *state.write.lock().unwrap_or_else(|e| e.into_inner()) =
                    WriteLimiter::new(&limits, write_multiplier(mode), now);
                *state.read.lock().unwrap_or_else(|e| e.into_inner()) =
                    ReadLimiter::new(&limits, now);
            }
            Ok(())
        })
    }

    /// Turns encryption on (`Some(key id)`) or off for records written from now on.
    pub fn set_encryption(&self, stream: &str, key_id: Option<String>) -> Result<()> {
        if key_id.is_some() && self.inner.config.encryption_key.is_none() {
            return Err(StreamsError::InvalidArgument(
                "Encryption at rest needs an encryption key in Runnel's configuration (streams.encryption_key).".into(),
            ));
        }
        self.update(stream, |entry, _| {
            entry.meta.encryption_key_id = key_id;
            Ok(())
        })
    }

    /// Adds (`enable`) or removes shard-level metrics; returns (before, after).
    pub fn set_monitoring(
        &self,
        stream: &str,
        metrics: &[String],
        enable: bool,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let expanded: Vec<String> = if metrics.iter().any(|m| m == "ALL") {
            SHARD_LEVEL_METRICS.iter().map(|s| s.to_string()).collect()
        } else {
            metrics.to_vec()
        };
        self.update(stream, |entry, _| {
            let before: Vec<String> = entry.meta.shard_level_metrics.iter().cloned().collect();
            for metric in expanded {
                if enable {
                    entry.meta.shard_level_metrics.insert(metric);
                } else {
                    entry.meta.shard_level_metrics.remove(&metric);
                }
            }
            let after = entry.meta.shard_level_metrics.iter().cloned().collect();
            Ok((before, after))
        })
    }

    pub fn register_consumer(&self, stream: &str, name: &str) -> Result<ConsumerInfo> {
        let account = self.inner.config.account.clone();
        let consumer = self.update(stream, |entry, now| {
            if entry.meta.consumers.iter().any(|c| c.name == name) {
                return Err(StreamsError::InUse(format!(
                    "Consumer {name} under stream {stream} under account {account} already exists."
                )));
            }
            if entry.meta.consumers.len() >= MAX_CONSUMERS {
                return Err(StreamsError::LimitExceeded(format!(
                    "Stream {stream} under account {account} already has {MAX_CONSUMERS} registered consumers."
                )));
            }
            let consumer = ConsumerMeta {
                name: name.to_string(),
                created_ms: now,
            };
            entry.meta.consumers.push(consumer.clone());
            Ok(consumer)
        })?;
        Ok(self.consumer_info(stream, &consumer))
    }

    fn consumer_info(&self, stream: &str, consumer: &ConsumerMeta) -> ConsumerInfo {
        ConsumerInfo {
            name: consumer.name.clone(),
            arn: self.inner.consumer_arn(stream, consumer),
            created_ms: consumer.created_ms,
            stream_arn: self.inner.stream_arn(stream),
        }
    }

    /// Finds a consumer by its ARN, or by stream and consumer name.
    pub fn describe_consumer(
        &self,
        stream: Option<&str>,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<ConsumerInfo> {
        let stream = match (stream, arn) {
            (Some(stream), _) => stream,
            (None, Some(arn)) => stream_name_from_arn(arn).ok_or_else(|| {
                StreamsError::InvalidArgument(format!("Invalid consumer ARN {arn}"))
            })?,
            (None, None) => {
                return Err(StreamsError::InvalidArgument(
                    "Either ConsumerARN or both StreamARN and ConsumerName must be given.".into(),
                ));
            }
        };
        let info = self.inner.describe(stream)?;
        info.meta
            .consumers
            .iter()
            .map(|c| self.consumer_info(stream, c))
            .find(|c| name.is_none_or(|n| n == c.name) && arn.is_none_or(|a| a == c.arn))
            .ok_or_else(|| {
                StreamsError::NotFound(format!(
                    "Consumer {} under stream {stream} under account {} not found.",
                    name.or(arn).unwrap_or_default(),
                    self.inner.config.account
                ))
            })
    }

    pub fn deregister_consumer(
        &self,
        stream: Option<&str>,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<()> {
        let found = self.describe_consumer(stream, name, arn)?;
        let stream = stream_name_from_arn(&found.stream_arn)
            .unwrap_or_default()
            .to_string();
        self.update(&stream, |entry, _| {
            entry.meta.consumers.retain(|c| c.name != found.name);
            entry.meta.policies.remove(&found.arn);
            Ok(())
        })
    }

    pub fn list_consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>> {
        let info = self.inner.describe(stream)?;
        Ok(info
            .meta
            .consumers
            .iter()
            .map(|c| self.consumer_info(stream, c))
            .collect())
    }

    /// Resource policies are keyed by the ARN they govern.
    pub fn put_policy(&self, resource_arn: &str, policy: Option<String>) -> Result<()> {
        let stream = self.stream_of_resource(resource_arn)?;
        self.update(&stream, |entry, _| {
            match policy {
                Some(policy) => {
                    entry.meta.policies.insert(resource_arn.to_string(), policy);
                }
                None => {
                    entry.meta.policies.remove(resource_arn);
                }
            }
            Ok(())
        })
    }

    pub fn get_policy(&self, resource_arn: &str) -> Result<Option<String>> {
        let stream = self.stream_of_resource(resource_arn)?;
        Ok(self
            .inner
            .describe(&stream)?
            .meta
            .policies
            .get(resource_arn)
            .cloned())
    }

    fn stream_of_resource(&self, arn: &str) -> Result<String> {
        let stream = stream_name_from_arn(arn)
            .ok_or_else(|| StreamsError::InvalidArgument(format!("Invalid resource ARN {arn}")))?;
        if arn.contains("/consumer/") {
            self.describe_consumer(None, None, Some(arn))?;
        } else if arn != self.inner.stream_arn(stream) {
            return Err(self.inner.not_found(stream));
        }
        Ok(stream.to_string())
    }

    pub fn tags_of_resource(&self, arn: &str) -> Result<(String, BTreeMap<String, String>)> {
        let stream = self.stream_of_resource(arn)?;
        let tags = self.inner.describe(&stream)?.meta.tags;
        Ok((stream, tags))
    }

    pub fn update_max_record_size(&self, stream: &str, kib: u32) -> Result<()> {
        self.update(stream, |entry, _| {
            entry.meta.max_record_size_kib = kib;
            Ok(())
        })
    }

    pub fn update_warm_throughput(&self, stream: &str, mibps: u32) -> Result<()> {
        self.update(stream, |entry, _| {
            if entry.meta.mode != CapacityMode::OnDemand {
                return Err(StreamsError::Validation(format!(
                    "Warm throughput applies to ON_DEMAND streams; stream {stream} is PROVISIONED."
                )));
            }
            entry.meta.warm_throughput_mibps = Some(mibps);
            Ok(())
        })
    }

    pub fn account_settings(&self) -> Result<AccountSettings> {
        let cf = self.inner.cf(CF_META)?;
        match self.inner.db.get_cf(cf, ACCOUNT_SETTINGS_KEY)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StreamsError::Internal(format!("corrupt account settings: {e}"))),
            None => Ok(AccountSettings::default()),
        }
    }

    pub fn update_account_settings(&self, settings: &AccountSettings) -> Result<()> {
        let cf = self.inner.cf(CF_META)?;
        let value = serde_json::to_vec(settings)
            .map_err(|e| StreamsError::Internal(format!("encoding account settings: {e}")))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, ACCOUNT_SETTINGS_KEY, value);
        self.inner.write_synced(batch)
    }
}
