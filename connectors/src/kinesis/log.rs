//! Where a kinesis table's records are: this server's stream service,
//! in-process, or another endpoint through its API. The source reads
//! shards through `ShardLog` the same way either way.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use runnel_streams::{IteratorStart, Streams, StreamsError, Wake};
use serde_json::{Value, json};

use super::remote::RemoteKinesis;
use crate::format::LineFraming;

pub struct ShardInfo {
    pub index: u32,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
}

/// A record as a read hands it over, borrowed for the call.
pub struct RecordView<'a> {
    pub data: &'a [u8],
    pub arrival_ms: u64,
    pub sequence: Sequence<'a>,
}

/// A sequence number as its log has it: the local log's is made into text
/// only when someone asks (a metadata column, the last one read).
#[derive(Clone, Copy)]
pub enum Sequence<'a> {
    Text(&'a str),
    Counter { shard: u32, counter: u64 },
}

impl Sequence<'_> {
    pub fn to_text(self) -> String {
        match self {
            Sequence::Text(text) => text.to_string(),
            Sequence::Counter { shard, counter } => {
                runnel_streams::model::sequence_number(shard, counter)
            }
        }
    }
}

/// Where a read ended.
pub struct PageEnd {
    /// `None` once a closed shard has been read to its end.
    pub next_iterator: Option<String>,
    pub millis_behind: u64,
    pub last_sequence: Option<String>,
    pub records: usize,
}

pub enum ReadError {
    /// The iterator outlived its five minutes: get another.
    ExpiredIterator,
    Failed(String),
}

