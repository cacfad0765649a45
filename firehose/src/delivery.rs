//! Each delivery stream's delivery task: it writes an object when the
//! buffer reaches `SizeInMBs` or when `IntervalInSeconds` has passed since
//! its oldest record arrived, whichever comes first. Records leave the
//! buffer only after their object is written, in the same synced write
//! that records how far delivery has come.
//!
//! An object's key is a function of its first record (its sequence and
//! arrival) and the stream's version, so an object written again after a
//! crash (written, but the buffer not yet told) replaces the first copy
//! instead of duplicating its records.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use md5::{Digest, Md5};
use rocksdb::{DB, WriteBatch, WriteOptions};
use tokio::sync::watch;

use crate::bucket::Buckets;
use crate::buffer::{CF_RECORDS, Opening, delivered_bound, record_key, scan};
use crate::error::{FirehoseError, Result};
use crate::model::{DestinationSettings, HttpSettings};
use crate::prefix::{KeyContext, Prefix, object_name};
use crate::processing::{Failure, Input};
use crate::redshift::RedshiftSettings;
use crate::search::{Document, SearchSettings};
use crate::splunk::SplunkSettings;
use crate::stream::{Entry, Partition};
use crate::{Clock, state};

/// Retry delays after a failed write, doubling to this bound; S3 delivery
/// is retried until it succeeds (AWS gives up after 24 hours and loses the
/// data; Runnel keeps it buffered).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// How a stream's delivery task reaches its dynamic partitions.
#[derive(Clone)]
pub struct Router {
    pub partitions: Arc<crate::partitions::Partitions>,
    pub puts: std::sync::mpsc::SyncSender<crate::buffer::Put>,
}

#[derive(Clone)]
pub struct Delivery {
    /// `arn:aws:firehose:<region>:<account>:deliverystream/`, for the
    /// HTTP endpoint's `X-Amz-Firehose-Source-Arn`.
    pub arn_prefix: String,
    pub db: Arc<DB>,
    /// Opens records sealed in the buffer.
    pub key: Option<[u8; 32]>,
    pub buckets: Arc<Buckets>,
    pub clock: Clock,
    pub stop: watch::Receiver<bool>,
    /// For a stream's task (not a partition's): routes its records.
    pub router: Option<Router>,
}

/// An object ready to write, and what it covers in the buffer.
struct Object {
    key: String,
    /// None when processing dropped every record.
    body: Option<Vec<u8>>,
    /// The `processing-failed` records' key and JSON lines.
    errors: Vec<(String, Vec<u8>)>,
    /// For an HTTP endpoint: the request to make instead of `body`.
    http: Option<HttpBatch>,
    /// For Redshift: the records COPYed once `body` is staged.
    redshift: Option<Vec<Vec<u8>>>,
    /// For OpenSearch or Elasticsearch: the documents to send instead.
    search: Option<SearchBatch>,
    /// `S3BackupMode` `Enabled`: the source records' copy (bucket, key,
    /// body).
    backup: Option<(String, String, Vec<u8>)>,
    last_seq: u64,
    records: u64,
    raw_bytes: u64,
    oldest_ms: u64,
}

/// Where a batch of records is sent as one request: an HTTP endpoint or
/// Splunk's HEC.
#[derive(Clone)]
enum Receiver {
    Http(HttpSettings),
    Splunk(SplunkSettings),
}

impl Receiver {
    fn of(settings: &DestinationSettings) -> Option<Receiver> {
        match (&settings.http, &settings.splunk) {
            (Some(http), _) => Some(Receiver::Http(http.clone())),
            (None, Some(splunk)) => Some(Receiver::Splunk(splunk.clone())),
            (None, None) => None,
        }
    }

    fn retry_ms(&self) -> u64 {
        match self {
            Receiver::Http(http) => http.retry_ms,
            Receiver::Splunk(splunk) => splunk.retry_ms,
        }
    }

