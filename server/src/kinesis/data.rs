//! The data plane: PutRecord, PutRecords, GetShardIterator, GetRecords.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use runnel_streams::iterator::IteratorToken;
use runnel_streams::model::{parse_shard_id, shard_id};
use runnel_streams::{IteratorStart, PutEntry, PutOutcome, ShardMeta};
use serde_json::Value;

use super::Api;
use super::rates::Direction;
use crate::aws::AwsError;
use crate::aws::codec::Out;
use crate::aws::request;
use crate::aws::request::{Req, invalid_argument};

const MAX_PARTITION_KEY: usize = 256;

/// Any other member (one the general path would type-check) sends the
/// request to the general path.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct FastPutRecords {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    records: Vec<FastRecord>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct FastRecord {
    data: String,
    partition_key: String,
    explicit_hash_key: Option<String>,
}
const MAX_PUT_RECORDS: usize = 500;
const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
/// The largest record any stream may take (UpdateMaxRecordSize's ceiling);
/// each stream's own maximum is checked by the store.
const MAX_RECORD_BYTES: usize = 10 * 1024 * 1024;

fn explicit_hash_key(text: &str) -> Result<u128, AwsError> {
    let valid = !text.is_empty()
        && text.len() <= 39
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    valid.then(|| text.parse::<u128>().ok()).flatten().ok_or_else(|| {
        invalid_argument(format!(
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {text}"
        ))
    })
}

/// Reads one record (PutRecord's body or an entry of PutRecords) with
/// `at` naming it in validation messages.
fn read_entry(req: &mut Req, at: &str) -> Result<Option<PutEntry>, AwsError> {
    let data = req.opt_blob("Data")?;
    match &data {
        None => req.problem(None, &format!("{at}data"), "Member must not be null"),
        Some(d) if d.len() > MAX_RECORD_BYTES => req.problem(
            Some(&format!("{} bytes", d.len())),
            &format!("{at}data"),
            &format!("Member must have length less than or equal to {MAX_RECORD_BYTES}"),
        ),
        _ => {}
    }
    let key = req.str_len(
        "PartitionKey",
        &format!("{at}partitionKey"),
        1,
        MAX_PARTITION_KEY,
    )?;
    let explicit = req.opt_str("ExplicitHashKey")?;
    let explicit = explicit.as_deref().map(explicit_hash_key).transpose()?;
    Ok(match (data, key) {
        (Some(data), Some(partition_key)) => Some(PutEntry {
            partition_key,
            explicit_hash_key: explicit,
            data,
        }),
        _ => None,
    })
}

fn written(shard: u32, counter: u64) -> (String, String) {
    (
        shard_id(shard),
        runnel_streams::model::sequence_number(shard, counter),
    )
}

impl Api {
    fn encryption_type(&self, stream: &str) -> Out {
        let encrypted = self.streams.is_encrypted(stream);
        Out::str(if encrypted { "KMS" } else { "NONE" })
    }

    pub(super) async fn put_record(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let entry = read_entry(req, "")?;
        if let Some(ordering) = req.opt_str("SequenceNumberForOrdering")?
            && runnel_streams::model::parse_sequence_number(&ordering).is_none()
        {
            req.problem(
                Some(&ordering),
                "sequenceNumberForOrdering",
                "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
            );
        }
        req.finish()?;
        let Some(entry) = entry else {
            return Err(request::validation_error("Missing record"));
        };
        // Every record of a shard gets a larger sequence number than the
        // one before, so SequenceNumberForOrdering's promise always holds.
        let bytes = entry.data.len() as u64;
        let outcome = self.streams.put(&stream, vec![entry]).await?;
        match outcome.into_iter().next() {
            Some(PutOutcome::Written { shard, counter }) => {
                self.rates.add(&stream, Direction::In, 1, bytes);
                let (shard_id, sequence) = written(shard, counter);
                Ok(Out::map(vec![
                    ("ShardId", Out::Str(shard_id)),
                    ("SequenceNumber", Out::Str(sequence)),
                    ("EncryptionType", self.encryption_type(&stream)),
                ]))
            }
            Some(PutOutcome::Throttled { message }) => {
                Err(runnel_streams::StreamsError::Throughput(message).into())
            }
            None => Err(
                runnel_streams::StreamsError::Internal("no outcome for the record".into()).into(),
            ),
        }
    }

