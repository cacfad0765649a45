//! Reading the records back, per shard: GetRecords polling within its
//! 5 calls/s, or an enhanced fan-out subscription's event stream. Each
//! record of this run gives a put-to-get latency: from its intended send
//! time to its arrival here.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};

use super::Totals;
use super::client::{Answer, Client};
use super::histogram::Histogram;
use super::record;

/// GetRecords allows 5 calls a second per shard.
const POLL_SPACING: Duration = Duration::from_millis(200);

#[derive(Default)]
pub struct Seen {
    pub latencies: Histogram,
    pub ids: Vec<u64>,
}

impl Seen {
    fn take(&mut self, data: &[u8], totals: &Totals) {
        let Some(stamp) = record::decode(data) else {
            return;
        };
        let now = record::now_micros();
        self.latencies.record(now.saturating_sub(stamp.sent_micros));
        self.ids.push(stamp.id());
        totals.received.fetch_add(1, Ordering::Relaxed);
        totals
            .bytes_out
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        totals
            .last_received_micros
            .fetch_max(now, Ordering::Relaxed);
    }
}

fn decode_data(record: &Value) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(record["Data"].as_str()?)
        .ok()
}

/// Polls `shard` from `from_seconds` (epoch) until told to stop.
pub fn poll(
    client: &Client,
    stream: &str,
    shard: &str,
    from_seconds: f64,
    totals: &Totals,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    let answer = client.must(
        "GetShardIterator",
        &json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": "AT_TIMESTAMP",
                "Timestamp": from_seconds}),
    )?;
    let mut iterator = answer["ShardIterator"].as_str().map(str::to_string);
    while let Some(current) = iterator.take() {
        if totals.stop.load(Ordering::Relaxed) {
            break;
        }
        let called = Instant::now();
        match client.call(
            "GetRecords",
            &json!({"ShardIterator": current, "Limit": 10000}),
        ) {
            Answer::Ok(value) => {
                for record in value["Records"].as_array().into_iter().flatten() {
                    if let Some(data) = decode_data(record) {
                        seen.take(&data, totals);
                    }
                }
                iterator = value["NextShardIterator"].as_str().map(str::to_string);
            }
            Answer::Throttled => iterator = Some(current),
            Answer::Failed(message) => bail!("GetRecords on {shard}: {message}"),
        }
        if let Some(wait) = POLL_SPACING.checked_sub(called.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Ok(seen)
}

/// Reads `shard` through consumer `consumer_arn`'s subscriptions, each of
/// which AWS ends after 5 minutes: the next continues where it ended.
pub fn subscribe(
    client: &Client,
    consumer_arn: &str,
    shard: &str,
    from_seconds: f64,
    totals: &Totals,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    let mut position = json!({"Type": "AT_TIMESTAMP", "Timestamp": from_seconds});
    while !totals.stop.load(Ordering::Relaxed) {
        let response = client.send(
            "SubscribeToShard",
            &json!({"ConsumerARN": consumer_arn, "ShardId": shard, "StartingPosition": position}),
        )?;
        if response.status() != 200 {
            let (_, text, _) = crate::cli_http::read(response)?;
            bail!("SubscribeToShard on {shard}: {text}");
        }
        let mut body = response.into_body().into_reader();
        let mut continuation = None;
        while !totals.stop.load(Ordering::Relaxed) {
            let Some((event_type, payload)) = read_event(&mut body)? else {
                break;
            };
            match event_type.as_str() {
                "SubscribeToShardEvent" => {
                    let event: Value = serde_json::from_slice(&payload)
                        .context("a SubscribeToShardEvent is not JSON")?;
                    for record in event["Records"].as_array().into_iter().flatten() {
                        if let Some(data) = decode_data(record) {
                            seen.take(&data, totals);
                        }
                    }
                    if let Some(sequence) = event["ContinuationSequenceNumber"].as_str() {
                        continuation = Some(sequence.to_string());
                    }
                }
                "initial-response" => {}
                other => bail!(
                    "SubscribeToShard on {shard}: {other}: {}",
                    String::from_utf8_lossy(&payload)
                ),
            }
        }
        match continuation {
            Some(sequence) => {
                position = json!({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": sequence});
            }
            None => break,
        }
    }
    Ok(seen)
}

/// One event-stream message: its `:event-type` (or `:exception-type`)
/// header and its payload; None at the end of the stream.
fn read_event(body: &mut impl Read) -> anyhow::Result<Option<(String, Vec<u8>)>> {
    let mut prelude = [0u8; 12];
    match body.read_exact(&mut prelude) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e).context("reading the event stream"),
    }
    let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
    let headers_len = u32::from_be_bytes([prelude[4], prelude[5], prelude[6], prelude[7]]) as usize;
    if total < 16 + headers_len || total > 16 * 1024 * 1024 {
        bail!("an event-stream message of {total} bytes with {headers_len} bytes of headers");
    }
    let mut rest = vec![0u8; total - 12];
    body.read_exact(&mut rest)
        .context("reading the event stream")?;
    let headers = &rest[..headers_len];
    let payload = rest[headers_len..rest.len() - 4].to_vec();
    let mut event_type = String::new();
    let mut at = 0;
    while at < headers.len() {
        let name_len = usize::from(headers[at]);
        let name = headers.get(at + 1..at + 1 + name_len).unwrap_or_default();
        at += 1 + name_len;
        let kind = headers.get(at).copied().unwrap_or(255);
        at += 1;
        let fixed = match kind {
            0 | 1 => Some(0),
            2 => Some(1),
            3 => Some(2),
            4 => Some(4),
            5 | 8 => Some(8),
            9 => Some(16),
            6 | 7 => None,
            _ => bail!("an event-stream header of unknown type {kind}"),
        };
        let value = match fixed {
            Some(len) => {
                at += len;
                &[][..]
            }
            None => {
                let len = headers
                    .get(at..at + 2)
                    .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                let value = headers.get(at + 2..at + 2 + len).unwrap_or_default();
                at += 2 + len;
                value
            }
        };
        if name == b":event-type" || name == b":exception-type" {
            event_type = String::from_utf8_lossy(value).into_owned();
        }
    }
    Ok(Some((event_type, payload)))
}