    fn backup_all(&self) -> bool {
        match self {
            Receiver::Http(http) => http.backup_all,
            Receiver::Splunk(splunk) => splunk.backup_all,
        }
    }

    fn failed_type(&self) -> &'static str {
        match self {
            Receiver::Http(_) => "http-endpoint-failed",
            Receiver::Splunk(_) => "splunk-failed",
        }
    }

    fn error_code(&self) -> &'static str {
        match self {
            Receiver::Http(_) => "HttpEndpoint.RequestFailed",
            Receiver::Splunk(_) => "Splunk.RequestFailed",
        }
    }
}

/// One request's records (an HTTP endpoint's, or HEC's: then `request_id`
/// is the channel), and where they go in the backup bucket if it fails
/// (or always, with `AllData` / `AllEvents`).
struct HttpBatch {
    /// Kept across retries (and the same after a crash), so a receiver
    /// can tell a retry from new data.
    request_id: String,
    records: Vec<Vec<u8>>,
    /// The records as received, with their arrival, for the backup.
    raw: Vec<(u64, Vec<u8>)>,
    failed_key: String,
    /// The `AllData` copy: key and (compressed) body.
    backup: Option<(String, Vec<u8>)>,
}

/// One object's documents for a search cluster, with each one's arrival,
/// and where they go in the backup bucket if they fail (or always, with
/// `AllDocuments`).
struct SearchBatch {
    documents: Vec<(u64, Document)>,
    failed_key: String,
    backup: Option<(String, Vec<u8>)>,
}

impl Delivery {
    pub async fn run(mut self, entry: Arc<Entry>) {
        loop {
            if entry.is_deleted() || *self.stop.borrow() {
                return;
            }
            let buffer = entry.buffer();
            let settings = entry.settings();
            let routes = entry.routes(&settings);
            let (size_bytes, interval_ms) = if routes {
                crate::route::hints(&settings)
            } else {
                (settings.size_bytes, settings.interval_ms)
            };
            let now = (self.clock)();
            let wait = match buffer.oldest_ms {
                None => None,
                Some(oldest) => {
                    let due = oldest.saturating_add(interval_ms);
                    if buffer.bytes >= size_bytes || now >= due {
                        let step = if routes {
                            self.route_one(&entry, &settings).await
                        } else {
                            self.deliver_one(&entry, &settings).await
                        };
                        if let Err(error) = step {
                            // The buffer itself failed (a store error, a
                            // sealed record without its key): nothing is
                            // dropped; try again later, loudly.
                            entry
                                .figures
                                .delivery_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::error!(stream = %entry.name, %error, retry_in = ?MAX_BACKOFF, "delivery failed");
                            tokio::select! {
                                _ = tokio::time::sleep(MAX_BACKOFF) => {}
                                _ = self.stop.changed() => return,
                            }
                        }
                        continue;
                    }
                    Some(Duration::from_millis(due - now))
                }
            };
            let sleep = async {
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = entry.wake.notified() => {}
                _ = sleep => {}
                _ = self.stop.changed() => {}
            }
        }
    }

