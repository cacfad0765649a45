//! Runnel's Firehose: delivery streams that take records (`PutRecord`,
//! `PutRecordBatch`), keep them durably in the data dir until delivered,
//! and write them as objects to their destination when the buffering
//! hints say so. This crate knows nothing of HTTP: the wire protocol lives
//! in the server.
//!
//! Sources: `DirectPut` and `KinesisStreamAsSource`. Destinations: S3 (a
//! directory per bucket under the bucket root, or an S3-compatible
//! endpoint), HTTP endpoints, OpenSearch/Elasticsearch, Splunk, and
//! Redshift on PostgreSQL; processing, dynamic partitioning and Parquet
//! conversion on the way.

mod bucket;
mod buffer;
pub mod compress;
mod convert;
mod delivery;
mod error;
mod http;
pub mod model;
mod partition;
mod partitions;
pub mod prefix;
mod processing;
mod redshift;
mod route;
mod search;
mod source;
mod splunk;
mod state;
mod stream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use rocksdb::DB;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

pub use bucket::S3Endpoint;
pub use buffer::Accepted;
pub use error::{FirehoseError, Result};
pub use model::{
    DESTINATION_ID, DeliveryStreamMeta, DestinationKind, DestinationSettings, Encryption, Lookups,
    Status,
};
pub use stream::not_found_message;

use bucket::Buckets;
use buffer::Put;
use delivery::{Delivery, Router};
use partitions::Partitions;
use stream::Entry;

/// A queued put: the indexes of its records in the caller's list, and the
/// writer's answer.
type Pending = (
    Arc<Entry>,
    Vec<usize>,
    oneshot::Receiver<Result<Vec<Accepted>>>,
);

/// The answers of a put's parts, back in the caller's order.
fn merge(answers: Vec<(Vec<usize>, Vec<Accepted>)>) -> Vec<Accepted> {
    let total = answers.iter().map(|(indexes, _)| indexes.len()).sum();
    let mut merged = vec![Accepted::BufferFull; total];
    for (indexes, outcomes) in answers {
        for (i, outcome) in indexes.into_iter().zip(outcomes) {
            merged[i] = outcome;
        }
    }
    merged
}

/// `CREATING` becomes `ACTIVE` once the stream's tasks are started (this
/// runs after them on the same runtime), written as every change is.
async fn activate(db: Arc<DB>, control: Arc<Mutex<()>>, entry: Arc<Entry>) {
    let _guard = control.lock().unwrap_or_else(|e| e.into_inner());
    let mut meta = entry.meta();
    if meta.status != Status::Creating || entry.is_deleted() {
        return;
    }
    meta.status = Status::Active;
    match state::save(&db, &meta) {
        Ok(()) => *entry.meta.write().unwrap_or_else(|e| e.into_inner()) = meta,
        Err(error) => tracing::error!(stream = %entry.name, %error, "activating failed"),
    }
}

fn arn(config: &FirehoseConfig, name: &str) -> String {
    format!(
        "arn:aws:firehose:{}:{}:deliverystream/{name}",
        config.region, config.account
    )
}

/// The column families this service owns; pass them to `Store::open`.
pub const COLUMN_FAMILIES: &[&str] = &[state::CF_META, buffer::CF_RECORDS];

pub const MAX_TAGS: usize = 50;
/// AWS's default quota of delivery streams per account and region.
pub const MAX_DELIVERY_STREAMS: usize = 5000;

pub use runnel_streams::{Clock, system_clock};

#[derive(Clone)]
pub struct FirehoseConfig {
    pub region: String,
    pub account: String,
    /// Each bucket is the directory of its name under this one.
    pub bucket_root: PathBuf,
    /// Buckets are written here instead of under `bucket_root` when set.
    pub s3_endpoint: Option<S3Endpoint>,
    /// This server's streams, read by `KinesisStreamAsSource` delivery
    /// streams.
    pub streams: Option<Arc<runnel_streams::Streams>>,
    /// Lambda ARNs of transforms and the URLs that answer for them; Glue
    /// tables and their columns, for Parquet conversion.
    pub lookups: model::Lookups,
    /// The key records are sealed with in the buffers of delivery streams
    /// with server-side encryption on (the server's `streams.encryption_key`).
    pub encryption_key: Option<[u8; 32]>,
    /// Past this many buffered bytes a stream refuses records (a
    /// destination that keeps failing must not fill the disk).
    pub max_buffer_bytes: u64,
    pub clock: Clock,
}