    pub(super) async fn put_records(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let Some(items) = req.take_list("Records")? else {
            req.problem(None, "records", "Member must not be null");
            req.finish()?;
            return Err(request::validation_error("Records is required"));
        };
        if items.is_empty() || items.len() > MAX_PUT_RECORDS {
            let constraint = if items.is_empty() {
                "Member must have length greater than or equal to 1".to_string()
            } else {
                format!("Member must have length less than or equal to {MAX_PUT_RECORDS}")
            };
            req.problem(
                Some(&format!("[{} records]", items.len())),
                "records",
                &constraint,
            );
            req.finish()?;
        }
        let mut entries = Vec::with_capacity(items.len());
        let mut total = 0usize;
        for (i, item) in items.into_iter().enumerate() {
            let mut record = match item {
                Value::Object(_) => Req::from_owned(item)?,
                _ => {
                    return Err(crate::aws::codec::serialization_error(
                        "Records must be a list of objects",
                    ));
                }
            };
            let entry = read_entry(&mut record, &format!("records.{}.member.", i + 1))?;
            record.finish()?;
            if let Some(entry) = entry {
                total += entry.data.len() + entry.partition_key.len();
                entries.push(entry);
            }
        }
        if total > MAX_PUT_RECORDS_BYTES {
            return Err(invalid_argument(format!(
                "Records size exceeds 5 MB limit: {total} bytes in {} records",
                entries.len()
            )));
        }
        self.put_entries(stream, entries).await
    }

    /// The hot path: a JSON PutRecords read straight into typed records.
    /// Anything it would have to reject goes back to `None`, and the
    /// general path then produces the exact error.
    pub(super) async fn put_records_fast(&self, body: &[u8]) -> Option<Result<Out, AwsError>> {
        let parsed: FastPutRecords = serde_json::from_slice(body).ok()?;
        let stream = match (parsed.stream_name, parsed.stream_arn) {
            (Some(name), _) => name,
            (None, Some(arn)) => runnel_streams::stream_name_from_arn(&arn)?.to_string(),
            (None, None) => return None,
        };
        let valid_name = !stream.is_empty()
            && stream.len() <= 128
            && stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !valid_name || parsed.records.is_empty() || parsed.records.len() > MAX_PUT_RECORDS {
            return None;
        }
        let mut entries = Vec::with_capacity(parsed.records.len());
        let mut total = 0usize;
        for record in parsed.records {
            let keys = record.partition_key.chars().count();
            if keys == 0 || keys > MAX_PARTITION_KEY {
                return None;
            }
            let data = STANDARD.decode(record.data.as_bytes()).ok()?;
            if data.len() > MAX_RECORD_BYTES {
                return None;
            }
            let explicit_hash_key = match record.explicit_hash_key {
                Some(text) => Some(explicit_hash_key(&text).ok()?),
                None => None,
            };
            total += data.len() + record.partition_key.len();
            entries.push(PutEntry {
                partition_key: record.partition_key,
                explicit_hash_key,
                data,
            });
        }
        if total > MAX_PUT_RECORDS_BYTES {
            return None;
        }
        Some(self.put_entries(stream, entries).await)
    }