    /// Writes the next object, retrying until it is written (or the
    /// server stops), then drops its records from the buffer. Fails only
    /// when the buffer itself cannot be read or written.
    async fn deliver_one(
        &mut self,
        entry: &Arc<Entry>,
        settings: &Arc<DestinationSettings>,
    ) -> Result<()> {
        let object = {
            let db = self.db.clone();
            let entry = entry.clone();
            let settings = settings.clone();
            let now = (self.clock)();
            let key = self.key;
            tokio::task::spawn_blocking(move || {
                build_object(&db, &entry, &settings, key.as_ref(), now)
            })
            .await
            .map_err(|e| FirehoseError::Internal(format!("building an object: {e}")))??
        };
        let Some(object) = object else {
            // Nothing buffered after all (the counters ran ahead of a
            // failed write): start the interval afresh.
            entry.delivered(0, || None);
            return Ok(());
        };
        let writes = object
            .errors
            .iter()
            .map(|(key, body)| (&settings.bucket, key, body))
            .chain(
                object
                    .body
                    .as_ref()
                    .map(|body| (&settings.bucket, &object.key, body)),
            )
            .chain(
                object
                    .backup
                    .iter()
                    .map(|(bucket, key, body)| (bucket, key, body)),
            );
        for (bucket, key, body) in writes {
            if !self.write(entry, bucket, key, body).await {
                return Ok(());
            }
        }
        if let (Some(batch), Some(receiver)) = (&object.http, Receiver::of(settings))
            && !self.send_http(entry, settings, receiver, batch).await
        {
            return Ok(());
        }
        if let (Some(records), Some(redshift)) = (&object.redshift, &settings.redshift)
            && !self
                .copy_into(entry, settings, redshift, &object.key, records)
                .await
        {
            return Ok(());
        }
        if let (Some(batch), Some(search)) = (&object.search, &settings.search)
            && !self.send_search(entry, settings, search, batch).await
        {
            return Ok(());
        }
        let db = self.db.clone();
        let committed = entry.clone();
        let last = object.last_seq;
        let raw = object.raw_bytes;
        tokio::task::spawn_blocking(move || commit(&db, &committed, last, raw))
            .await
            .map_err(|e| FirehoseError::Internal(format!("committing delivery: {e}")))??;
        let figures = &entry.figures;
        figures
            .delivered_records
            .fetch_add(object.records, Ordering::Relaxed);
        figures
            .delivered_bytes
            .fetch_add(object.raw_bytes, Ordering::Relaxed);
        figures.delivered_objects.fetch_add(1, Ordering::Relaxed);
        figures.last_freshness_ms.store(
            (self.clock)().saturating_sub(object.oldest_ms),
            Ordering::Relaxed,
        );
        Ok(())
    }
}

impl Delivery {
    /// Posts a batch to the HTTP endpoint, retrying with backoff for the
    /// destination's `RetryOptions`; then, if it never succeeded, writes
    /// its records to the backup bucket as `http-endpoint-failed`. With
    /// `AllData` the records are also backed up. False if the server
    /// stopped first.
    async fn send_http(
        &mut self,
        entry: &Entry,
        settings: &DestinationSettings,
        receiver: Receiver,
        batch: &HttpBatch,
    ) -> bool {
        if !batch.records.is_empty() {
            let started = (self.clock)();
            let mut backoff = FIRST_BACKOFF;
            let mut attempts = 0u32;
            let failure = loop {
                attempts += 1;
                let outcome = {
                    let receiver = receiver.clone();
                    let records = batch.records.clone();
                    let request_id = batch.request_id.clone();
                    let source_arn = format!("{}{}", self.arn_prefix, entry.name);
                    let timestamp_ms = (self.clock)();
                    tokio::task::spawn_blocking(move || match receiver {
                        Receiver::Http(http) => crate::http::send(
                            &http,
                            &crate::http::Request {
                                request_id: &request_id,
                                source_arn: &source_arn,
                                timestamp_ms,
                                records: &records,
                            },
                        ),
                        Receiver::Splunk(splunk) => {
                            crate::splunk::send(&splunk, &request_id, &records)
                        }
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("the request task failed: {e}")))
                };
                match outcome {
                    Ok(()) => break None,
                    Err(error) => {
                        entry
                            .figures
                            .delivery_failures
                            .fetch_add(1, Ordering::Relaxed);
                        if (self.clock)().saturating_sub(started) >= receiver.retry_ms() {
                            break Some(error);
                        }
                        tracing::warn!(stream = %entry.name, %error, retry_in = ?backoff, "delivery request failed");
                        if !self.back_off(&mut backoff).await {
                            return false;
                        }
                    }
                }
            };
            if let Some(message) = failure {
                let now = (self.clock)();
                let lines: Vec<u8> = batch
                    .raw
                    .iter()
                    .flat_map(|(arrival_ms, data)| {
                        Failure {
                            arrival_ms: *arrival_ms,
                            raw: data.clone(),
                            code: receiver.error_code().into(),
                            message: message.clone(),
                            attempts,
                            lambda_arn: None,
                        }
                        .to_line(now)
                    })
                    .collect();
                tracing::error!(stream = %entry.name, %message, records = batch.raw.len(), "retries exhausted; records go to the backup bucket");
                if !self
                    .write(entry, &settings.bucket, &batch.failed_key, &lines)
                    .await
                {
                    return false;
                }
            }
        }
        if let Some((key, body)) = &batch.backup
            && !self.write(entry, &settings.bucket, key, body).await
        {
            return false;
        }
        true
    }