impl FirehoseConfig {
    pub fn new(bucket_root: PathBuf) -> FirehoseConfig {
        FirehoseConfig {
            region: "us-east-1".into(),
            account: "000000000000".into(),
            bucket_root,
            s3_endpoint: None,
            streams: None,
            encryption_key: None,
            lookups: Default::default(),
            max_buffer_bytes: 1 << 30,
            clock: system_clock(),
        }
    }
}

/// What a caller asks of CreateDeliveryStream.
pub struct CreateSpec {
    pub name: String,
    pub stream_type: String,
    /// Server-side encryption from the start.
    pub encryption: Option<model::Encryption>,
    /// An `ExtendedS3DestinationConfiguration` or an
    /// `HttpEndpointDestinationConfiguration`, as `destination_kind` says.
    pub destination: Value,
    pub destination_kind: DestinationKind,
    /// A `KinesisStreamSourceConfiguration`, for `KinesisStreamAsSource`.
    pub source: Option<Value>,
    pub tags: BTreeMap<String, String>,
}

/// A stream's delivery figures at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct FiguresSnapshot {
    pub incoming_records: u64,
    pub incoming_bytes: u64,
    pub delivered_records: u64,
    pub delivered_bytes: u64,
    pub delivered_objects: u64,
    pub delivery_failures: u64,
    pub buffered_bytes: u64,
    pub freshness_ms: u64,
}

pub use partitions::MAX_ACTIVE_PARTITIONS;

/// Enough queued puts to keep a group commit full while the last one syncs.
const QUEUE_DEPTH: usize = 16 * 1024;

/// The Firehose service. Its delivery tasks run on the tokio runtime it is
/// opened in; dropping it stops them and its writer.
pub struct Firehose {
    db: Arc<DB>,
    config: FirehoseConfig,
    streams: Arc<RwLock<BTreeMap<String, Arc<Entry>>>>,
    puts: Option<SyncSender<Put>>,
    writer: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    buckets: Arc<Buckets>,
    runtime: tokio::runtime::Handle,
    /// Dynamic partitions' buffers.
    partitions: Arc<Partitions>,
    /// Serialises taking ids: streams and partitions are made under
    /// different locks.
    ids: Arc<Mutex<()>>,
    /// Serialises control-plane changes.
    control: Arc<Mutex<()>>,
}

