//! SubscribeToShard: enhanced fan-out over HTTP/2 (h2c on the plain port;
//! hyper serves HTTP/1.1 and prior-knowledge HTTP/2 on one listener). The
//! response is an event stream: `initial-response` first, then a
//! `SubscribeToShardEvent` whenever records arrive (and at least once a
//! second; the stream service wakes the pump when records are durable, so
//! it does not poll), until the subscription's 5 minutes are up or the shard ends,
//! whose last event names its children.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runnel_streams::model::parse_shard_id;
use runnel_streams::{IteratorStart, Streams};

use super::Api;
use super::data::{child_shard, record_out};
use super::eventstream::{self, ChannelBody};
use super::rates::{Direction, StreamRates};
use crate::aws::codec::Out;
use crate::aws::request::{Req, invalid_argument};
use crate::aws::{AwsError, Protocol};

const SUBSCRIPTION: Duration = Duration::from_secs(300);
const RESUBSCRIBE_GAP: Duration = Duration::from_secs(5);
/// Without a wake-up (a reshard of another stream, say), the shard is read
/// again after this long.
const IDLE_POLL: Duration = Duration::from_millis(100);
const HEARTBEAT: Duration = Duration::from_secs(1);
const EVENT_RECORDS: usize = 10_000;

impl Api {
    pub(super) async fn subscribe_to_shard(
        &self,
        req: &mut Req,
        protocol: Protocol,
    ) -> Result<Response, AwsError> {
        let consumer_arn = req.str_len("ConsumerARN", "consumerARN", 1, 2048)?;
        let shard = req.str_len("ShardId", "shardId", 1, 128)?;
        let position = req.opt_object("StartingPosition")?;
        if position.is_none() {
            req.problem(None, "startingPosition", "Member must not be null");
        }
        req.finish()?;
        let consumer = self
            .streams
            .describe_consumer(None, None, consumer_arn.as_deref())?;
        let stream = runnel_streams::stream_name_from_arn(&consumer.stream_arn)
            .unwrap_or_default()
            .to_string();
        let shard_text = shard.unwrap_or_default();
        let shard = parse_shard_id(&shard_text).ok_or_else(|| {
            runnel_streams::StreamsError::NotFound(format!(
                "Shard {shard_text} in stream {stream} under account {} does not exist",
                self.streams.config().account
            ))
        })?;
        let Some(position) = position else {
            return Err(invalid_argument("StartingPosition is required"));
        };
        {
            let mut recent = self.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            recent.retain(|_, at| now.duration_since(*at) < RESUBSCRIBE_GAP);
            let key = (consumer.arn.clone(), shard);
            if recent.contains_key(&key) {
                return Err(runnel_streams::StreamsError::InUse(format!(
                    "Another active subscription exists for consumer {} on shard {}; wait 5 seconds between subscriptions.",
                    consumer.arn, shard_text
                ))
                .into());
            }
            recent.insert(key, now);
        }
        let sequence = position.opt_str("SequenceNumber")?;
        let start = match position.opt_str("Type")?.as_deref() {
            Some("TRIM_HORIZON") => IteratorStart::TrimHorizon,
            Some("LATEST") => IteratorStart::Latest,
            Some(kind @ ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER")) => {
                let sequence = sequence.ok_or_else(|| {
                    invalid_argument(format!("StartingPosition {kind} needs a SequenceNumber"))
                })?;
                if kind == "AT_SEQUENCE_NUMBER" {
                    IteratorStart::AtSequence(sequence)
                } else {
                    IteratorStart::AfterSequence(sequence)
                }
            }
            Some("AT_TIMESTAMP") => {
                IteratorStart::AtTimestamp(position.opt_time_ms("Timestamp")?.ok_or_else(|| {
                    invalid_argument("StartingPosition AT_TIMESTAMP needs a Timestamp")
                })?)
            }
            other => {
                let mut position = position;
                position.problem(
                    other,
                    "startingPosition.type",
                    "Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
                );
                position.finish()?;
                return Err(invalid_argument("Invalid StartingPosition"));
            }
        };
        let iterator = self.streams.shard_iterator(&stream, shard, &start)?;

        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let content = match protocol {
            Protocol::Json => "application/json",
            Protocol::Cbor => "application/cbor",
        };
        sender
            .send(eventstream::event(
                "initial-response",
                content,
                &Out::empty().encode(protocol),
            ))
            .await
            .map_err(|_| invalid_argument("subscriber went away"))?;
        let appended = Arc::new(tokio::sync::Notify::new());
        let wake: runnel_streams::Wake = {
            let appended = appended.clone();
            // notify_one keeps a permit when the pump is not waiting, so a
            // commit between its read and its wait is not missed.
            Arc::new(move || appended.notify_one())
        };
        self.streams.on_append(&stream, &wake)?;
        tokio::spawn(pump(
            self.streams.clone(),
            (wake, appended),
            iterator,
            (sender, self.rates.of(&stream)),
            protocol,
            content,
        ));

        let mut response = (StatusCode::OK, Body::new(ChannelBody(receiver))).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.amazon.eventstream"),
        );
        Ok(response)
    }
}

/// Reads the shard and sends events until the subscription ends, the shard
/// ends, or the subscriber goes away (a send fails).
async fn pump(
    streams: Arc<Streams>,
    (_registered, appended): (runnel_streams::Wake, Arc<tokio::sync::Notify>),
    mut iterator: String,
    (sender, rates): (tokio::sync::mpsc::Sender<bytes::Bytes>, Arc<StreamRates>),
    protocol: Protocol,
    content: &'static str,
) {
    let ends = tokio::time::Instant::now() + SUBSCRIPTION;
    let mut last_event = tokio::time::Instant::now();
    while tokio::time::Instant::now() < ends {
        let page = match streams.read_subscription(&iterator, EVENT_RECORDS) {
            Ok(page) => page,
            Err(error) => {
                let error = AwsError::from(error);
                let payload = Out::map(vec![("message", Out::Str(error.message.clone()))]);
                let _ = sender
                    .send(eventstream::exception(
                        error.kind,
                        content,
                        &payload.encode(protocol),
                    ))
                    .await;
                return;
            }
        };
        let ended = page.next_iterator.is_none();
        let idle = page.records.is_empty();
        let bytes = page.records.iter().map(|r| r.data.len() as u64).sum();
        let records = page.records.len() as u64;
        if !idle || ended || last_event.elapsed() >= HEARTBEAT {
            let event = Out::map(vec![
                (
                    "Records",
                    Out::List(page.records.into_iter().map(record_out).collect()),
                ),
                (
                    "ContinuationSequenceNumber",
                    if ended {
                        Out::Null
                    } else {
                        Out::Str(page.continuation_sequence)
                    },
                ),
                (
                    "MillisBehindLatest",
                    Out::Int(page.millis_behind_latest as i64),
                ),
                (
                    "ChildShards",
                    if ended {
                        Out::List(page.child_shards.iter().map(child_shard).collect())
                    } else {
                        Out::Null
                    },
                ),
            ]);
            let frame =
                eventstream::event("SubscribeToShardEvent", content, &event.encode(protocol));
            if sender.send(frame).await.is_err() {
                return;
            }
            if records > 0 {
                rates.add(Direction::Out, records, bytes);
            }
            last_event = tokio::time::Instant::now();
        }
        match page.next_iterator {
            Some(next) => iterator = next,
            None => return,
        }
        if idle {
            let _ = tokio::time::timeout(IDLE_POLL, appended.notified()).await;
        }
    }
}