    /// COPYs a staged object's records into PostgreSQL, retrying with
    /// backoff for the destination's `RetryOptions`; then a line naming the
    /// staged object goes under `redshift-failed`. False if the server
    /// stopped first.
    async fn copy_into(
        &mut self,
        entry: &Entry,
        settings: &DestinationSettings,
        redshift: &RedshiftSettings,
        staged_key: &str,
        records: &[Vec<u8>],
    ) -> bool {
        if records.is_empty() {
            return true;
        }
        let started = (self.clock)();
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match crate::redshift::load(redshift, records).await {
                Ok(_) => return true,
                Err(error) => {
                    entry
                        .figures
                        .delivery_failures
                        .fetch_add(1, Ordering::Relaxed);
                    if (self.clock)().saturating_sub(started) >= redshift.retry_ms {
                        let now = (self.clock)();
                        let line = Failure {
                            arrival_ms: now,
                            raw: staged_key.as_bytes().to_vec(),
                            code: "Redshift.CopyFailed".into(),
                            message: error.clone(),
                            attempts,
                            lambda_arn: None,
                        }
                        .to_line(now);
                        let key = format!("redshift-failed/{staged_key}");
                        tracing::error!(stream = %entry.name, %error, "COPY retries exhausted; the staged object is named under redshift-failed");
                        return self.write(entry, &settings.bucket, &key, &line).await;
                    }
                    tracing::warn!(stream = %entry.name, %error, retry_in = ?backoff, "COPY failed");
                    if !self.back_off(&mut backoff).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Sends a batch's documents with `_bulk`, again only those the
    /// cluster failed, with backoff for the destination's `RetryOptions`;
    /// then what still failed goes to the backup bucket. False if the
    /// server stopped first.
    async fn send_search(
        &mut self,
        entry: &Entry,
        settings: &DestinationSettings,
        search: &SearchSettings,
        batch: &SearchBatch,
    ) -> bool {
        let started = (self.clock)();
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0u32;
        // Indexes of documents not yet taken, and why the last try failed.
        let mut pending: Vec<(usize, String)> = (0..batch.documents.len())
            .map(|i| (i, String::new()))
            .collect();
        while !pending.is_empty() {
            attempts += 1;
            let documents: Vec<Document> = pending
                .iter()
                .map(|(i, _)| batch.documents[*i].1.clone())
                .collect();
            let outcome = {
                let search = search.clone();
                tokio::task::spawn_blocking(move || {
                    let refs: Vec<&Document> = documents.iter().collect();
                    crate::search::bulk(&search, &refs)
                })
                .await
                .unwrap_or_else(|e| Err(format!("the request task failed: {e}")))
            };
            pending = match outcome {
                Ok(results) => pending
                    .into_iter()
                    .zip(results)
                    .filter_map(|((i, _), failure)| failure.map(|why| (i, why)))
                    .collect(),
                Err(why) => pending.into_iter().map(|(i, _)| (i, why.clone())).collect(),
            };
            if pending.is_empty() {
                break;
            }
            entry
                .figures
                .delivery_failures
                .fetch_add(1, Ordering::Relaxed);
            if (self.clock)().saturating_sub(started) >= search.retry_ms {
                let now = (self.clock)();
                let lines: Vec<u8> = pending
                    .iter()
                    .flat_map(|(i, why)| {
                        let (arrival_ms, document) = &batch.documents[*i];
                        Failure {
                            arrival_ms: *arrival_ms,
                            raw: document.body.clone(),
                            code: "OS.DocumentFailed".into(),
                            message: why.clone(),
                            attempts,
                            lambda_arn: None,
                        }
                        .to_line(now)
                    })
                    .collect();
                tracing::error!(stream = %entry.name, documents = pending.len(), "search cluster retries exhausted; documents go to the backup bucket");
                if !self
                    .write(entry, &settings.bucket, &batch.failed_key, &lines)
                    .await
                {
                    return false;
                }
                break;
            }
            if !self.back_off(&mut backoff).await {
                return false;
            }
        }
        if let Some((key, body)) = &batch.backup
            && !self.write(entry, &settings.bucket, key, body).await
        {
            return false;
        }
        true
    }

    /// Writes one object, retrying with backoff until it is written; false
    /// if the server stopped first.
    /// Waits `backoff`, then doubles it up to `MAX_BACKOFF`. False if the
    /// server stopped first.
    pub(crate) async fn back_off(&mut self, backoff: &mut Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(*backoff) => {}
            _ = self.stop.changed() => return false,
        }
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        true
    }

    pub(crate) async fn write(
        &mut self,
        entry: &Entry,
        bucket: &str,
        key: &str,
        body: &[u8],
    ) -> bool {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.buckets.put(bucket, key, body.to_vec()).await {
                Ok(()) => return true,
                Err(error) => {
                    entry
                        .figures
                        .delivery_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(stream = %entry.name, %error, retry_in = ?backoff, "object write failed");
                    if !self.back_off(&mut backoff).await {
                        return false;
                    }
                }
            }
        }
    }
}

/// Records after the last delivered one, opened: each one's arrival and
/// data, and what they cover in the buffer.
pub(crate) struct Taken {
    pub opened: Vec<(u64, Vec<u8>)>,
    pub first_seq: u64,
    pub last_seq: u64,
    pub raw_bytes: u64,
}

impl Taken {
    pub fn inputs(&self) -> Vec<Input<'_>> {
        self.opened
            .iter()
            .map(|(arrival_ms, data)| Input {
                arrival_ms: *arrival_ms,
                data,
            })
            .collect()
    }
}

