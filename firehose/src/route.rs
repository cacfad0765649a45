//! Routing to dynamic partitions inside delivery: when processing must run
//! before records are partitioned (decompression, de-aggregation, a Lambda
//! that names the keys with `partitionKeyFromLambda`), or a Kinesis stream
//! is the source, records are buffered as they come, and the stream's
//! delivery task moves them to their partitions' buffers.
//!
//! The move is one synced write: the records into every partition's
//! buffer together with how far the stream's own buffer has been routed,
//! so a crash never repeats nor loses a routed record. Records that fail
//! processing go to the error output first, under a key fixed by the
//! batch's first record, so writing them again after a crash replaces
//! them.

use std::sync::Arc;

use rocksdb::DB;
use tokio::sync::oneshot;

use crate::buffer::{Accepted, Part, Put};
use crate::delivery::{Delivery, commit, error_object, object_identity, take_undelivered};
use crate::error::{FirehoseError, Result};
use crate::model::DestinationSettings;
use crate::prefix::{KeyContext, object_name};
use crate::processing::{Pipeline, Processed, UNBATCHED_BYTES};
use crate::state;
use crate::stream::Entry;

/// One routing step's records, processed, and what they cover.
struct Batch {
    records: Vec<Processed>,
    /// The `processing-failed` object, if any record failed.
    errors: Option<(String, Vec<u8>)>,
    last_seq: u64,
    raw_bytes: u64,
}

impl Delivery {
    /// Moves the next batch of the stream's buffer to its partitions.
    /// Fails only when a buffer cannot be read or written.
    pub(crate) async fn route_one(
        &mut self,
        entry: &Arc<Entry>,
        settings: &Arc<DestinationSettings>,
    ) -> Result<()> {
        let (Some(router), Some(partitioning)) = (self.router.clone(), &settings.partitioning)
        else {
            return Err(FirehoseError::Internal(format!(
                "{} routes to partitions but has no router",
                entry.name
            )));
        };
        let batch = {
            let db = self.db.clone();
            let entry = entry.clone();
            let settings = settings.clone();
            let key = self.key;
            let now = (self.clock)();
            tokio::task::spawn_blocking(move || process(&db, &entry, &settings, key.as_ref(), now))
                .await
                .map_err(|e| FirehoseError::Internal(format!("processing records: {e}")))??
        };
        let Some(batch) = batch else {
            entry.delivered(0, || None);
            return Ok(());
        };
        if let Some((key, body)) = &batch.errors
            && !self.write(entry, &settings.bucket, key, body).await
        {
            return Ok(());
        }
        let groups = router.partitions.group(entry, batch.records, |record| {
            partitioning.keys(&record.data, record.lambda_keys.as_ref())
        })?;
        let moved = self
            .move_to(&router.puts, entry, &groups, batch.last_seq)
            .await;
        for (child, _, _) in &groups {
            child.put_done();
        }
        if !moved? {
            return Ok(());
        }
        let db = self.db.clone();
        let routed = entry.clone();
        let (last, raw) = (batch.last_seq, batch.raw_bytes);
        tokio::task::spawn_blocking(move || commit(&db, &routed, last, raw))
            .await
            .map_err(|e| FirehoseError::Internal(format!("committing routing: {e}")))?
    }

    /// Writes each group into its partition's buffer, with the stream's
    /// routed position, waiting while a partition's buffer is full. False
    /// if the server stopped first.
    async fn move_to(
        &mut self,
        puts: &std::sync::mpsc::SyncSender<Put>,
        entry: &Entry,
        groups: &[(Arc<Entry>, Vec<usize>, Vec<Processed>)],
        last_seq: u64,
    ) -> Result<bool> {
        let mut backoff = crate::delivery::FIRST_BACKOFF;
        loop {
            let parts = groups
                .iter()
                .map(|(child, _, records)| Part {
                    entry: child.clone(),
                    records: records.iter().map(|r| r.data.clone()).collect(),
                    arrivals: records.iter().map(|r| r.arrival_ms).collect(),
                })
                .collect();
            let (reply, answer) = oneshot::channel();
            puts.send(Put {
                parts,
                reply,
                position: Some((
                    state::delivered_key(entry.id),
                    last_seq.to_be_bytes().to_vec(),
                )),
            })
            .map_err(|_| FirehoseError::Internal("the writer has stopped".into()))?;
            let outcomes = answer
                .await
                .map_err(|_| FirehoseError::Internal("the writer dropped a put".into()))??;
            if !outcomes.contains(&Accepted::BufferFull) {
                return Ok(true);
            }
            tracing::warn!(stream = %entry.name, retry_in = ?backoff, "a partition's buffer is full; routing waits");
            if !self.back_off(&mut backoff).await {
                return Ok(false);
            }
        }
    }
}

/// How many bytes a routing step takes, and how long the oldest record
/// waits for them: the routing steps' own hints (the Lambda's), or 1 MiB
/// at once.
pub(crate) fn hints(settings: &DestinationSettings) -> (u64, u64) {
    settings
        .routing
        .as_ref()
        .map_or((UNBATCHED_BYTES, 0), Pipeline::batch_hints)
}

/// Reads the stream's buffer from its first unrouted record, up to the
/// processing batch's size, and runs the steps that come before
/// partitioning.
fn process(
    db: &DB,
    entry: &Entry,
    settings: &DestinationSettings,
    key: Option<&[u8; 32]>,
    now_ms: u64,
) -> Result<Option<Batch>> {
    let Some(taken) = take_undelivered(db, entry, hints(settings).0, key)? else {
        return Ok(None);
    };
    let inputs = taken.inputs();
    let (records, failures) = match &settings.routing {
        Some(pipeline) => pipeline.run_keyed(&inputs),
        None => (
            inputs
                .iter()
                .map(|input| Processed {
                    arrival_ms: input.arrival_ms,
                    data: input.data.to_vec(),
                    lambda_keys: None,
                })
                .collect(),
            Vec::new(),
        ),
    };
    let errors = (!failures.is_empty()).then(|| {
        let (uuid, random) = object_identity(entry.id, taken.first_seq);
        let context = KeyContext {
            oldest_arrival_ms: inputs.first().map_or(0, |i| i.arrival_ms),
            zone: settings.zone,
            random: &random,
            error_output_type: None,
            partition: None,
        };
        let name = object_name(&entry.name, entry.meta().version, &context, &uuid);
        error_object(
            settings,
            &context,
            &name,
            "processing-failed",
            &failures,
            now_ms,
        )
    });
    Ok(Some(Batch {
        records,
        errors,
        last_seq: taken.last_seq,
        raw_bytes: taken.raw_bytes,
    }))
}
