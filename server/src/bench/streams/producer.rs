//! One producer: PutRecords calls on a fixed schedule, each call's latency
//! measured from the time it was meant to go out.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::Totals;
use super::client::{Answer, Client};
use super::histogram::Histogram;
use super::record::{self, Stamp};

pub struct Plan {
    pub stream: String,
    /// Records per second of this producer; None: as fast as answered.
    pub rate: Option<f64>,
    pub batch: usize,
    pub record_size: usize,
    pub start: Instant,
    pub start_micros: u64,
    pub end: Instant,
}

/// Runs until the plan's end; the histogram holds one latency per call.
pub fn run(client: &Client, producer: u32, plan: &Plan, totals: &Totals) -> Histogram {
    let mut latencies = Histogram::default();
    let mut seq = 0u64;
    for call in 0u64.. {
        let intended = match plan.rate {
            Some(rate) => {
                let offset = (call * plan.batch as u64) as f64 / rate;
                plan.start + Duration::from_secs_f64(offset)
            }
            None => Instant::now(),
        };
        // A producer that fell behind stops at the end too: calls it never
        // sent show as the run's shortfall, not as a backlog without end.
        if intended >= plan.end || Instant::now() >= plan.end {
            break;
        }
        if let Some(wait) = intended.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent_micros =
            plan.start_micros + intended.saturating_duration_since(plan.start).as_micros() as u64;
        let records: Vec<Value> = (0..plan.batch)
            .map(|_| {
                let stamp = Stamp {
                    sent_micros,
                    producer,
                    seq,
                };
                seq += 1;
                json!({
                    "Data": base64::engine::general_purpose::STANDARD
                        .encode(record::encode(stamp, plan.record_size)),
                    "PartitionKey": format!("{producer}-{}", stamp.seq),
                })
            })
            .collect();
        let body = json!({"StreamName": plan.stream, "Records": records});
        let answer = client.call("PutRecords", &body);
        latencies.record(intended.elapsed().as_micros() as u64);
        let batch = plan.batch as u64;
        totals.sent.fetch_add(batch, Ordering::Relaxed);
        match answer {
            Answer::Ok(value) => count_records(&value, plan.record_size as u64, totals),
            Answer::Throttled => {
                totals.throttled.fetch_add(batch, Ordering::Relaxed);
            }
            Answer::Failed(message) => {
                totals.failed.fetch_add(batch, Ordering::Relaxed);
                totals.note_error(message);
            }
        }
    }
    latencies
}

/// PutRecords answers per record: a sequence number, or an error code.
fn count_records(answer: &Value, record_size: u64, totals: &Totals) {
    for record in answer["Records"].as_array().into_iter().flatten() {
        match record["ErrorCode"].as_str() {
            None => {
                totals.acked.fetch_add(1, Ordering::Relaxed);
                totals.bytes_in.fetch_add(record_size, Ordering::Relaxed);
            }
            Some("ProvisionedThroughputExceededException") => {
                totals.throttled.fetch_add(1, Ordering::Relaxed);
            }
            Some(code) => {
                totals.failed.fetch_add(1, Ordering::Relaxed);
                totals.note_error(format!(
                    "{code}: {}",
                    record["ErrorMessage"].as_str().unwrap_or_default()
                ));
            }
        }
    }
}