/// Reads records from the first undelivered one until they reach `limit`
/// bytes (at least one record); None if nothing is buffered.
pub(crate) fn take_undelivered(
    db: &DB,
    entry: &Entry,
    limit: u64,
    key: Option<&[u8; 32]>,
) -> Result<Option<Taken>> {
    let first = entry.delivered.load(Ordering::Acquire) + 1;
    let mut opened: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut first_seq = None;
    let mut last_seq = 0;
    let mut raw_bytes = 0u64;
    scan(db, entry.id, first, Opening::Open(key), |record| {
        first_seq.get_or_insert(record.seq);
        last_seq = record.seq;
        raw_bytes += record.data.len() as u64;
        opened.push((record.arrival_ms, record.data.into_owned()));
        Ok(raw_bytes < limit)
    })?;
    Ok(first_seq.map(|first_seq| Taken {
        opened,
        first_seq,
        last_seq,
        raw_bytes,
    }))
}

/// Reads records from the first undelivered one until the object reaches
/// the size hint (at least one record), runs them through the stream's
/// processors, and makes the object (records concatenated as Firehose
/// writes them, then compressed) and, if any record failed processing, the
/// error object.
fn build_object(
    db: &DB,
    entry: &Entry,
    settings: &DestinationSettings,
    key: Option<&[u8; 32]>,
    now_ms: u64,
) -> Result<Option<Object>> {
    if settings.processing.is_none()
        && settings.redshift.is_none()
        && entry.partition != Some(Partition::Failed)
        && settings.conversion.is_none()
        && settings.http.is_none()
        && settings.splunk.is_none()
        && settings.search.is_none()
        && settings.backup.is_none()
    {
        return build_plain_object(db, entry, settings, key);
    }
    let Some(taken) = take_undelivered(db, entry, settings.size_bytes, key)? else {
        return Ok(None);
    };
    let Taken {
        first_seq,
        last_seq,
        raw_bytes,
        ..
    } = taken;
    let inputs = taken.inputs();
    let oldest_ms = inputs.first().map_or(0, |i| i.arrival_ms);
    let (records, failures) = match &settings.processing {
        None => (
            inputs
                .iter()
                .map(|i| (i.arrival_ms, i.data.to_vec()))
                .collect::<Vec<_>>(),
            Vec::new(),
        ),
        Some(pipeline) => pipeline.run(&inputs),
    };
    let version = entry.meta().version;
    let (uuid, random) = object_identity(entry.id, first_seq);
    let context = KeyContext {
        oldest_arrival_ms: oldest_ms,
        zone: settings.zone,
        random: &random,
        error_output_type: None,
        partition: entry.partition_keys(),
    };
    let name = object_name(&entry.name, version, &context, &uuid);
    let mut errors: Vec<(String, Vec<u8>)> = Vec::new();
    if !failures.is_empty() {
        errors.push(error_object(
            settings,
            &context,
            &name,
            "processing-failed",
            &failures,
            now_ms,
        ));
    }
    let key = format!(
        "{}{name}{}",
        settings.prefix.evaluate(&context),
        settings.extension
    );
    if entry.partition == Some(Partition::Failed) {
        let unpartitioned: Vec<Failure> = inputs
            .iter()
            .map(|input| Failure {
                arrival_ms: input.arrival_ms,
                raw: input.data.to_vec(),
                code: "DynamicPartitioning.MetadataExtractionFailed".into(),
                message: "the MetadataExtractionQuery gave no partition keys for the record".into(),
                attempts: 1,
                lambda_arn: None,
            })
            .collect();
        errors.push(error_object(
            settings,
            &context,
            &name,
            "partitioning-failed",
            &unpartitioned,
            now_ms,
        ));
        return Ok(Some(Object {
            key,
            body: None,
            backup: None,
            errors,
            http: None,
            search: None,
            redshift: None,
            last_seq,
            records: inputs.len() as u64,
            raw_bytes,
            oldest_ms,
        }));
    }
    if let Some(receiver) = Receiver::of(settings) {
        let failed_context = KeyContext {
            error_output_type: Some(receiver.failed_type()),
            ..context
        };
        let failed_prefix = match &settings.error_prefix {
            Some(prefix) => prefix.evaluate(&failed_context),
            None => format!(
                "{}/{}",
                receiver.failed_type(),
                Prefix::hourly().evaluate(&failed_context)
            ),
        };
        let raw: Vec<(u64, Vec<u8>)> = inputs
            .iter()
            .map(|i| (i.arrival_ms, i.data.to_vec()))
            .collect();
        let backup = if receiver.backup_all() {
            let all: Vec<u8> = raw
                .iter()
                .flat_map(|(_, data)| data.iter().copied())
                .collect();
            Some((key.clone(), settings.compression.apply(all, &name)?))
        } else {
            None
        };
        return Ok(Some(Object {
            key,
            body: None,
            backup: None,
            errors,
            search: None,
            redshift: None,
            http: Some(HttpBatch {
                request_id: match receiver {
                    // HEC's channel: one per delivery stream.
                    Receiver::Splunk(_) => object_identity(entry.id, 0).0,
                    Receiver::Http(_) => uuid.clone(),
                },
                records: records.into_iter().map(|(_, r)| r).collect(),
                raw,
                failed_key: format!("{failed_prefix}{name}"),
                backup,
            }),
            last_seq,
            records: inputs.len() as u64,
            raw_bytes,
            oldest_ms,
        }));
    }
    if let Some(search) = &settings.search {
        let failed_context = KeyContext {
            error_output_type: Some(search.failed_type),
            ..context
        };
        let failed_prefix = match &settings.error_prefix {
            Some(prefix) => prefix.evaluate(&failed_context),
            None => format!(
                "{}/{}",
                search.failed_type,
                Prefix::hourly().evaluate(&failed_context)
            ),
        };
        let documents = records
            .into_iter()
            .enumerate()
            .map(|(i, (arrival_ms, body))| {
                (
                    arrival_ms,
                    Document {
                        // The same for the same record when the object
                        // is built again, so a retry replaces, not adds.
                        id: search.document_ids.then(|| format!("{uuid}-{i}")),
                        index: search.index_for(arrival_ms),
                        body,
                    },
                )
            })
            .collect();
        let backup = if search.backup_all {
            let all: Vec<u8> = inputs.iter().flat_map(|i| i.data.iter().copied()).collect();
            Some((key.clone(), settings.compression.apply(all, &name)?))
        } else {
            None
        };
        return Ok(Some(Object {
            key,
            body: None,
            backup: None,
            errors,
            http: None,
            redshift: None,
            search: Some(SearchBatch {
                documents,
                failed_key: format!("{failed_prefix}{name}"),
                backup,
            }),
            last_seq,
            records: inputs.len() as u64,
            raw_bytes,
            oldest_ms,
        }));
    }
    let backup = match &settings.backup {
        None => None,
        Some(backup) => {
            let raw: Vec<u8> = inputs.iter().flat_map(|i| i.data.iter().copied()).collect();
            let key = format!(
                "{}{name}{}",
                backup.prefix.evaluate(&context),
                backup.extension
            );
            Some((
                backup.bucket.clone(),
                key,
                backup.compression.apply(raw, &name)?,
            ))
        }
    };
    let mut copy = None;
    let body = match &settings.conversion {
        Some(conversion) if !records.is_empty() => {
            let refs: Vec<&[u8]> = records.iter().map(|(_, r)| r.as_slice()).collect();
            let (parquet, unfit) = conversion.to_parquet(&refs)?;
            if !unfit.is_empty() {
                let lines: Vec<u8> = unfit
                    .iter()
                    .flat_map(|(i, why)| {
                        conversion.failure_line(records[*i].0, &records[*i].1, why, now_ms)
                    })
                    .collect();
                let key = error_key(settings, &context, &name, "format-conversion-failed");
                errors.push((key, lines));
            }
            Some(parquet)
        }
        _ => {
            copy = settings
                .redshift
                .is_some()
                .then(|| records.iter().map(|(_, r)| r.clone()).collect());
            let body: Vec<u8> = records.into_iter().flat_map(|(_, r)| r).collect();
            (!body.is_empty())
                .then(|| settings.compression.apply(body, &name))
                .transpose()?
        }
    };
    Ok(Some(Object {
        key,
        body,
        backup,
        errors,
        http: None,
        search: None,
        redshift: copy,
        last_seq,
        records: inputs.len() as u64,
        raw_bytes,
        oldest_ms,
    }))
}

