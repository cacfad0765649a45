//! The control plane operations.

use std::collections::BTreeMap;

use runnel_streams::model::{parse_shard_id, shard_id};
use runnel_streams::{AccountSettings, CapacityMode, ConsumerInfo, ShardMeta, StreamInfo};

use super::Api;
use super::data::hash_range;
use crate::aws::AwsError;
use crate::aws::codec::Out;
use crate::aws::request::{Req, invalid_argument, validation_error};
use crate::aws::token::{PageToken, TOKEN_TTL_MS};

/// (stream name, consumer name, consumer ARN) as a consumer call gave them.
type ConsumerArgs = (Option<String>, Option<String>, Option<String>);

const DEFAULT_LIST_LIMIT: usize = 100;

fn mode_details(mode: CapacityMode) -> Out {
    Out::map(vec![("StreamMode", Out::str(mode.as_str()))])
}

fn parse_mode(req: &mut Req) -> Result<Option<CapacityMode>, AwsError> {
    let Some(details) = req.opt_object("StreamModeDetails")? else {
        return Ok(None);
    };
    match details.opt_str("StreamMode")?.as_deref() {
        Some("PROVISIONED") => Ok(Some(CapacityMode::Provisioned)),
        Some("ON_DEMAND") => Ok(Some(CapacityMode::OnDemand)),
        other => {
            req.problem(
                other,
                "streamModeDetails.streamMode",
                "Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]",
            );
            req.finish()?;
            Ok(None)
        }
    }
}

fn shard_out(shard: &ShardMeta) -> Out {
    Out::map(vec![
        ("ShardId", Out::Str(shard.shard_id())),
        (
            "ParentShardId",
            shard.parent.map_or(Out::Null, |p| Out::Str(shard_id(p))),
        ),
        (
            "AdjacentParentShardId",
            shard
                .adjacent_parent
                .map_or(Out::Null, |p| Out::Str(shard_id(p))),
        ),
        ("HashKeyRange", hash_range(shard)),
        (
            "SequenceNumberRange",
            Out::map(vec![
                (
                    "StartingSequenceNumber",
                    Out::Str(shard.starting_sequence_number()),
                ),
                (
                    "EndingSequenceNumber",
                    shard.ending_sequence_number().map_or(Out::Null, Out::Str),
                ),
            ]),
        ),
    ])
}

fn monitoring(info: &StreamInfo) -> Out {
    Out::List(vec![Out::map(vec![(
        "ShardLevelMetrics",
        Out::strs(info.meta.shard_level_metrics.iter().cloned()),
    )])])
}

