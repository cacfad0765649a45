//! `runnel bench streams`: a load tool for any Kinesis endpoint. Producers
//! put at a fixed rate, consumers read back what they put, and the report
//! gives throughput in and out, PutRecords and put-to-get latencies, and
//! what was throttled, failed, lost or read twice.

mod client;
mod consumer;
mod histogram;
mod producer;
mod record;
mod report;

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{ConsumerKind, StreamsBenchArgs};
use client::Client;
use histogram::Histogram;

/// After the last put, how long readers may take to catch up.
const DRAIN: Duration = Duration::from_secs(15);
const ACTIVE_WAIT: Duration = Duration::from_secs(120);
const CONSUMER_NAME: &str = "runnel-bench";

/// What every thread counts, read by the progress line as it runs.
#[derive(Default)]
pub struct Totals {
    sent: AtomicU64,
    acked: AtomicU64,
    throttled: AtomicU64,
    failed: AtomicU64,
    bytes_in: AtomicU64,
    received: AtomicU64,
    bytes_out: AtomicU64,
    /// When the last record arrived, in µs since the epoch.
    last_received_micros: AtomicU64,
    /// Tells readers to finish.
    stop: AtomicBool,
    first_error: Mutex<Option<String>>,
}

impl Totals {
    fn note_error(&self, message: String) {
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        first.get_or_insert(message);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

pub fn run(args: StreamsBenchArgs) -> anyhow::Result<()> {
    if args.record_size < record::HEADER_BYTES || args.record_size > 1024 * 1024 {
        bail!(
            "--record-size must be {} bytes (a record's send time and number) to 1 MiB",
            record::HEADER_BYTES
        );
    }
    if args.producers == 0 || args.duration == 0 {
        bail!("--producers and --duration must be at least 1");
    }
    let per_producer = (args.rate > 0).then(|| args.rate as f64 / args.producers as f64);
    let batch = match (args.batch, per_producer) {
        (Some(batch), _) if !(1..=500).contains(&batch) => {
            bail!("--batch must be 1 to 500 (PutRecords takes at most 500 records)")
        }
        (Some(batch), _) => batch,
        (None, Some(rate)) => ((rate / 10.0).floor() as usize).clamp(1, 100),
        (None, None) => 100,
    };
    let client = Client::new(&args.endpoint);
    if args.create {
        client.must(
            "CreateStream",
            &json!({"StreamName": args.stream, "ShardCount": args.shards}),
        )?;
    }
    let summary = wait_active(&client, &args.stream)?;
    let stream_arn = summary["StreamARN"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let shards = open_shards(&client, &args.stream)?;
    let consumer_arn = match args.consumer {
        ConsumerKind::Polling => None,
        ConsumerKind::Efo => Some(register_consumer(&client, &stream_arn)?),
    };

    let totals = Totals::default();
    let start_micros = record::now_micros();
    // Readers start a second before the first put, so a clock step cannot
    // hide the first records from AT_TIMESTAMP.
    let from_seconds = start_micros as f64 / 1e6 - 1.0;
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let plan = producer::Plan {
        stream: args.stream.clone(),
        rate: per_producer,
        batch,
        record_size: args.record_size,
        start,
        start_micros,
        end,
    };
    let (put_latency, seen, put_seconds) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let readers: Vec<_> = shards
            .iter()
            .map(|shard| {
                let (client, totals, consumer_arn) = (
                    Client::new(&args.endpoint),
                    &totals,
                    consumer_arn.as_deref(),
                );
                let stream = args.stream.as_str();
                scope.spawn(move || match consumer_arn {
                    Some(arn) => consumer::subscribe(&client, arn, shard, from_seconds, totals),
                    None => consumer::poll(&client, stream, shard, from_seconds, totals),
                })
            })
            .collect();
        let producers: Vec<_> = (0..args.producers)
            .map(|index| {
                let (client, plan, totals) = (Client::new(&args.endpoint), &plan, &totals);
                scope.spawn(move || producer::run(&client, index as u32, plan, totals))
            })
            .collect();
        let mut last = (Instant::now(), 0, 0);
        while producers.iter().any(|p| !p.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            if last.0.elapsed() >= Duration::from_secs(1) {
                last = progress(&args, start, &totals, last);
            }
        }
        let put_seconds = start.elapsed().as_secs_f64();
        let drain_until = Instant::now() + DRAIN;
        while Totals::get(&totals.received) < Totals::get(&totals.acked)
            && Instant::now() < drain_until
            && readers.iter().any(|r| !r.is_finished())
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        totals.stop.store(true, Ordering::Relaxed);
        let mut put_latency = Histogram::default();
        for producer in producers {
            let latencies = producer
                .join()
                .map_err(|_| anyhow::anyhow!("a producer panicked"))?;
            put_latency.merge(&latencies);
        }
        let mut seen = consumer::Seen::default();
        for reader in readers {
            let mut got = reader
                .join()
                .map_err(|_| anyhow::anyhow!("a reader panicked"))??;
            seen.latencies.merge(&got.latencies);
            seen.ids.append(&mut got.ids);
        }
        Ok((put_latency, seen, put_seconds))
    })?;
    let last_received = Totals::get(&totals.last_received_micros);
    let get_seconds = last_received.saturating_sub(start_micros) as f64 / 1e6;
    let distinct: HashSet<u64> = seen.ids.iter().copied().collect();
    let report = report::Report {
        endpoint: &args.endpoint,
        stream: &args.stream,
        shards: shards.len(),
        rate: args.rate,
        record_size: args.record_size,
        duration_s: args.duration as f64,
        put_seconds,
        get_seconds,
        producers: args.producers,
        batch,
        consumer: match args.consumer {
            ConsumerKind::Polling => "polling",
            ConsumerKind::Efo => "efo",
        },
        sent: Totals::get(&totals.sent),
        acked: Totals::get(&totals.acked),
        throttled: Totals::get(&totals.throttled),
        failed: Totals::get(&totals.failed),
        bytes_in: Totals::get(&totals.bytes_in),
        received: seen.ids.len() as u64,
        distinct: distinct.len() as u64,
        bytes_out: Totals::get(&totals.bytes_out),
        put_latency: &put_latency,
        get_latency: &seen.latencies,
        first_error: totals
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    if let Some(arn) = &consumer_arn {
        let _ = client.must("DeregisterStreamConsumer", &json!({"ConsumerARN": arn}));
    }
    if args.create {
        client.must(
            "DeleteStream",
            &json!({"StreamName": args.stream, "EnforceConsumerDeletion": true}),
        )?;
    }
    Ok(())
}

fn progress(
    args: &StreamsBenchArgs,
    start: Instant,
    totals: &Totals,
    (at, acked_before, received_before): (Instant, u64, u64),
) -> (Instant, u64, u64) {
    let now = Instant::now();
    let acked = Totals::get(&totals.acked);
    let received = Totals::get(&totals.received);
    if !args.quiet {
        let seconds = now.duration_since(at).as_secs_f64().max(1e-3);
        let _ = writeln!(
            std::io::stderr(),
            "{:>5.0} s  put {:>9.0} rec/s (acked {acked}, throttled {}, failed {})  got {:>9.0} rec/s ({received})",
            now.duration_since(start).as_secs_f64(),
            (acked - acked_before) as f64 / seconds,
            Totals::get(&totals.throttled),
            Totals::get(&totals.failed),
            (received - received_before) as f64 / seconds,
        );
    }
    (now, acked, received)
}

fn wait_active(client: &Client, stream: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + ACTIVE_WAIT;
    loop {
        let summary = client
            .must("DescribeStreamSummary", &json!({"StreamName": stream}))
            .with_context(|| format!("stream {stream} (--create makes it)"))?;
        let summary = summary["StreamDescriptionSummary"].clone();
        if summary["StreamStatus"] == "ACTIVE" {
            return Ok(summary);
        }
        if Instant::now() > deadline {
            bail!("stream {stream} is not ACTIVE after {ACTIVE_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The shards still taking records (no ending sequence number).
fn open_shards(client: &Client, stream: &str) -> anyhow::Result<Vec<String>> {
    let mut shards = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let body = match &next {
            Some(token) => json!({"NextToken": token}),
            None => json!({"StreamName": stream}),
        };
        let page = client.must("ListShards", &body)?;
        for shard in page["Shards"].as_array().into_iter().flatten() {
            if shard["SequenceNumberRange"]["EndingSequenceNumber"].is_null()
                && let Some(id) = shard["ShardId"].as_str()
            {
                shards.push(id.to_string());
            }
        }
        match page["NextToken"].as_str() {
            Some(token) => next = Some(token.to_string()),
            None => return Ok(shards),
        }
    }
}

fn register_consumer(client: &Client, stream_arn: &str) -> anyhow::Result<String> {
    let registered = client.must(
        "RegisterStreamConsumer",
        &json!({"StreamARN": stream_arn, "ConsumerName": CONSUMER_NAME}),
    )?;
    let arn = registered["Consumer"]["ConsumerARN"]
        .as_str()
        .context("RegisterStreamConsumer named no ConsumerARN")?
        .to_string();
    let deadline = Instant::now() + ACTIVE_WAIT;
    loop {
        let described = client.must("DescribeStreamConsumer", &json!({"ConsumerARN": arn}))?;
        if described["ConsumerDescription"]["ConsumerStatus"] == "ACTIVE" {
            return Ok(arn);
        }
        if Instant::now() > deadline {
            bail!("consumer {arn} is not ACTIVE after {ACTIVE_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