/// The error object of `failures` of one kind: its key under the error
/// prefix (or `<kind>/` and the hour) and its JSON lines.
pub(crate) fn error_object(
    settings: &DestinationSettings,
    context: &KeyContext<'_>,
    name: &str,
    kind: &'static str,
    failures: &[Failure],
    now_ms: u64,
) -> (String, Vec<u8>) {
    let lines: Vec<u8> = failures.iter().flat_map(|f| f.to_line(now_ms)).collect();
    (error_key(settings, context, name, kind), lines)
}

/// An error object's key: the error prefix evaluated for `kind` (or
/// `<kind>/` and the hour), then the object's name.
fn error_key(
    settings: &DestinationSettings,
    context: &KeyContext<'_>,
    name: &str,
    kind: &'static str,
) -> String {
    let context = KeyContext {
        error_output_type: Some(kind),
        ..*context
    };
    let prefix = match &settings.error_prefix {
        Some(prefix) => prefix.evaluate(&context),
        None => format!("{kind}/{}", Prefix::hourly().evaluate(&context)),
    };
    format!("{prefix}{name}")
}

/// `build_object` for the common case, records written as they came: one
/// pass over the buffer, each record's bytes going straight from the store
/// into the compressor.
fn build_plain_object(
    db: &DB,
    entry: &Entry,
    settings: &DestinationSettings,
    key: Option<&[u8; 32]>,
) -> Result<Option<Object>> {
    let first = entry.delivered.load(Ordering::Acquire) + 1;
    let capacity = usize::try_from(settings.size_bytes)
        .unwrap_or(usize::MAX)
        .min(128 << 20);
    let mut compressor = settings.compression.compressor(capacity);
    let mut first_record = None;
    let mut last_seq = 0;
    let mut raw_bytes = 0u64;
    let mut records = 0u64;
    scan(db, entry.id, first, Opening::Open(key), |record| {
        first_record.get_or_insert((record.seq, record.arrival_ms));
        compressor.write(&record.data)?;
        last_seq = record.seq;
        raw_bytes += record.data.len() as u64;
        records += 1;
        Ok(raw_bytes < settings.size_bytes)
    })?;
    let Some((first_seq, oldest_ms)) = first_record else {
        return Ok(None);
    };
    let (uuid, random) = object_identity(entry.id, first_seq);
    let context = KeyContext {
        oldest_arrival_ms: oldest_ms,
        zone: settings.zone,
        random: &random,
        error_output_type: None,
        partition: entry.partition_keys(),
    };
    let name = object_name(&entry.name, entry.meta().version, &context, &uuid);
    let key = format!(
        "{}{name}{}",
        settings.prefix.evaluate(&context),
        settings.extension
    );
    let body = (raw_bytes > 0)
        .then(|| compressor.finish(&name))
        .transpose()?;
    Ok(Some(Object {
        key,
        body,
        backup: None,
        errors: Vec::new(),
        http: None,
        search: None,
        redshift: None,
        last_seq,
        records,
        raw_bytes,
        oldest_ms,
    }))
}