fn encryption_fields(info: &StreamInfo) -> [(&'static str, Out); 2] {
    match &info.meta.encryption_key_id {
        Some(key) => [
            ("EncryptionType", Out::str("KMS")),
            ("KeyId", Out::str(key.clone())),
        ],
        None => [("EncryptionType", Out::str("NONE")), ("KeyId", Out::Null)],
    }
}

fn consumer_out(c: &ConsumerInfo, with_stream: bool) -> Out {
    let mut fields = vec![
        ("ConsumerName", Out::str(c.name.clone())),
        ("ConsumerARN", Out::str(c.arn.clone())),
        ("ConsumerStatus", Out::str("ACTIVE")),
        ("ConsumerCreationTimestamp", Out::Time(c.created_ms)),
    ];
    if with_stream {
        fields.push(("StreamARN", Out::str(c.stream_arn.clone())));
    }
    Out::map(fields)
}

fn tags_out(tags: impl IntoIterator<Item = (String, String)>) -> Out {
    Out::List(
        tags.into_iter()
            .map(|(k, v)| Out::map(vec![("Key", Out::Str(k)), ("Value", Out::Str(v))]))
            .collect(),
    )
}

fn check_tags(req: &mut Req, tags: &[(String, String)], at: &str) {
    for (key, value) in tags {
        req.check_len(key, &format!("{at}.key"), 1, 128);
        req.check_len(value, &format!("{at}.value"), 0, 256);
    }
}

/// Tags a user may not add or remove: AWS keeps the `aws:` prefix for its
/// own.
fn refuse_reserved<'a>(keys: impl IntoIterator<Item = &'a String>) -> Result<(), AwsError> {
    match keys
        .into_iter()
        .find(|k| k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")))
    {
        Some(key) => Err(invalid_argument(format!(
            "Tag key {key} uses the prefix aws:, which is reserved for AWS use."
        ))),
        None => Ok(()),
    }
}

/// RemoveTagsFromStream and UntagResource take at most this many keys.
const MAX_TAG_KEYS: usize = 50;

/// The shards an on-demand stream starts with, as in Kinesis.
const ON_DEMAND_SHARDS: u32 = 4;

impl Api {
    pub(super) async fn create_stream(&self, req: &mut Req) -> Result<Out, AwsError> {
        let name = req.str_len("StreamName", "streamName", 1, 128)?;
        if let Some(name) = &name {
            req.check_name(name, "streamName");
        }
        let shards = req.int_range("ShardCount", "shardCount", 1, 100_000)?;
        let tags = req.opt_str_map("Tags")?.unwrap_or_default();
        check_tags(req, &tags, "tags");
        // Neither a shard count nor a mode is an on-demand stream, as AWS
        // now makes it.
        let mode = match (parse_mode(req)?, shards) {
            (Some(mode), _) => mode,
            (None, Some(_)) => CapacityMode::Provisioned,
            (None, None) => CapacityMode::OnDemand,
        };
        let max_record = req.int_range("MaxRecordSizeInKiB", "maxRecordSizeInKiB", 1024, 10240)?;
        let warm = req.int_range(
            "WarmThroughputMiBps",
            "warmThroughputMiBps",
            0,
            i64::from(u32::MAX),
        )?;
        req.finish()?;
        refuse_reserved(tags.iter().map(|(k, _)| k))?;
        let name = name.unwrap_or_default();
        let shards = match (mode, shards) {
            (CapacityMode::Provisioned, None) => {
                return Err(invalid_argument(
                    "ShardCount must be given for a PROVISIONED stream.",
                ));
            }
            (CapacityMode::OnDemand, None) => ON_DEMAND_SHARDS,
            (_, Some(shards)) => shards as u32,
        };
        self.streams.create_stream(&name, shards, mode).await?;
        if !tags.is_empty() {
            self.streams.add_tags(&name, &tags.into_iter().collect())?;
        }
        if let Some(kib) = max_record {
            self.streams.update_max_record_size(&name, kib as u32)?;
        }
        if let Some(mibps) = warm.filter(|_| mode == CapacityMode::OnDemand) {
            self.streams.update_warm_throughput(&name, mibps as u32)?;
        }
        Ok(Out::empty())
    }

    pub(super) async fn delete_stream(&self, req: &mut Req) -> Result<Out, AwsError> {
        let name = self.stream_name(req)?;
        let enforce = req.opt_bool("EnforceConsumerDeletion")?.unwrap_or(false);
        self.streams.delete_stream(&name, enforce).await?;
        self.rates.forget(&name);
        Ok(Out::empty())
    }

    pub(super) fn describe_stream(&self, req: &mut Req) -> Result<Out, AwsError> {
        let name = self.stream_name(req)?;
        let limit = req.int_range("Limit", "limit", 1, 10_000)?.unwrap_or(100) as usize;
        let after = req.opt_str("ExclusiveStartShardId")?;
        req.finish()?;
        let info = self.streams.describe(&name)?;
        let after = after.as_deref().and_then(parse_shard_id);
        let mut shards: Vec<&ShardMeta> = info
            .meta
            .shards
            .iter()
            .filter(|s| after.is_none_or(|a| s.index > a))
            .collect();
        let has_more = shards.len() > limit;
        shards.truncate(limit);
        let [encryption, key] = encryption_fields(&info);
        Ok(Out::map(vec![(
            "StreamDescription",
            Out::map(vec![
                ("StreamName", Out::str(name)),
                ("StreamARN", Out::str(info.arn.clone())),
                ("StreamStatus", Out::str(info.meta.status.as_str())),
                ("StreamModeDetails", mode_details(info.meta.mode)),
                (
                    "Shards",
                    Out::List(shards.into_iter().map(shard_out).collect()),
                ),
                ("HasMoreShards", Out::Bool(has_more)),
                (
                    "RetentionPeriodHours",
                    Out::Int(i64::from(info.meta.retention_hours)),
                ),
                ("StreamCreationTimestamp", Out::Time(info.meta.created_ms)),
                ("EnhancedMonitoring", monitoring(&info)),
                encryption,
                key,
            ]),
        )]))
    }

    pub(super) fn describe_stream_summary(&self, req: &mut Req) -> Result<Out, AwsError> {
        let name = self.stream_name(req)?;
        let info = self.streams.describe(&name)?;
        let [encryption, key] = encryption_fields(&info);
        let warm = info.meta.warm_throughput_mibps.map_or(Out::Null, |w| {
            Out::map(vec![
                ("TargetMiBps", Out::Int(i64::from(w))),
                ("CurrentMiBps", Out::Int(i64::from(w))),
            ])
        });
        Ok(Out::map(vec![(
            "StreamDescriptionSummary",
            Out::map(vec![
                ("StreamName", Out::str(name)),
                ("StreamARN", Out::str(info.arn.clone())),
                ("StreamStatus", Out::str(info.meta.status.as_str())),
                ("StreamModeDetails", mode_details(info.meta.mode)),
                (
                    "RetentionPeriodHours",
                    Out::Int(i64::from(info.meta.retention_hours)),
                ),
                ("StreamCreationTimestamp", Out::Time(info.meta.created_ms)),
                ("EnhancedMonitoring", monitoring(&info)),
                encryption,
                key,
                (
                    "OpenShardCount",
                    Out::Int(info.meta.open_shards().count() as i64),
                ),
                ("ConsumerCount", Out::Int(info.meta.consumers.len() as i64)),
                (
                    "MaxRecordSizeInKiB",
                    Out::Int(i64::from(info.meta.max_record_size_kib)),
                ),
                ("WarmThroughput", warm),
            ]),
        )]))
    }

    pub(super) fn list_streams(&self, req: &mut Req) -> Result<Out, AwsError> {
        let limit = req
            .int_range("Limit", "limit", 1, 10_000)?
            .map_or(DEFAULT_LIST_LIMIT, |l| l as usize);
        let mut after = req.opt_str("ExclusiveStartStreamName")?;
        if let Some(token) = req.opt_str("NextToken")? {
            let token =
                PageToken::decode(&token).ok_or_else(|| invalid_argument("Invalid NextToken."))?;
            after = Some(token.after);
        }
        req.finish()?;
        let mut streams: Vec<StreamInfo> = self
            .streams
            .list_streams()
            .into_iter()
            .filter(|s| after.as_ref().is_none_or(|a| s.meta.name > *a))
            .collect();
        let has_more = streams.len() > limit;
        streams.truncate(limit);
        let next = (has_more).then(|| streams.last()).flatten().map(|last| {
            Out::Str(
                PageToken {
                    stream: String::new(),
                    after: last.meta.name.clone(),
                    issued_ms: self.streams.now(),
                }
                .encode(),
            )
        });
        let summaries = streams
            .iter()
            .map(|s| {
                Out::map(vec![
                    ("StreamName", Out::str(s.meta.name.clone())),
                    ("StreamARN", Out::str(s.arn.clone())),
                    ("StreamStatus", Out::str(s.meta.status.as_str())),
                    ("StreamModeDetails", mode_details(s.meta.mode)),
                    ("StreamCreationTimestamp", Out::Time(s.meta.created_ms)),
                ])
            })
            .collect();
        Ok(Out::map(vec![
            (
                "StreamNames",
                Out::strs(streams.iter().map(|s| s.meta.name.clone())),
            ),
            ("HasMoreStreams", Out::Bool(has_more)),
            ("NextToken", next.unwrap_or(Out::Null)),
            ("StreamSummaries", Out::List(summaries)),
        ]))
    }

    pub(super) fn list_shards(&self, req: &mut Req) -> Result<Out, AwsError> {
        let limit = req
            .int_range("MaxResults", "maxResults", 1, 10_000)?
            .unwrap_or(1000) as usize;
        let token = req.opt_str("NextToken")?;
        let has_stream = req.has("StreamName") || req.has("StreamARN");
        let (name, mut after) = match token {
            Some(text) => {
                if has_stream {
                    return Err(invalid_argument(
                        "NextToken and StreamName cannot be provided together.",
                    ));
                }
                let token = PageToken::decode(&text)
                    .ok_or_else(|| invalid_argument("Invalid NextToken."))?;
                if self.streams.now().saturating_sub(token.issued_ms) > TOKEN_TTL_MS {
                    return Err(AwsError::new(
                        axum::http::StatusCode::BAD_REQUEST,
                        "ExpiredNextTokenException",
                        "The NextToken has expired.",
                    ));
                }
                (token.stream, token.after.parse::<u32>().ok())
            }
            None => {
                let name = self.stream_name(req)?;
                let after = req.opt_str("ExclusiveStartShardId")?;
                (name, after.as_deref().and_then(parse_shard_id))
            }
        };
        let filter = req.opt_object("ShardFilter")?;
        req.finish()?;
        let info = self.streams.describe(&name)?;
        let mut shards: Vec<&ShardMeta> = info.meta.shards.iter().collect();
        if let Some(mut filter) = filter {
            let kind = filter.opt_str("Type")?;
            let at = filter.opt_time_ms("Timestamp")?;
            match kind.as_deref() {
                Some("AFTER_SHARD_ID") => {
                    let id = filter.opt_str("ShardId")?.ok_or_else(|| {
                        invalid_argument("ShardFilter AFTER_SHARD_ID needs a ShardId.")
                    })?;
                    after = after.max(parse_shard_id(&id));
                }
                Some("AT_LATEST") => shards.retain(|s| s.is_open()),
                Some("AT_TRIM_HORIZON" | "FROM_TRIM_HORIZON") => {}
                Some(kind @ ("AT_TIMESTAMP" | "FROM_TIMESTAMP")) => {
                    let at = at.ok_or_else(|| {
                        invalid_argument(format!("ShardFilter {kind} needs a Timestamp."))
                    })?;
                    let from = kind == "FROM_TIMESTAMP";
                    // Open at `at`: not closed before it (and, for AT_, already
                    // created); FROM_ also takes every shard created later.
                    shards.retain(|s| {
                        let created = s.start_counter >> 20;
                        s.closed_ms.is_none_or(|c| c >= at)
                            && (from || created <= at || s.parent.is_none())
                    });
                }
                other => {
                    filter.problem(
                        other,
                        "shardFilter.type",
                        "Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]",
                    );
                    filter.finish()?;
                }
            }
        }
        shards.retain(|s| after.is_none_or(|a| s.index > a));
        let has_more = shards.len() > limit;
        shards.truncate(limit);
        let next = has_more.then(|| shards.last()).flatten().map(|last| {
            Out::Str(
                PageToken {
                    stream: name.clone(),
                    after: last.index.to_string(),
                    issued_ms: self.streams.now(),
                }
                .encode(),
            )
        });
        Ok(Out::map(vec![
            (
                "Shards",
                Out::List(shards.into_iter().map(shard_out).collect()),
            ),
            ("NextToken", next.unwrap_or(Out::Null)),
        ]))
    }

    pub(super) fn describe_limits(&self, _req: &mut Req) -> Result<Out, AwsError> {
        let streams = self.streams.list_streams();
        let open: usize = streams.iter().map(|s| s.meta.open_shards().count()).sum();
        let on_demand = streams
            .iter()
            .filter(|s| s.meta.mode == CapacityMode::OnDemand)
            .count();
        Ok(Out::map(vec![
            (
                "ShardLimit",
                Out::Int(i64::from(self.streams.config().max_open_shards)),
            ),
            ("OpenShardCount", Out::Int(open as i64)),
            ("OnDemandStreamCount", Out::Int(on_demand as i64)),
            ("OnDemandStreamCountLimit", Out::Int(50)),
        ]))
    }

    fn resource_stream(&self, req: &mut Req) -> Result<(String, String), AwsError> {
        let arn = req.str_len("ResourceARN", "resourceARN", 1, 2048)?;
        req.finish()?;
        let arn = arn.unwrap_or_default();
        let (stream, _) = self.streams.tags_of_resource(&arn)?;
        Ok((stream, arn))
    }

    pub(super) fn add_tags(&self, req: &mut Req, by_arn: bool) -> Result<Out, AwsError> {
        let stream = if by_arn {
            self.resource_stream(req)?.0
        } else {
            self.stream_name(req)?
        };
        let tags = req.opt_str_map("Tags")?;
        match &tags {
            None => req.problem(None, "tags", "Member must not be null"),
            Some(t) if t.is_empty() => req.problem(
                Some("{}"),
                "tags",
                "Member must have length greater than or equal to 1",
            ),
            Some(t) => check_tags(req, t, "tags"),
        }
        req.finish()?;
        refuse_reserved(tags.iter().flatten().map(|(k, _)| k))?;
        let tags: BTreeMap<String, String> = tags.unwrap_or_default().into_iter().collect();
        self.streams.add_tags(&stream, &tags)?;
        Ok(Out::empty())
    }

    pub(super) fn remove_tags(&self, req: &mut Req, by_arn: bool) -> Result<Out, AwsError> {
        let stream = if by_arn {
            self.resource_stream(req)?.0
        } else {
            self.stream_name(req)?
        };
        let keys = req.opt_str_list("TagKeys")?;
        match &keys {
            None => req.problem(None, "tagKeys", "Member must not be null"),
            Some(k) if k.is_empty() || k.len() > MAX_TAG_KEYS => req.problem(
                Some(&format!("[{} keys]", k.len())),
                "tagKeys",
                if k.is_empty() {
                    "Member must have length greater than or equal to 1"
                } else {
                    "Member must have length less than or equal to 50"
                },
            ),
            Some(_) => {}
        }
        req.finish()?;
        refuse_reserved(keys.iter().flatten())?;
        self.streams
            .remove_tags(&stream, &keys.unwrap_or_default())?;
        Ok(Out::empty())
    }

    pub(super) fn list_tags_for_stream(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let limit = req.int_range("Limit", "limit", 1, 50)?.unwrap_or(50) as usize;
        let after = req.opt_str("ExclusiveStartTagKey")?;
        req.finish()?;
        let tags = self.streams.describe(&stream)?.meta.tags;
        let mut tags: Vec<(String, String)> = tags
            .into_iter()
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
            .collect();
        let has_more = tags.len() > limit;
        tags.truncate(limit);
        Ok(Out::map(vec![
            ("Tags", tags_out(tags)),
            ("HasMoreTags", Out::Bool(has_more)),
        ]))
    }

    pub(super) fn list_tags_for_resource(&self, req: &mut Req) -> Result<Out, AwsError> {
        let (stream, _) = self.resource_stream(req)?;
        let tags = self.streams.describe(&stream)?.meta.tags;
        Ok(Out::map(vec![("Tags", tags_out(tags))]))
    }

    pub(super) fn retention(&self, req: &mut Req, increase: bool) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let hours = req.opt_int("RetentionPeriodHours")?;
        let Some(hours) = hours else {
            req.problem(None, "retentionPeriodHours", "Member must not be null");
            req.finish()?;
            return Err(validation_error("RetentionPeriodHours is required"));
        };
        let hours = u32::try_from(hours).unwrap_or(0);
        self.streams.set_retention(&stream, hours, increase)?;
        Ok(Out::empty())
    }

    pub(super) async fn split_shard(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let shard = req.str_len("ShardToSplit", "shardToSplit", 1, 128)?;
        let key = req.opt_str("NewStartingHashKey")?;
        if key.is_none() {
            req.problem(None, "newStartingHashKey", "Member must not be null");
        }
        req.finish()?;
        let shard = self.shard_index(&stream, &shard.unwrap_or_default())?;
        let key_text = key.unwrap_or_default();
        let key = key_text.parse::<u128>().map_err(|_| {
            invalid_argument(format!(
                "NewStartingHashKey {key_text} is not a valid hash key in [0, 2^128-1]."
            ))
        })?;
        self.streams.split_shard(&stream, shard, key).await?;
        Ok(Out::empty())
    }

    fn shard_index(&self, stream: &str, text: &str) -> Result<u32, AwsError> {
        parse_shard_id(text).ok_or_else(|| {
            runnel_streams::StreamsError::NotFound(format!(
                "Could not find shard {text} in stream {stream} under account {}.",
                self.streams.config().account
            ))
            .into()
        })
    }

    pub(super) async fn merge_shards(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let a = req.str_len("ShardToMerge", "shardToMerge", 1, 128)?;
        let b = req.str_len("AdjacentShardToMerge", "adjacentShardToMerge", 1, 128)?;
        req.finish()?;
        let a = self.shard_index(&stream, &a.unwrap_or_default())?;
        let b = self.shard_index(&stream, &b.unwrap_or_default())?;
        self.streams.merge_shards(&stream, a, b).await?;
        Ok(Out::empty())
    }

    pub(super) async fn update_shard_count(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let target = req.int_range("TargetShardCount", "targetShardCount", 1, 100_000)?;
        if target.is_none() {
            req.problem(None, "targetShardCount", "Member must not be null");
        }
        match req.opt_str("ScalingType")?.as_deref() {
            Some("UNIFORM_SCALING") => {}
            other => req.problem(
                other,
                "scalingType",
                "Member must satisfy enum value set: [UNIFORM_SCALING]",
            ),
        }
        req.finish()?;
        let target = target.unwrap_or(1) as u32;
        let current = self.streams.update_shard_count(&stream, target).await?;
        Ok(Out::map(vec![
            ("StreamName", Out::str(stream.clone())),
            ("CurrentShardCount", Out::Int(i64::from(current))),
            ("TargetShardCount", Out::Int(i64::from(target))),
            ("StreamARN", Out::str(self.streams.stream_arn(&stream))),
        ]))
    }

    pub(super) fn update_stream_mode(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let mode = parse_mode(req)?;
        let Some(mode) = mode else {
            req.problem(None, "streamModeDetails", "Member must not be null");
            req.finish()?;
            return Err(validation_error("StreamModeDetails is required"));
        };
        self.streams.update_mode(&stream, mode)?;
        Ok(Out::empty())
    }

    pub(super) fn encryption(&self, req: &mut Req, start: bool) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        match req.opt_str("EncryptionType")?.as_deref() {
            Some("KMS") => {}
            other => req.problem(
                other,
                "encryptionType",
                "Member must satisfy enum value set: [KMS, NONE]",
            ),
        }
        let key = req.str_len("KeyId", "keyId", 1, 2048)?;
        req.finish()?;
        self.streams
            .set_encryption(&stream, start.then(|| key.unwrap_or_default()))?;
        Ok(Out::empty())
    }

    pub(super) fn monitoring(&self, req: &mut Req, enable: bool) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let metrics = req.opt_str_list("ShardLevelMetrics")?;
        let known = runnel_streams::SHARD_LEVEL_METRICS;
        match &metrics {
            None => req.problem(None, "shardLevelMetrics", "Member must not be null"),
            Some(m) if m.is_empty() => req.problem(
                Some("[]"),
                "shardLevelMetrics",
                "Member must have length greater than or equal to 1",
            ),
            Some(m) => {
                for metric in m {
                    if metric != "ALL" && !known.contains(&metric.as_str()) {
                        req.problem(
                            Some(metric),
                            "shardLevelMetrics",
                            &format!(
                                "Member must satisfy enum value set: [{}, ALL]",
                                known.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        req.finish()?;
        let (before, after) =
            self.streams
                .set_monitoring(&stream, &metrics.unwrap_or_default(), enable)?;
        Ok(Out::map(vec![
            ("StreamName", Out::str(stream.clone())),
            ("StreamARN", Out::str(self.streams.stream_arn(&stream))),
            ("CurrentShardLevelMetrics", Out::strs(before)),
            ("DesiredShardLevelMetrics", Out::strs(after)),
        ]))
    }

    pub(super) fn register_consumer(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let name = req.str_len("ConsumerName", "consumerName", 1, 128)?;
        if let Some(name) = &name {
            req.check_name(name, "consumerName");
        }
        req.finish()?;
        let consumer = self
            .streams
            .register_consumer(&stream, &name.unwrap_or_default())?;
        Ok(Out::map(vec![("Consumer", consumer_out(&consumer, false))]))
    }

    fn consumer_args(&self, req: &mut Req) -> Result<ConsumerArgs, AwsError> {
        let arn = req.opt_str("ConsumerARN")?;
        let name = req.opt_str("ConsumerName")?;
        let stream = if req.has("StreamARN") || req.has("StreamName") {
            Some(self.stream_name(req)?)
        } else {
            None
        };
        req.finish()?;
        Ok((stream, name, arn))
    }

    pub(super) fn deregister_consumer(&self, req: &mut Req) -> Result<Out, AwsError> {
        let (stream, name, arn) = self.consumer_args(req)?;
        self.streams
            .deregister_consumer(stream.as_deref(), name.as_deref(), arn.as_deref())?;
        Ok(Out::empty())
    }

    pub(super) fn describe_consumer(&self, req: &mut Req) -> Result<Out, AwsError> {
        let (stream, name, arn) = self.consumer_args(req)?;
        let consumer =
            self.streams
                .describe_consumer(stream.as_deref(), name.as_deref(), arn.as_deref())?;
        Ok(Out::map(vec![(
            "ConsumerDescription",
            consumer_out(&consumer, true),
        )]))
    }

    pub(super) fn list_consumers(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let limit = req
            .int_range("MaxResults", "maxResults", 1, 10_000)?
            .unwrap_or(100) as usize;
        let after = match req.opt_str("NextToken")? {
            Some(text) => Some(
                PageToken::decode(&text)
                    .ok_or_else(|| invalid_argument("Invalid NextToken."))?
                    .after,
            ),
            None => None,
        };
        req.finish()?;
        let mut consumers: Vec<ConsumerInfo> = self
            .streams
            .list_consumers(&stream)?
            .into_iter()
            .filter(|c| after.as_ref().is_none_or(|a| c.name > *a))
            .collect();
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        let has_more = consumers.len() > limit;
        consumers.truncate(limit);
        let next = has_more.then(|| consumers.last()).flatten().map(|last| {
            Out::Str(
                PageToken {
                    stream: stream.clone(),
                    after: last.name.clone(),
                    issued_ms: self.streams.now(),
                }
                .encode(),
            )
        });
        Ok(Out::map(vec![
            (
                "Consumers",
                Out::List(consumers.iter().map(|c| consumer_out(c, false)).collect()),
            ),
            ("NextToken", next.unwrap_or(Out::Null)),
        ]))
    }

    pub(super) fn put_policy(&self, req: &mut Req) -> Result<Out, AwsError> {
        let arn = req.str_len("ResourceARN", "resourceARN", 1, 2048)?;
        let policy = req.str_len("Policy", "policy", 1, 20_480)?;
        req.finish()?;
        let policy = policy.unwrap_or_default();
        if serde_json::from_str::<serde_json::Value>(&policy).is_err() {
            return Err(invalid_argument(
                "Policy is not a valid JSON policy document.",
            ));
        }
        self.streams
            .put_policy(&arn.unwrap_or_default(), Some(policy))?;
        Ok(Out::empty())
    }

    pub(super) fn get_policy(&self, req: &mut Req) -> Result<Out, AwsError> {
        let arn = req.str_len("ResourceARN", "resourceARN", 1, 2048)?;
        req.finish()?;
        let policy = self.streams.get_policy(&arn.unwrap_or_default())?;
        Ok(Out::map(vec![(
            "Policy",
            Out::Str(policy.unwrap_or_else(|| "{}".into())),
        )]))
    }

    pub(super) fn delete_policy(&self, req: &mut Req) -> Result<Out, AwsError> {
        let arn = req.str_len("ResourceARN", "resourceARN", 1, 2048)?;
        req.finish()?;
        let arn = arn.unwrap_or_default();
        if self.streams.get_policy(&arn)?.is_none() {
            return Err(runnel_streams::StreamsError::NotFound(format!(
                "No resource policy found for resource ARN {arn}."
            ))
            .into());
        }
        self.streams.put_policy(&arn, None)?;
        Ok(Out::empty())
    }

    fn account_settings_out(settings: &AccountSettings) -> Out {
        let commitment = settings
            .commitment_status
            .as_ref()
            .map_or(Out::Null, |status| {
                Out::map(vec![
                    ("Status", Out::str(status.clone())),
                    (
                        "StartedAt",
                        settings.commitment_started_ms.map_or(Out::Null, Out::Time),
                    ),
                    (
                        "EndedAt",
                        settings.commitment_ended_ms.map_or(Out::Null, Out::Time),
                    ),
                ])
            });
        Out::map(vec![("MinimumThroughputBillingCommitment", commitment)])
    }

    pub(super) fn describe_account_settings(&self) -> Result<Out, AwsError> {
        Ok(Self::account_settings_out(
            &self.streams.account_settings()?,
        ))
    }

    pub(super) fn update_account_settings(&self, req: &mut Req) -> Result<Out, AwsError> {
        let commitment = req.opt_object("MinimumThroughputBillingCommitment")?;
        let Some(commitment) = commitment else {
            req.problem(
                None,
                "minimumThroughputBillingCommitment",
                "Member must not be null",
            );
            req.finish()?;
            return Err(validation_error(
                "MinimumThroughputBillingCommitment is required",
            ));
        };
        let status = commitment.opt_str("Status")?;
        let now = self.streams.now();
        let mut settings = self.streams.account_settings()?;
        match status.as_deref() {
            Some("ENABLED") => {
                settings.commitment_status = Some("ENABLED".into());
                settings.commitment_started_ms = Some(now);
                settings.commitment_ended_ms = None;
            }
            Some("DISABLED") => {
                settings.commitment_status = Some("DISABLED".into());
                settings.commitment_ended_ms = Some(now);
            }
            other => {
                req.problem(
                    other,
                    "minimumThroughputBillingCommitment.status",
                    "Member must satisfy enum value set: [ENABLED, DISABLED]",
                );
                req.finish()?;
            }
        }
        self.streams.update_account_settings(&settings)?;
        Ok(Self::account_settings_out(&settings))
    }

    pub(super) fn update_max_record_size(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let kib = req.int_range("MaxRecordSizeInKiB", "maxRecordSizeInKiB", 1024, 10240)?;
        if kib.is_none() {
            req.problem(None, "maxRecordSizeInKiB", "Member must not be null");
        }
        req.finish()?;
        self.streams
            .update_max_record_size(&stream, kib.unwrap_or(1024) as u32)?;
        Ok(Out::empty())
    }

    pub(super) fn update_warm_throughput(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let mibps = req.int_range(
            "WarmThroughputMiBps",
            "warmThroughputMiBps",
            0,
            i64::from(u32::MAX),
        )?;
        if mibps.is_none() {
            req.problem(None, "warmThroughputMiBps", "Member must not be null");
        }
        req.finish()?;
        let mibps = mibps.unwrap_or(0) as u32;
        self.streams.update_warm_throughput(&stream, mibps)?;
        Ok(Out::map(vec![
            ("StreamARN", Out::str(self.streams.stream_arn(&stream))),
            ("StreamName", Out::str(stream)),
            (
                "WarmThroughput",
                Out::map(vec![
                    ("TargetMiBps", Out::Int(i64::from(mibps))),
                    ("CurrentMiBps", Out::Int(i64::from(mibps))),
                ]),
            ),
        ]))
    }
}