    async fn put_entries(&self, stream: String, entries: Vec<PutEntry>) -> Result<Out, AwsError> {
        // The entries go to the store; their sizes stay for the rates, one
        // allocation per call, so throttled records can be left out.
        let sizes: Vec<u64> = entries.iter().map(|e| e.data.len() as u64).collect();
        let outcomes = self.streams.put(&stream, entries).await?;
        let failed = outcomes
            .iter()
            .filter(|o| matches!(o, PutOutcome::Throttled { .. }))
            .count();
        let accepted_bytes: u64 = sizes
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| matches!(o, PutOutcome::Written { .. }))
            .map(|(size, _)| size)
            .sum();
        self.rates.add(
            &stream,
            Direction::In,
            (outcomes.len() - failed) as u64,
            accepted_bytes,
        );
        let records = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                PutOutcome::Written { shard, counter } => {
                    let (shard_id, sequence) = written(shard, counter);
                    Out::map(vec![
                        ("SequenceNumber", Out::Str(sequence)),
                        ("ShardId", Out::Str(shard_id)),
                    ])
                }
                PutOutcome::Throttled { message } => Out::map(vec![
                    (
                        "ErrorCode",
                        Out::str("ProvisionedThroughputExceededException"),
                    ),
                    ("ErrorMessage", Out::Str(message)),
                ]),
            })
            .collect();
        Ok(Out::map(vec![
            ("FailedRecordCount", Out::Int(failed as i64)),
            ("Records", Out::List(records)),
            ("EncryptionType", self.encryption_type(&stream)),
        ]))
    }

    pub(super) fn get_shard_iterator(&self, req: &mut Req) -> Result<Out, AwsError> {
        let stream = self.stream_name(req)?;
        let shard = req.str_len("ShardId", "shardId", 1, 128)?;
        let kind = req.opt_str("ShardIteratorType")?;
        let sequence = req.opt_str("StartingSequenceNumber")?;
        let timestamp = req.opt_time_ms("Timestamp")?;
        const KINDS: &str =
            "[AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]";
        match kind.as_deref() {
            None => req.problem(None, "shardIteratorType", "Member must not be null"),
            Some(
                "AT_SEQUENCE_NUMBER"
                | "AFTER_SEQUENCE_NUMBER"
                | "TRIM_HORIZON"
                | "LATEST"
                | "AT_TIMESTAMP",
            ) => {}
            Some(other) => req.problem(
                Some(other),
                "shardIteratorType",
                &format!("Member must satisfy enum value set: {KINDS}"),
            ),
        }
        req.finish()?;
        let shard_text = shard.unwrap_or_default();
        let shard = parse_shard_id(&shard_text).ok_or_else(|| {
            runnel_streams::StreamsError::NotFound(format!(
                "Shard {shard_text} in stream {stream} under account {} does not exist",
                self.streams.config().account
            ))
        })?;
        let start = match kind.as_deref() {
            Some("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER") => {
                let Some(sequence) = sequence else {
                    return Err(invalid_argument(format!(
                        "StartingSequenceNumber must be specified for ShardIteratorType {}",
                        kind.unwrap_or_default()
                    )));
                };
                if kind.as_deref() == Some("AT_SEQUENCE_NUMBER") {
                    IteratorStart::AtSequence(sequence)
                } else {
                    IteratorStart::AfterSequence(sequence)
                }
            }
            Some("AT_TIMESTAMP") => {
                let at = timestamp.ok_or_else(|| {
                    invalid_argument(
                        "Timestamp must be specified for ShardIteratorType AT_TIMESTAMP",
                    )
                })?;
                IteratorStart::AtTimestamp(at)
            }
            Some("LATEST") => IteratorStart::Latest,
            _ => IteratorStart::TrimHorizon,
        };
        let iterator = self.streams.shard_iterator(&stream, shard, &start)?;
        Ok(Out::map(vec![("ShardIterator", Out::Str(iterator))]))
    }

    pub(super) fn get_records(&self, req: &mut Req) -> Result<Out, AwsError> {
        let iterator = req.str_len("ShardIterator", "shardIterator", 1, 512)?;
        let limit = req.int_range("Limit", "limit", 1, runnel_streams::MAX_GET_RECORDS as i64)?;
        req.finish()?;
        let iterator = iterator.unwrap_or_default();
        let limit = limit.map_or(runnel_streams::MAX_GET_RECORDS, |l| l as usize);
        let out = self.streams.get_records(&iterator, limit)?;
        // The token names its stream; it is read again only when records
        // went out, as an empty poll moves nothing to count.
        if !out.records.is_empty()
            && let Some(token) = IteratorToken::decode(&iterator)
        {
            let bytes = out.records.iter().map(|r| r.data.len() as u64).sum();
            self.rates.add(
                &token.stream_name,
                Direction::Out,
                out.records.len() as u64,
                bytes,
            );
        }
        let records = out
            .records
            .into_iter()
            .map(|r| {
                Out::map(vec![
                    ("SequenceNumber", Out::Str(r.sequence_number)),
                    ("ApproximateArrivalTimestamp", Out::Time(r.arrival_ms)),
                    ("Data", Out::Blob(r.data)),
                    ("PartitionKey", Out::Str(r.partition_key)),
                    (
                        "EncryptionType",
                        if r.encrypted {
                            Out::str("KMS")
                        } else {
                            Out::Null
                        },
                    ),
                ])
            })
            .collect();
        let children = (!out.child_shards.is_empty())
            .then(|| Out::List(out.child_shards.iter().map(child_shard).collect()));
        Ok(Out::map(vec![
            ("Records", Out::List(records)),
            (
                "NextShardIterator",
                out.next_iterator.map_or(Out::Null, Out::Str),
            ),
            (
                "MillisBehindLatest",
                Out::Int(out.millis_behind_latest as i64),
            ),
            ("ChildShards", children.unwrap_or(Out::Null)),
        ]))
    }
}

pub(super) fn hash_range(shard: &ShardMeta) -> Out {
    Out::map(vec![
        ("StartingHashKey", Out::Str(shard.start_hash.to_string())),
        ("EndingHashKey", Out::Str(shard.end_hash.to_string())),
    ])
}

pub(super) fn record_out(r: runnel_streams::Record) -> Out {
    Out::map(vec![
        ("SequenceNumber", Out::Str(r.sequence_number)),
        ("ApproximateArrivalTimestamp", Out::Time(r.arrival_ms)),
        ("Data", Out::Blob(r.data)),
        ("PartitionKey", Out::Str(r.partition_key)),
        (
            "EncryptionType",
            if r.encrypted {
                Out::str("KMS")
            } else {
                Out::Null
            },
        ),
    ])
}

pub(super) fn child_shard(shard: &ShardMeta) -> Out {
    let parents = shard
        .parent
        .into_iter()
        .chain(shard.adjacent_parent)
        .map(shard_id);
    Out::map(vec![
        ("ShardId", Out::Str(shard.shard_id())),
        ("ParentShards", Out::strs(parents)),
        ("HashKeyRange", hash_range(shard)),
    ])
}
