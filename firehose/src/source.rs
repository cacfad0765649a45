//! `KinesisStreamAsSource`: a delivery stream that reads a Runnel stream
//! from its trim horizon, shard by shard in lineage order (a child after
//! its parents), as Firehose reads Kinesis. Each batch read is buffered in
//! the same synced write as the shard's new position, so a restart
//! neither skips nor repeats records.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use rocksdb::{DB, Direction, IteratorMode};
use runnel_streams::{IteratorStart, Streams, StreamsError};
use tokio::sync::{oneshot, watch};

use crate::buffer::{Accepted, Put};
use crate::error::{FirehoseError, Result};
use crate::state::{self, CF_META};
use crate::stream::Entry;

/// Records read from a shard per buffered batch.
const BATCH_RECORDS: usize = 10_000;
/// How long a caught-up source waits for an append before looking again
/// (appends wake it sooner).
const IDLE: Duration = Duration::from_millis(500);
/// A shard read to its end.
const DONE: &[u8] = b"done";

/// The stream a `KinesisStreamSourceConfiguration` names.
pub fn stream_name(config: &serde_json::Value) -> Result<String> {
    let arn = config
        .get("KinesisStreamARN")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| {
            FirehoseError::InvalidArgument(
                "KinesisStreamSourceConfiguration needs a KinesisStreamARN.".into(),
            )
        })?;
    runnel_streams::stream_name_from_arn(arn)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            FirehoseError::InvalidArgument(format!(
                "KinesisStreamARN {arn} is not a Kinesis stream ARN."
            ))
        })
}

fn position_prefix(id: u64) -> Vec<u8> {
    [b"source/".as_slice(), &id.to_be_bytes()].concat()
}

pub fn position_key(id: u64, shard: u32) -> Vec<u8> {
    [position_prefix(id), shard.to_be_bytes().to_vec()].concat()
}

/// Where each shard's reading stands: the last sequence number buffered,
/// or `DONE`.
fn positions(db: &DB, id: u64) -> Result<HashMap<u32, Vec<u8>>> {
    let prefix = position_prefix(id);
    let mut found = HashMap::new();
    for item in db.iterator_cf(
        state::cf(db, CF_META)?,
        IteratorMode::From(&prefix, Direction::Forward),
    ) {
        let (key, value) = item?;
        let Some(shard) = key.strip_prefix(prefix.as_slice()) else {
            break;
        };
        if let Ok(shard) = <[u8; 4]>::try_from(shard) {
            found.insert(u32::from_be_bytes(shard), value.to_vec());
        }
    }
    Ok(found)
}

pub struct StreamSource {
    pub streams: Arc<Streams>,
    pub db: Arc<DB>,
    pub stream: String,
    pub puts: SyncSender<Put>,
    pub stop: watch::Receiver<bool>,
}

impl StreamSource {
    pub async fn run(mut self, entry: Arc<Entry>) {
        let appended = Arc::new(tokio::sync::Notify::new());
        let wake: runnel_streams::Wake = {
            let appended = appended.clone();
            Arc::new(move || appended.notify_one())
        };
        let mut registered = false;
        loop {
            if entry.is_deleted() || *self.stop.borrow() {
                return;
            }
            if !registered {
                registered = self.streams.on_append(&self.stream, &wake).is_ok();
            }
            let progressed = match self.step(&entry).await {
                Ok(progressed) => progressed,
                Err(error) => {
                    tracing::warn!(delivery_stream = %entry.name, source = %self.stream, %error, "reading the source stream failed; retrying");
                    false
                }
            };
            if !progressed {
                tokio::select! {
                    _ = appended.notified() => {}
                    _ = tokio::time::sleep(IDLE) => {}
                    _ = self.stop.changed() => {}
                }
            }
        }
    }

    /// Reads one batch from each shard that is ready; whether anything
    /// moved.
    async fn step(&self, entry: &Arc<Entry>) -> Result<bool> {
        let info = self.streams.describe(&self.stream).map_err(source_error)?;
        let positions = positions(&self.db, entry.id)?;
        let present: Vec<u32> = info.meta.shards.iter().map(|s| s.index).collect();
        let finished = |shard: Option<u32>| {
            shard.is_none_or(|s| {
                positions.get(&s).is_some_and(|p| p == DONE) || !present.contains(&s)
            })
        };
        let mut progressed = false;
        for shard in &info.meta.shards {
            let position = positions.get(&shard.index);
            if position.is_some_and(|p| p == DONE)
                || !finished(shard.parent)
                || !finished(shard.adjacent_parent)
            {
                continue;
            }
            let start = match position {
                Some(seq) => {
                    IteratorStart::AfterSequence(String::from_utf8_lossy(seq).into_owned())
                }
                None => IteratorStart::TrimHorizon,
            };
            let iterator = match self
                .streams
                .shard_iterator(&self.stream, shard.index, &start)
            {
                Ok(iterator) => iterator,
                Err(StreamsError::InvalidArgument(why)) if position.is_some() => {
                    // Retention trimmed past our position while we were
                    // away: go on from the oldest record still kept, as
                    // Firehose does, and say so.
                    tracing::warn!(delivery_stream = %entry.name, shard = %shard.shard_id(), %why, "records were trimmed before delivery; resuming at the trim horizon");
                    self.streams
                        .shard_iterator(&self.stream, shard.index, &IteratorStart::TrimHorizon)
                        .map_err(source_error)?
                }
                Err(error) => return Err(source_error(error)),
            };
            let out = self
                .streams
                .read_subscription(&iterator, BATCH_RECORDS)
                .map_err(source_error)?;
            let ended = out.next_iterator.is_none();
            let Some(last) = out.records.last().map(|r| r.sequence_number.clone()) else {
                if ended {
                    self.buffer(entry, Vec::new(), shard.index, DONE.to_vec())
                        .await?;
                    progressed = true;
                }
                continue;
            };
            let records = out.records.into_iter().map(|r| r.data).collect();
            let position = if ended {
                DONE.to_vec()
            } else {
                last.into_bytes()
            };
            progressed |= self.buffer(entry, records, shard.index, position).await?;
        }
        Ok(progressed)
    }

    /// Buffers records with the shard's new position; false when the
    /// buffer is full (the destination is failing) and nothing was taken.
    async fn buffer(
        &self,
        entry: &Arc<Entry>,
        records: Vec<Vec<u8>>,
        shard: u32,
        position: Vec<u8>,
    ) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.puts
            .send(Put::new(
                entry.clone(),
                records,
                reply,
                Some((position_key(entry.id, shard), position)),
            ))
            .map_err(|_| FirehoseError::Internal("the writer has stopped".into()))?;
        let outcomes = answer
            .await
            .map_err(|_| FirehoseError::Internal("the writer dropped a put".into()))??;
        Ok(!outcomes.contains(&Accepted::BufferFull))
    }
}

fn source_error(error: StreamsError) -> FirehoseError {
    FirehoseError::Internal(format!("source stream: {error}"))
}