impl Firehose {
    /// Opens the service over `db` and resumes delivering what every
    /// stream still has buffered. Must be called within a tokio runtime.
    pub fn open(db: Arc<DB>, config: FirehoseConfig) -> Result<Firehose> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| FirehoseError::Internal("Firehose::open needs a tokio runtime".into()))?;
        let (puts, receiver) = mpsc::sync_channel(QUEUE_DEPTH);
        let writer = {
            let db = db.clone();
            let clock = config.clock.clone();
            let max = config.max_buffer_bytes;
            let key = config.encryption_key;
            std::thread::Builder::new()
                .name("firehose-writer".into())
                .spawn(move || buffer::run_writer(db, clock, max, key, receiver))
                .map_err(|e| FirehoseError::Internal(format!("starting the writer: {e}")))?
        };
        let (stop, _) = watch::channel(false);
        let buckets = Arc::new(Buckets::new(
            config.bucket_root.clone(),
            config.s3_endpoint.clone(),
        ));
        let ids = Arc::new(Mutex::new(()));
        let partitions = Arc::new(Partitions::new(
            db.clone(),
            config.account.clone(),
            ids.clone(),
            runtime.clone(),
            Delivery {
                arn_prefix: arn(&config, ""),
                db: db.clone(),
                key: config.encryption_key,
                buckets: buckets.clone(),
                clock: config.clock.clone(),
                stop: stop.subscribe(),
                router: None,
            },
        ));
        let firehose = Firehose {
            buckets,
            db,
            config,
            streams: Arc::new(RwLock::new(BTreeMap::new())),
            puts: Some(puts),
            writer: Some(writer),
            stop,
            runtime,
            partitions,
            ids,
            control: Arc::new(Mutex::new(())),
        };
        for meta in state::load_all(&firehose.db)? {
            if meta.status == Status::Deleting {
                // Deleted before a crash finished removing it.
                state::remove(&firehose.db, &meta.name, meta.id)?;
                continue;
            }
            let settings = DestinationSettings::of(
                meta.destination_kind,
                &meta.destination,
                &firehose.config.lookups,
            )?;
            let (delivered, next_seq, buffer) = state::recover_buffer(&firehose.db, meta.id)?;
            if buffer.bytes > 0 {
                tracing::info!(stream = %meta.name, bytes = buffer.bytes, "resuming delivery of buffered records");
            }
            let entry = Entry::new(
                meta,
                settings,
                &firehose.config.account,
                delivered,
                next_seq,
                buffer,
            );
            let entry = firehose.start(entry);
            firehose.partitions.recover(&entry)?;
        }
        Ok(firehose)
    }

    pub fn bucket_root(&self) -> &std::path::Path {
        self.buckets.root()
    }

    pub fn arn(&self, name: &str) -> String {
        arn(&self.config, name)
    }

    pub fn account(&self) -> &str {
        &self.config.account
    }

    /// A delivery task's half of the service; it routes records to
    /// dynamic partitions when its stream needs that.
    fn delivery(&self) -> Delivery {
        Delivery {
            arn_prefix: self.arn(""),
            db: self.db.clone(),
            key: self.config.encryption_key,
            buckets: self.buckets.clone(),
            clock: self.config.clock.clone(),
            stop: self.stop.subscribe(),
            router: self.puts.clone().map(|puts| Router {
                partitions: self.partitions.clone(),
                puts,
            }),
        }
    }

    fn start(&self, entry: Entry) -> Arc<Entry> {
        let entry = Arc::new(entry);
        self.write_streams()
            .insert(entry.name.clone(), entry.clone());
        let delivery = self.delivery();
        if let (Some(source), Some(streams), Some(puts)) =
            (entry.meta().source, &self.config.streams, &self.puts)
        {
            match source::stream_name(&source) {
                Ok(stream) => {
                    let reader = source::StreamSource {
                        streams: streams.clone(),
                        db: self.db.clone(),
                        stream,
                        puts: puts.clone(),
                        stop: self.stop.subscribe(),
                    };
                    self.runtime.spawn(reader.run(entry.clone()));
                }
                Err(error) => {
                    tracing::error!(delivery_stream = %entry.name, %error, "source not started")
                }
            }
        }
        self.runtime.spawn(delivery.run(entry.clone()));
        if entry.meta().status == Status::Creating {
            self.runtime.spawn(activate(
                self.db.clone(),
                self.control.clone(),
                entry.clone(),
            ));
        }
        entry
    }

    fn read_streams(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.streams.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_streams(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.streams.write().unwrap_or_else(|e| e.into_inner())
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>> {
        self.read_streams()
            .get(name)
            .cloned()
            .ok_or_else(|| FirehoseError::NotFound(not_found_message(name, &self.config.account)))
    }

    fn next_id(&self) -> Result<u64> {
        let _guard = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        state::next_id(&self.db)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a delivery stream: `CREATING` when this returns, `ACTIVE`
    /// once its tasks run. Records put meanwhile are buffered (AWS refuses
    /// them) and delivered once it is active.
    pub fn create(&self, spec: CreateSpec) -> Result<String> {
        let _guard = self.lock();
        match (spec.stream_type.as_str(), &spec.source) {
            ("DirectPut", None) => {}
            ("KinesisStreamAsSource", Some(source)) => {
                let stream = source::stream_name(source)?;
                let streams = self.config.streams.as_ref().ok_or_else(|| {
                    FirehoseError::InvalidArgument(
                        "This server has no streams to read from.".into(),
                    )
                })?;
                streams.describe(&stream).map_err(|_| {
                    FirehoseError::InvalidArgument(format!(
                        "Stream {stream} under account {} not found.",
                        self.config.account
                    ))
                })?;
            }
            ("KinesisStreamAsSource", None) => {
                return Err(FirehoseError::InvalidArgument(
                    "KinesisStreamSourceConfiguration is required for a KinesisStreamAsSource delivery stream.".into(),
                ));
            }
            ("DirectPut", Some(_)) => {
                return Err(FirehoseError::InvalidArgument(
                    "KinesisStreamSourceConfiguration is only for KinesisStreamAsSource delivery streams.".into(),
                ));
            }
            (other, _) => {
                return Err(FirehoseError::InvalidArgument(format!(
                    "DeliveryStreamType {other} is not supported by this Runnel version; use DirectPut or KinesisStreamAsSource."
                )));
            }
        }
        if self.read_streams().contains_key(&spec.name) {
            return Err(FirehoseError::InUse(format!(
                "Firehose {} under accountId {} already exists",
                spec.name, self.config.account
            )));
        }
        if self.read_streams().len() >= MAX_DELIVERY_STREAMS {
            return Err(FirehoseError::LimitExceeded(format!(
                "You have already consumed your firehose quota of {MAX_DELIVERY_STREAMS} hoses. Firehose names: {}",
                spec.name
            )));
        }
        if spec.encryption.is_some() && self.config.encryption_key.is_none() {
            return Err(FirehoseError::InvalidArgument(
                "Server-side encryption needs an encryption key in Runnel's configuration (streams.encryption_key).".into(),
            ));
        }
        if spec.tags.len() > MAX_TAGS {
            return Err(FirehoseError::InvalidArgument(format!(
                "A delivery stream can have at most {MAX_TAGS} tags."
            )));
        }
        let settings = DestinationSettings::of(
            spec.destination_kind,
            &spec.destination,
            &self.config.lookups,
        )?;
        let now = (self.config.clock)();
        let meta = DeliveryStreamMeta {
            id: self.next_id()?,
            name: spec.name,
            stream_type: spec.stream_type,
            status: Status::Creating,
            version: 1,
            created_ms: now,
            updated_ms: now,
            destination: spec.destination,
            destination_kind: spec.destination_kind,
            source: spec.source,
            encryption: spec.encryption,
            tags: spec.tags,
        };
        state::save(&self.db, &meta)?;
        let arn = self.arn(&meta.name);
        let entry = Entry::new(
            meta,
            settings,
            &self.config.account,
            0,
            1,
            Default::default(),
        );
        self.start(entry);
        Ok(arn)
    }

    /// The stream's id: never reused, so it makes record ids unique.
    pub fn stream_id(&self, name: &str) -> Result<u64> {
        Ok(self.entry(name)?.id)
    }

    pub fn describe(&self, name: &str) -> Result<DeliveryStreamMeta> {
        Ok(self.entry(name)?.meta())
    }

    /// Names in order, after `after`, of streams of `stream_type` if given;
    /// and whether more follow.
    pub fn list(
        &self,
        stream_type: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<String>, bool) {
        let streams = self.read_streams();
        let mut names = streams
            .iter()
            .filter(|(name, _)| after.is_none_or(|after| name.as_str() > after))
            .filter(|(_, entry)| {
                stream_type.is_none_or(|wanted| {
                    entry
                        .meta
                        .read()
                        .map(|m| m.stream_type == wanted)
                        .unwrap_or(false)
                })
            })
            .map(|(name, _)| name.clone());
        let page: Vec<String> = names.by_ref().take(limit).collect();
        let more = names.next().is_some();
        (page, more)
    }

    /// Deletes a stream and whatever it still had buffered, as AWS does:
    /// it is `DELETING` (taking no records) until its buffers are gone
    /// from the data dir, then no longer there. A crash meanwhile finishes
    /// the deletion at the next open.
    pub fn delete(&self, name: &str) -> Result<()> {
        let _guard = self.lock();
        let entry = self.entry(name)?;
        let mut meta = entry.meta();
        if meta.status == Status::Deleting {
            return Ok(());
        }
        meta.status = Status::Deleting;
        state::save(&self.db, &meta)?;
        *entry.meta.write().unwrap_or_else(|e| e.into_inner()) = meta;
        entry.mark_deleted();
        self.partitions.remove(entry.id);
        let db = self.db.clone();
        let streams = self.streams.clone();
        let name = name.to_string();
        self.runtime.spawn_blocking(move || {
            if let Err(error) = state::remove(&db, &name, entry.id) {
                tracing::error!(stream = %name, %error, "removing a deleted delivery stream failed; the next start finishes it");
                return;
            }
            let mut streams = streams.write().unwrap_or_else(|e| e.into_inner());
            if streams.get(&name).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
                streams.remove(&name);
            }
        });
        Ok(())
    }

    /// The stream, for a change of its configuration: refused while it is
    /// being deleted.
    fn changeable(&self, name: &str) -> Result<Arc<Entry>> {
        let entry = self.entry(name)?;
        if entry.is_deleted() {
            return Err(FirehoseError::InUse(format!(
                "Firehose {name} under account {} is DELETING.",
                self.config.account
            )));
        }
        Ok(entry)
    }

    /// UpdateDestination: the fields of `update` replace the
    /// destination's, guarded by the version the caller last saw.
    pub fn update_destination(
        &self,
        name: &str,
        current_version: &str,
        destination_id: &str,
        update: &Value,
    ) -> Result<u64> {
        let _guard = self.lock();
        let entry = self.changeable(name)?;
        let mut meta = entry.meta();
        if current_version != meta.version.to_string() {
            return Err(FirehoseError::ConcurrentModification(format!(
                "Cannot update firehose: {name} since the current version id: {} and specified version id: {current_version} do not match",
                meta.version
            )));
        }
        if destination_id != DESTINATION_ID {
            return Err(FirehoseError::InvalidArgument(format!(
                "Destination Id {destination_id} not found"
            )));
        }
        let merged = model::merge_update(&meta.destination, update);
        let settings =
            DestinationSettings::of(meta.destination_kind, &merged, &self.config.lookups)?;
        meta.destination = merged;
        meta.version += 1;
        meta.updated_ms = (self.config.clock)();
        state::save(&self.db, &meta)?;
        let version = meta.version;
        let settings = Arc::new(settings);
        let children = self.partitions.of(entry.id);
        for target in children.iter().chain(std::iter::once(&entry)) {
            let mut own = meta.clone();
            own.id = target.id;
            *target.meta.write().unwrap_or_else(|e| e.into_inner()) = own;
            *target.settings.write().unwrap_or_else(|e| e.into_inner()) = settings.clone();
            target.wake.notify_one();
        }
        Ok(version)
    }

    /// `put` from a thread outside any async runtime (a job's worker);
    /// it blocks until the records are durable.
    pub fn put_blocking(&self, name: &str, records: Vec<Vec<u8>>) -> Result<Vec<Accepted>> {
        let pending = self.submit(name, records)?;
        let mut answers = Vec::with_capacity(pending.len());
        for (target, indexes, answer) in pending {
            let outcomes = answer.blocking_recv();
            target.put_done();
            let outcomes = outcomes
                .map_err(|_| FirehoseError::Internal("the writer dropped a put".into()))??;
            answers.push((indexes, outcomes));
        }
        Ok(merge(answers))
    }

    /// Buffers `records` durably; each is answered with its sequence, or
    /// refused because the stream's buffer is full.
    pub async fn put(&self, name: &str, records: Vec<Vec<u8>>) -> Result<Vec<Accepted>> {
        let pending = self.submit(name, records)?;
        let mut answers = Vec::with_capacity(pending.len());
        for (target, indexes, answer) in pending {
            let outcomes = answer.await;
            target.put_done();
            let outcomes = outcomes
                .map_err(|_| FirehoseError::Internal("the writer dropped a put".into()))??;
            answers.push((indexes, outcomes));
        }
        Ok(merge(answers))
    }

    /// Queues `records` for the writer: all to the stream's buffer, or,
    /// with dynamic partitioning, each to its partition's. Each queued put
    /// comes with the indexes of its records in `records`.
    fn submit(&self, name: &str, records: Vec<Vec<u8>>) -> Result<Vec<Pending>> {
        let entry = self.entry(name)?;
        if entry.reads_stream {
            return Err(FirehoseError::InvalidArgument(format!(
                "This operation is not permitted on KinesisStreamAsSource delivery stream type. Firehose {name} reads its records from a Kinesis stream."
            )));
        }
        let count = records.len() as u64;
        let bytes: u64 = records.iter().map(|r| r.len() as u64).sum();
        entry.counted(count, bytes);
        let settings = entry.settings();
        let groups = match &settings.partitioning {
            Some(partitioning) if !entry.routes(&settings) => {
                self.partitions
                    .group(&entry, records, |record| partitioning.keys(record, None))?
            }
            _ => {
                entry.put_started();
                vec![(entry.clone(), (0..records.len()).collect(), records)]
            }
        };
        let puts = self
            .puts
            .as_ref()
            .ok_or_else(|| FirehoseError::Internal("the writer has stopped".into()))?;
        let mut pending = Vec::with_capacity(groups.len());
        for (target, indexes, records) in groups {
            let (reply, answer) = oneshot::channel();
            let sent = puts.send(Put::new(target.clone(), records, reply, None));
            if sent.is_err() {
                target.put_done();
                return Err(FirehoseError::Internal("the writer has stopped".into()));
            }
            pending.push((target, indexes, answer));
        }
        Ok(pending)
    }

    fn change_meta(
        &self,
        name: &str,
        change: impl FnOnce(&mut DeliveryStreamMeta) -> Result<()>,
    ) -> Result<()> {
        let _guard = self.lock();
        let entry = self.changeable(name)?;
        let mut meta = entry.meta();
        change(&mut meta)?;
        state::save(&self.db, &meta)?;
        *entry.meta.write().unwrap_or_else(|e| e.into_inner()) = meta;
        Ok(())
    }

    /// Start/StopDeliveryStreamEncryption: records buffered from now on
    /// are sealed (or not); those already buffered stay as they are, each
    /// marked, so delivery opens exactly the sealed ones.
    pub fn set_encryption(&self, name: &str, encryption: Option<model::Encryption>) -> Result<()> {
        if encryption.is_some() && self.config.encryption_key.is_none() {
            return Err(FirehoseError::InvalidArgument(
                "Server-side encryption needs an encryption key in Runnel's configuration (streams.encryption_key).".into(),
            ));
        }
        let on = encryption.is_some();
        self.change_meta(name, |meta| {
            meta.encryption = encryption;
            Ok(())
        })?;
        self.entry(name)?.set_encrypted(on);
        Ok(())
    }

    /// Whether a put to `name` now is sealed at rest.
    pub fn is_encrypted(&self, name: &str) -> bool {
        self.entry(name).is_ok_and(|entry| entry.is_encrypted())
    }

    pub fn tag(&self, name: &str, tags: Vec<(String, String)>) -> Result<()> {
        self.change_meta(name, |meta| {
            let mut merged = meta.tags.clone();
            merged.extend(tags);
            if merged.len() > MAX_TAGS {
                return Err(FirehoseError::LimitExceeded(format!(
                    "A delivery stream can have at most {MAX_TAGS} tags."
                )));
            }
            meta.tags = merged;
            Ok(())
        })
    }

    pub fn untag(&self, name: &str, keys: &[String]) -> Result<()> {
        self.change_meta(name, |meta| {
            for key in keys {
                meta.tags.remove(key);
            }
            Ok(())
        })
    }

    /// Every stream's figures, for `/metrics`; a partitioned stream's
    /// include its partitions'.
    pub fn figures(&self) -> Vec<(String, FiguresSnapshot)> {
        self.read_streams()
            .iter()
            .map(|(name, entry)| {
                let mut total = snapshot(entry);
                for child in self.partitions.of(entry.id) {
                    let part = snapshot(&child);
                    total.delivered_records += part.delivered_records;
                    total.delivered_bytes += part.delivered_bytes;
                    total.delivered_objects += part.delivered_objects;
                    total.delivery_failures += part.delivery_failures;
                    total.buffered_bytes += part.buffered_bytes;
                    total.freshness_ms = total.freshness_ms.max(part.freshness_ms);
                }
                (name.clone(), total)
            })
            .collect()
    }
}

fn snapshot(entry: &Entry) -> FiguresSnapshot {
    let f = &entry.figures;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    FiguresSnapshot {
        incoming_records: load(&f.incoming_records),
        incoming_bytes: load(&f.incoming_bytes),
        delivered_records: load(&f.delivered_records),
        delivered_bytes: load(&f.delivered_bytes),
        delivered_objects: load(&f.delivered_objects),
        delivery_failures: load(&f.delivery_failures),
        buffered_bytes: entry.buffered_bytes(),
        freshness_ms: load(&f.last_freshness_ms),
    }
}

impl Drop for Firehose {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        drop(self.puts.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}
