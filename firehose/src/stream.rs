//! One delivery stream in memory: its metadata, its parsed destination,
//! and what its buffer holds (bytes, and the arrival of its oldest record,
//! which starts the `IntervalInSeconds` clock).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::model::{DeliveryStreamMeta, DestinationSettings};

#[derive(Debug, Default, Clone, Copy)]
pub struct BufferState {
    pub bytes: u64,
    pub oldest_ms: Option<u64>,
}

/// Counters for `/metrics` and DescribeDeliveryStream.
#[derive(Debug, Default)]
pub struct Figures {
    pub incoming_records: AtomicU64,
    pub incoming_bytes: AtomicU64,
    pub delivered_records: AtomicU64,
    pub delivered_bytes: AtomicU64,
    pub delivered_objects: AtomicU64,
    pub delivery_failures: AtomicU64,
    /// Age of the oldest record in the last object at its delivery.
    pub last_freshness_ms: AtomicU64,
}

/// What a dynamic partition's buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partition {
    /// Records whose query gave these keys.
    Keys(crate::partition::Keys),
    /// Records the query could not partition: delivered under the error
    /// prefix as `partitioning-failed`.
    Failed,
}

pub struct Entry {
    pub id: u64,
    /// Set for a dynamic partition's buffer (an entry of its own, under its
    /// stream's name), None for a delivery stream.
    pub partition: Option<Partition>,
    /// A `KinesisStreamAsSource` stream: it takes no puts.
    pub reads_stream: bool,
    pub name: String,
    account: String,
    pub meta: RwLock<DeliveryStreamMeta>,
    pub settings: RwLock<Arc<DestinationSettings>>,
    /// The next sequence a buffered record takes; only the writer thread
    /// advances it.
    pub next_seq: AtomicU64,
    /// The last sequence delivered (0: none yet).
    pub delivered: AtomicU64,
    buffer: Mutex<BufferState>,
    deleted: AtomicBool,
    /// Puts sent to the writer and not yet answered.
    puts_in_flight: AtomicU64,
    /// Records are sealed in the buffer (StartDeliveryStreamEncryption).
    encrypted: AtomicBool,
    /// Woken when records are buffered, settings change or the stream is
    /// deleted.
    pub wake: tokio::sync::Notify,
    pub figures: Figures,
}

impl Entry {
    pub fn new(
        meta: DeliveryStreamMeta,
        settings: DestinationSettings,
        account: &str,
        delivered: u64,
        next_seq: u64,
        buffer: BufferState,
    ) -> Entry {
        let encrypted = meta.encryption.is_some();
        Entry {
            partition: None,
            id: meta.id,
            reads_stream: meta.source.is_some(),
            name: meta.name.clone(),
            account: account.to_string(),
            meta: RwLock::new(meta),
            settings: RwLock::new(Arc::new(settings)),
            next_seq: AtomicU64::new(next_seq),
            delivered: AtomicU64::new(delivered),
            buffer: Mutex::new(buffer),
            deleted: AtomicBool::new(false),
            puts_in_flight: AtomicU64::new(0),
            encrypted: AtomicBool::new(encrypted),
            wake: tokio::sync::Notify::new(),
            figures: Figures::default(),
        }
    }

    /// Counts records taken by a put.
    pub fn counted(&self, records: u64, bytes: u64) {
        self.figures
            .incoming_records
            .fetch_add(records, Ordering::Relaxed);
        self.figures
            .incoming_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn not_found_message(&self) -> String {
        not_found_message(&self.name, &self.account)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn put_started(&self) {
        self.puts_in_flight.fetch_add(1, Ordering::AcqRel);
    }

    pub fn put_done(&self) {
        self.puts_in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Nothing buffered and no put on its way.
    pub fn is_idle(&self) -> bool {
        self.puts_in_flight.load(Ordering::Acquire) == 0 && self.buffer().oldest_ms.is_none()
    }

    /// Whether records reach this stream's partitions through its own
    /// buffer and delivery task rather than at put time: when processing
    /// must come before partitioning, or a Kinesis stream is the source
    /// (its position is committed with the records it read).
    pub fn routes(&self, settings: &DestinationSettings) -> bool {
        self.partition.is_none()
            && settings.partitioning.is_some()
            && (settings.routing.is_some() || self.reads_stream)
    }

    /// A dynamic partition's keys, for its objects' prefix.
    pub fn partition_keys(&self) -> Option<&crate::partition::Keys> {
        match &self.partition {
            Some(Partition::Keys(keys)) => Some(keys),
            _ => None,
        }
    }

    pub fn is_encrypted(&self) -> bool {
        self.encrypted.load(Ordering::Acquire)
    }

    pub fn set_encrypted(&self, on: bool) {
        self.encrypted.store(on, Ordering::Release);
    }

    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn meta(&self) -> DeliveryStreamMeta {
        self.meta.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn settings(&self) -> Arc<DestinationSettings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn buffer(&self) -> BufferState {
        *self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn buffered_bytes(&self) -> u64 {
        self.buffer().bytes
    }

    /// Called by the writer once records are durable.
    pub fn buffered(&self, bytes: u64, arrival_ms: u64) {
        {
            let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
            buffer.bytes += bytes;
            // Records moved to a partition keep their arrival, which may
            // be older than what the partition holds.
            buffer.oldest_ms = Some(buffer.oldest_ms.map_or(arrival_ms, |o| o.min(arrival_ms)));
        }
        self.wake.notify_one();
    }

    /// Called once an object is delivered: `next_oldest` finds the arrival
    /// of the oldest record still buffered, read under the lock so a
    /// concurrent put cannot be missed.
    pub fn delivered(&self, bytes: u64, next_oldest: impl FnOnce() -> Option<u64>) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        buffer.bytes = buffer.bytes.saturating_sub(bytes);
        buffer.oldest_ms = next_oldest();
        if buffer.oldest_ms.is_none() {
            buffer.bytes = 0;
        }
    }
}

pub fn not_found_message(name: &str, account: &str) -> String {
    format!("Firehose {name} under account {account} not found.")
}
