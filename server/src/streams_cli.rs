//! `runnel streams ...`: conveniences over a running server's Kinesis API,
//! for people who would otherwise reach for the aws CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::cli::{StreamsArgs, StreamsCommand, TailFrom};

/// GetRecords is limited to 5 calls/s per shard; polling an idle shard
/// every 200 ms stays inside it.
const IDLE_POLL: Duration = Duration::from_millis(200);
const PUT_BATCH: usize = 500;

struct Client {
    agent: ureq::Agent,
    endpoint: String,
}

impl Client {
    fn call(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        let response = crate::cli_http::kinesis_post(&self.agent, &self.endpoint, op, &body)?;
        let (status, text, value) = crate::cli_http::read(response)?;
        if status != 200 {
            bail!(
                "{op} failed: {}: {}",
                value["__type"].as_str().unwrap_or("error"),
                value["message"].as_str().unwrap_or(&text)
            );
        }
        Ok(value)
    }
}

pub fn run(args: StreamsArgs) -> anyhow::Result<()> {
    let client = Client {
        agent: crate::cli_http::agent(Duration::from_secs(60)),
        endpoint: args.endpoint,
    };
    let mut out = std::io::stdout().lock();
    match args.command {
        StreamsCommand::Create {
            name,
            shards,
            on_demand,
        } => {
            let body = if on_demand {
                json!({"StreamName": name, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}})
            } else {
                json!({"StreamName": name, "ShardCount": shards})
            };
            client.call("CreateStream", body)?;
            writeln!(out, "created {name}")?;
        }
        StreamsCommand::List => {
            let mut token: Option<String> = None;
            loop {
                let body = match &token {
                    Some(t) => json!({"NextToken": t}),
                    None => json!({}),
                };
                let page = client.call("ListStreams", body)?;
                for name in page["StreamNames"].as_array().into_iter().flatten() {
                    writeln!(out, "{}", name.as_str().unwrap_or_default())?;
                }
                match page["NextToken"].as_str() {
                    Some(t) if page["HasMoreStreams"] == true => token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        StreamsCommand::Describe { name } => {
            let summary = client.call("DescribeStreamSummary", json!({"StreamName": name}))?;
            let shards = client.call("ListShards", json!({"StreamName": name}))?;
            let mut description = summary["StreamDescriptionSummary"].clone();
            description["Shards"] = shards["Shards"].clone();
            writeln!(out, "{}", serde_json::to_string_pretty(&description)?)?;
        }
        StreamsCommand::Put {
            name,
            partition_key,
            records,
        } => {
            let lines: Box<dyn Iterator<Item = std::io::Result<String>>> = if records.is_empty() {
                Box::new(std::io::stdin().lock().lines())
            } else {
                Box::new(records.into_iter().map(Ok))
            };
            let mut batch = Vec::with_capacity(PUT_BATCH);
            let mut n = 0usize;
            for (i, line) in lines.enumerate() {
                let data = line.context("reading records from stdin")?;
                let key = partition_key.clone().unwrap_or_else(|| i.to_string());
                batch.push(json!({"Data": STANDARD.encode(data), "PartitionKey": key}));
                if batch.len() == PUT_BATCH {
                    n += put_batch(&client, &name, std::mem::take(&mut batch))?;
                }
            }
            if !batch.is_empty() {
                n += put_batch(&client, &name, batch)?;
            }
            writeln!(out, "put {n} records into {name}")?;
        }
        StreamsCommand::Tail {
            name,
            from,
            count,
            show_meta,
        } => tail(&client, &name, from, count, show_meta, &mut out)?,
    }
    Ok(())
}

/// Puts one batch, retrying throttled records (with backoff) until all are in.
fn put_batch(client: &Client, stream: &str, mut records: Vec<Value>) -> anyhow::Result<usize> {
    let total = records.len();
    let mut backoff = Duration::from_millis(50);
    for _ in 0..100 {
        let out = client.call(
            "PutRecords",
            json!({"StreamName": stream, "Records": records}),
        )?;
        if out["FailedRecordCount"].as_u64().unwrap_or(0) == 0 {
            return Ok(total);
        }
        let results = out["Records"].as_array().cloned().unwrap_or_default();
        records = records
            .into_iter()
            .zip(results)
            .filter(|(_, r)| r.get("ErrorCode").is_some())
            .map(|(record, _)| record)
            .collect();
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    bail!("{} records still throttled after retries", records.len())
}

struct ShardReader {
    shard_id: String,
    iterator: String,
    next_poll: Instant,
}

/// Follows every shard, parents before children: a child starts once all
/// its parents have been read to their end, so per-key order holds across
/// resharding.
fn tail(
    client: &Client,
    stream: &str,
    from: TailFrom,
    count: Option<usize>,
    show_meta: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let shards = client.call("ListShards", json!({"StreamName": stream}))?;
    let shards = shards["Shards"].as_array().cloned().unwrap_or_default();
    let listed: BTreeSet<String> = shards
        .iter()
        .filter_map(|s| s["ShardId"].as_str().map(str::to_string))
        .collect();
    let is_open = |s: &Value| {
        s["SequenceNumberRange"]
            .get("EndingSequenceNumber")
            .is_none()
    };
    let starts: Vec<String> = shards
        .iter()
        .filter(|s| match from {
            TailFrom::Latest => is_open(s),
            // Start at the oldest shards still listed; their children follow.
            TailFrom::TrimHorizon => ["ParentShardId", "AdjacentParentShardId"]
                .iter()
                .all(|p| s[*p].as_str().is_none_or(|id| !listed.contains(id))),
        })
        .filter_map(|s| s["ShardId"].as_str().map(str::to_string))
        .collect();
    let kind = match from {
        TailFrom::Latest => "LATEST",
        TailFrom::TrimHorizon => "TRIM_HORIZON",
    };
    let mut readers = Vec::new();
    for shard_id in starts {
        readers.push(open_reader(client, stream, &shard_id, kind)?);
    }
    let mut finished: BTreeSet<String> = BTreeSet::new();
    // Children waiting for the rest of their parents: id -> parents.
    let mut waiting: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut printed = 0usize;
    while !readers.is_empty() {
        let mut index = 0;
        while index < readers.len() {
            if Instant::now() < readers[index].next_poll {
                index += 1;
                continue;
            }
            let reader = &mut readers[index];
            let result = client.call("GetRecords", json!({"ShardIterator": reader.iterator}));
            let page = match result {
                Ok(page) => page,
                Err(e) if e.to_string().contains("ProvisionedThroughputExceeded") => {
                    reader.next_poll = Instant::now() + IDLE_POLL;
                    index += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let records = page["Records"].as_array().cloned().unwrap_or_default();
            for record in &records {
                let data = STANDARD
                    .decode(record["Data"].as_str().unwrap_or_default())
                    .unwrap_or_default();
                let data = String::from_utf8_lossy(&data);
                if show_meta {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{data}",
                        reader.shard_id,
                        record["SequenceNumber"].as_str().unwrap_or_default(),
                        record["PartitionKey"].as_str().unwrap_or_default()
                    )?;
                } else {
                    writeln!(out, "{data}")?;
                }
                printed += 1;
                if count.is_some_and(|c| printed >= c) {
                    out.flush()?;
                    return Ok(());
                }
            }
            out.flush()?;
            match page["NextShardIterator"].as_str() {
                Some(next) => {
                    reader.iterator = next.to_string();
                    reader.next_poll = if records.is_empty() {
                        Instant::now() + IDLE_POLL
                    } else {
                        Instant::now()
                    };
                    index += 1;
                }
                None => {
                    let done = readers.remove(index);
                    finished.insert(done.shard_id.clone());
                    for child in page["ChildShards"].as_array().into_iter().flatten() {
                        let id = child["ShardId"].as_str().unwrap_or_default().to_string();
                        let parents: Vec<String> = child["ParentShards"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p.as_str().map(str::to_string))
                            .collect();
                        waiting.entry(id).or_insert(parents);
                    }
                    let ready: Vec<String> = waiting
                        .iter()
                        .filter(|(_, parents)| parents.iter().all(|p| finished.contains(p)))
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in ready {
                        waiting.remove(&id);
                        readers.push(open_reader(client, stream, &id, "TRIM_HORIZON")?);
                    }
                }
            }
        }
        let next = readers.iter().map(|r| r.next_poll).min();
        if let Some(next) = next {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
    }
    Ok(())
}

fn open_reader(
    client: &Client,
    stream: &str,
    shard_id: &str,
    kind: &str,
) -> anyhow::Result<ShardReader> {
    let out = client.call(
        "GetShardIterator",
        json!({"StreamName": stream, "ShardId": shard_id, "ShardIteratorType": kind}),
    )?;
    Ok(ShardReader {
        shard_id: shard_id.to_string(),
        iterator: out["ShardIterator"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        next_poll: Instant::now(),
    })
}