pub trait ShardLog: Send + Sync {
    /// Every shard still holding records (closed ones too, until
    /// retention trims them).
    fn shards(&self) -> Result<Vec<ShardInfo>, String>;
    fn iterator(&self, shard: u32, start: &IteratorStart) -> Result<String, String>;
    /// Reads up to `limit` records, each handed to `visit` in order.
    fn read(
        &self,
        iterator: &str,
        limit: usize,
        visit: &mut dyn FnMut(RecordView<'_>),
    ) -> Result<PageEnd, ReadError>;
    /// Reads up to `limit` records as `framing`'s lines of their payloads
    /// (the user records of KPL-aggregated ones), for a source without
    /// metadata columns. A log may do this without handing each record
    /// over through `read`.
    fn read_lines(
        &self,
        iterator: &str,
        limit: usize,
        framing: LineFraming,
        lines: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<PageEnd, ReadError> {
        self.read(iterator, limit, &mut |record| {
            frame_record(framing, lines, ends, record.data)
        })
    }
    /// Has `wake` called when records are appended, if this log can.
    fn wake_on_append(&self, wake: &Wake) -> bool;
    /// How long a shard that gave nothing is left before it is read
    /// again (a log that wakes its readers is read when woken instead).
    fn empty_read_pause(&self) -> Duration;
    /// Epoch milliseconds by the clock that stamps the log's arrival times,
    /// as near as this side can tell.
    fn now_ms(&self) -> u64;
}

/// A read that gives nothing while the shard is behind is followed this
/// many times: GetRecords may answer empty pages before a shard's records.
const FIRST_RECORD_PAGES: usize = 5;

/// The sequence number of the first record at `start`, if there is one.
pub fn first_sequence(
    log: &dyn ShardLog,
    shard: u32,
    start: &IteratorStart,
) -> Result<Option<String>, String> {
    let mut iterator = log.iterator(shard, start)?;
    for _ in 0..FIRST_RECORD_PAGES {
        let mut first = None;
        let end = log
            .read(&iterator, 1, &mut |record| {
                first.get_or_insert_with(|| record.sequence.to_text());
            })
            .map_err(|error| match error {
                ReadError::ExpiredIterator => "the shard iterator expired".to_string(),
                ReadError::Failed(message) => message,
            })?;
        if first.is_some() {
            return Ok(first);
        }
        match end.next_iterator {
            Some(next) if end.millis_behind > 0 => iterator = next,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// A record's payload as lines: its user records' if it is
/// KPL-aggregated, else its own.
#[inline]
fn frame_record(framing: LineFraming, lines: &mut Vec<u8>, ends: &mut Vec<usize>, data: &[u8]) {
    let users = runnel_streams::aggregated::may_be_aggregated(data)
        .then(|| runnel_streams::aggregated::deaggregate(data))
        .flatten();
    match users {
        Some(users) => {
            for user in users {
                framing.append(lines, ends, user);
            }
        }
        None => framing.append(lines, ends, data),
    }
}

pub struct LocalLog {
    pub streams: Arc<Streams>,
    pub stream: String,
}

impl ShardLog for LocalLog {
    fn shards(&self) -> Result<Vec<ShardInfo>, String> {
        let info = self
            .streams
            .describe(&self.stream)
            .map_err(|e| e.to_string())?;
        Ok(info
            .meta
            .shards
            .iter()
            .map(|s| ShardInfo {
                index: s.index,
                parent: s.parent,
                adjacent_parent: s.adjacent_parent,
            })
            .collect())
    }

    fn iterator(&self, shard: u32, start: &IteratorStart) -> Result<String, String> {
        self.streams
            .shard_iterator(&self.stream, shard, start)
            .map_err(|e| e.to_string())
    }

    fn read(
        &self,
        iterator: &str,
        limit: usize,
        visit: &mut dyn FnMut(RecordView<'_>),
    ) -> Result<PageEnd, ReadError> {
        let mut last = None;
        let mut records = 0;
        // Outside the shard's GetRecords budget, as enhanced fan-out is;
        // the data is borrowed from the store, not copied.
        let read = self
            .streams
            .read_subscription_with(iterator, limit, &mut |record| {
                last = Some((record.shard, record.counter));
                records += 1;
                visit(RecordView {
                    data: record.data,
                    arrival_ms: record.arrival_ms,
                    sequence: Sequence::Counter {
                        shard: record.shard,
                        counter: record.counter,
                    },
                });
            });
        local_page_end(read, last, records)
    }

    fn read_lines(
        &self,
        iterator: &str,
        limit: usize,
        framing: LineFraming,
        lines: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<PageEnd, ReadError> {
        let mut last = None;
        let mut records = 0;
        let read = self
            .streams
            .read_subscription_with(iterator, limit, &mut |record| {
                last = Some((record.shard, record.counter));
                records += 1;
                frame_record(framing, lines, ends, record.data);
            });
        local_page_end(read, last, records)
    }

    fn wake_on_append(&self, wake: &Wake) -> bool {
        self.streams.on_append(&self.stream, wake).is_ok()
    }

    fn empty_read_pause(&self) -> Duration {
        Duration::ZERO
    }

    fn now_ms(&self) -> u64 {
        self.streams.now()
    }
}

pub struct RemoteLog {
    pub client: Arc<RemoteKinesis>,
    pub stream: String,
    /// Flink's `source.reader.empty-records-fetch-interval`.
    pub empty_pause: Duration,
}

impl ShardLog for RemoteLog {
    fn shards(&self) -> Result<Vec<ShardInfo>, String> {
        let mut shards = Vec::new();
        let mut request = json!({"StreamName": self.stream});
        loop {
            let page = self
                .client
                .call("ListShards", &request)
                .map_err(|e| e.to_string())?;
            for shard in page
                .get("Shards")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = |field: &str| {
                    shard
                        .get(field)
                        .and_then(Value::as_str)
                        .and_then(runnel_streams::model::parse_shard_id)
                };
                let Some(index) = id("ShardId") else {
                    return Err(format!("a shard id Runnel cannot read: {shard}"));
                };
                shards.push(ShardInfo {
                    index,
                    parent: id("ParentShardId"),
                    adjacent_parent: id("AdjacentParentShardId"),
                });
            }
            match page.get("NextToken").and_then(Value::as_str) {
                Some(token) => request = json!({"NextToken": token}),
                None => return Ok(shards),
            }
        }
    }

    fn iterator(&self, shard: u32, start: &IteratorStart) -> Result<String, String> {
        let mut request = json!({
            "StreamName": self.stream,
            "ShardId": runnel_streams::model::shard_id(shard),
        });
        let (kind, sequence) = match start {
            IteratorStart::TrimHorizon => ("TRIM_HORIZON", None),
            IteratorStart::Latest => ("LATEST", None),
            IteratorStart::AtSequence(s) => ("AT_SEQUENCE_NUMBER", Some(s)),
            IteratorStart::AfterSequence(s) => ("AFTER_SEQUENCE_NUMBER", Some(s)),
            IteratorStart::AtTimestamp(ms) => {
                request["Timestamp"] = json!(*ms as f64 / 1000.0);
                ("AT_TIMESTAMP", None)
            }
        };
        request["ShardIteratorType"] = json!(kind);
        if let Some(sequence) = sequence {
            request["StartingSequenceNumber"] = json!(sequence);
        }
        let answer = self
            .client
            .call("GetShardIterator", &request)
            .map_err(|e| e.to_string())?;
        answer
            .get("ShardIterator")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("GetShardIterator gave no ShardIterator: {answer}"))
    }

    fn read(
        &self,
        iterator: &str,
        limit: usize,
        visit: &mut dyn FnMut(RecordView<'_>),
    ) -> Result<PageEnd, ReadError> {
        let answer = self
            .client
            .call(
                "GetRecords",
                &json!({"ShardIterator": iterator, "Limit": limit.clamp(1, 10_000)}),
            )
            .map_err(|e| match e.kind() {
                "ExpiredIteratorException" => ReadError::ExpiredIterator,
                _ => ReadError::Failed(e.to_string()),
            })?;
        let mut last_sequence = None;
        let mut records = 0;
        for record in answer
            .get("Records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = |field: &str| record.get(field).and_then(Value::as_str);
            let data = text("Data")
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                .ok_or_else(|| ReadError::Failed(format!("a record without Data: {record}")))?;
            let sequence = text("SequenceNumber").unwrap_or_default();
            visit(RecordView {
                data: &data,
                arrival_ms: record
                    .get("ApproximateArrivalTimestamp")
                    .and_then(Value::as_f64)
                    .map_or(0, |seconds| (seconds * 1000.0).round().max(0.0) as u64),
                sequence: Sequence::Text(sequence),
            });
            last_sequence = Some(sequence.to_string());
            records += 1;
        }
        Ok(PageEnd {
            next_iterator: answer
                .get("NextShardIterator")
                .and_then(Value::as_str)
                .map(str::to_string),
            millis_behind: answer
                .get("MillisBehindLatest")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            last_sequence,
            records,
        })
    }

    fn wake_on_append(&self, _wake: &Wake) -> bool {
        false
    }

    fn empty_read_pause(&self) -> Duration {
        self.empty_pause
    }

    /// This machine's clock: the endpoint tells none.
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

fn local_page_end(
    read: Result<runnel_streams::ReadEnd, StreamsError>,
    last: Option<(u32, u64)>,
    records: usize,
) -> Result<PageEnd, ReadError> {
    match read {
        Ok(end) => Ok(PageEnd {
            next_iterator: end.next_iterator,
            millis_behind: end.millis_behind_latest,
            last_sequence: last
                .map(|(shard, counter)| runnel_streams::model::sequence_number(shard, counter)),
            records,
        }),
        Err(StreamsError::ExpiredIterator(_)) => Err(ReadError::ExpiredIterator),
        Err(error) => Err(ReadError::Failed(error.to_string())),
    }
}