/// A UUID and an 11-character random string for the object starting at
/// `first_seq`, the same each time that object is built.
pub(crate) fn object_identity(stream: u64, first_seq: u64) -> (String, String) {
    let digest = Md5::new()
        .chain_update(stream.to_be_bytes())
        .chain_update(first_seq.to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let random = digest
        .iter()
        .take(11)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    (uuid, random)
}

/// Records through `last_seq` are delivered: remember that and drop every
/// block they finished, in one synced write.
pub(crate) fn commit(db: &DB, entry: &Entry, last_seq: u64, raw_bytes: u64) -> Result<()> {
    let records = state::cf(db, CF_RECORDS)?;
    let meta = state::cf(db, state::CF_META)?;
    let bound = delivered_bound(db, entry.id, last_seq)?;
    let mut batch = WriteBatch::default();
    batch.put_cf(meta, state::delivered_key(entry.id), last_seq.to_be_bytes());
    batch.delete_range_cf(records, record_key(entry.id, 0), bound);
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.write_opt(batch, &options)?;
    entry.delivered.store(last_seq, Ordering::Release);
    let mut failed = None;
    entry.delivered(raw_bytes, || match oldest_after(db, entry.id, last_seq) {
        Ok(oldest) => oldest,
        Err(error) => {
            failed = Some(error);
            None
        }
    });
    failed.map_or(Ok(()), Err)
}

/// The arrival of the first record after `seq`, if any.
pub fn oldest_after(db: &DB, stream: u64, seq: u64) -> Result<Option<u64>> {
    let mut oldest = None;
    scan(db, stream, seq + 1, Opening::Raw, |record| {
        oldest = Some(record.arrival_ms);
        Ok(false)
    })?;
    Ok(oldest)
}
