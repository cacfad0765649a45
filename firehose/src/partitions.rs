//! Every delivery stream's dynamic partitions: each partition's buffer is
//! an entry of its own, with its own delivery task, made the first time a
//! record needs it and remembered in the data dir. At most
//! `MAX_ACTIVE_PARTITIONS` buffer at once per stream; idle ones retire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rocksdb::DB;

use crate::delivery::Delivery;
use crate::error::Result;
use crate::partition::Keys;
use crate::state;
use crate::stream::{self, Entry, Partition};

/// Partitions of one stream buffering at once: AWS's default quota of
/// active partitions.
pub const MAX_ACTIVE_PARTITIONS: usize = 500;

/// How a partition is named in the data dir: its keys as JSON, or
/// `failed`.
pub fn label(partition: &Partition) -> String {
    match partition {
        Partition::Keys(keys) => serde_json::to_string(keys).unwrap_or_default(),
        Partition::Failed => "failed".into(),
    }
}

pub fn partition_of(label: &str) -> Option<Partition> {
    if label == "failed" {
        Some(Partition::Failed)
    } else {
        serde_json::from_str(label).ok().map(Partition::Keys)
    }
}

pub struct Partitions {
    db: Arc<DB>,
    account: String,
    /// Shared with the service: ids of streams and partitions come from
    /// one counter.
    ids: Arc<Mutex<()>>,
    runtime: tokio::runtime::Handle,
    /// What each partition's delivery task is made from.
    delivery: Delivery,
    /// By stream id, then partition label.
    families: Mutex<HashMap<u64, HashMap<String, Arc<Entry>>>>,
}

type Families = HashMap<u64, HashMap<String, Arc<Entry>>>;

impl Partitions {
    pub fn new(
        db: Arc<DB>,
        account: String,
        ids: Arc<Mutex<()>>,
        runtime: tokio::runtime::Handle,
        delivery: Delivery,
    ) -> Partitions {
        Partitions {
            db,
            account,
            ids,
            runtime,
            delivery,
            families: Mutex::new(HashMap::new()),
        }
    }

    fn families(&self) -> std::sync::MutexGuard<'_, Families> {
        self.families.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resumes `parent`'s partitions as the data dir has them.
    pub fn recover(&self, parent: &Entry) -> Result<()> {
        for (label, id) in state::load_partitions(&self.db, parent.id)? {
            let Some(partition) = partition_of(&label) else {
                tracing::warn!(stream = %parent.name, %label, "an unreadable partition is skipped");
                continue;
            };
            let buffer = state::recover_buffer(&self.db, id)?;
            let child = self.child_entry(parent, id, partition, buffer);
            self.families()
                .entry(parent.id)
                .or_default()
                .insert(label, child);
        }
        Ok(())
    }

    /// `parent`'s partitions' entries.
    pub fn of(&self, parent: u64) -> Vec<Arc<Entry>> {
        self.families()
            .get(&parent)
            .map(|family| family.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets `parent`'s partitions (the stream is being deleted): each
    /// is marked deleted, so its task ends.
    pub fn remove(&self, parent: u64) {
        if let Some(family) = self.families().remove(&parent) {
            for child in family.values() {
                child.mark_deleted();
            }
        }
    }

    /// `records` grouped by their partition's buffer (made on first use):
    /// each group's entry, the indexes of its records, and its records.
    /// The caller owns one put on each entry.
    #[allow(
        clippy::type_complexity,
        reason = "the groups, as the caller takes them apart"
    )]
    pub fn group<T>(
        &self,
        entry: &Arc<Entry>,
        records: Vec<T>,
        keys_of: impl Fn(&T) -> std::result::Result<Keys, String>,
    ) -> Result<Vec<(Arc<Entry>, Vec<usize>, Vec<T>)>> {
        let mut groups: Vec<(Partition, Vec<usize>, Vec<T>)> = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            let partition = match keys_of(&record) {
                Ok(keys) => Partition::Keys(keys),
                Err(why) => {
                    tracing::debug!(stream = %entry.name, %why, "record not partitioned");
                    Partition::Failed
                }
            };
            match groups.iter_mut().find(|(p, _, _)| *p == partition) {
                Some(group) => {
                    group.1.push(i);
                    group.2.push(record);
                }
                None => groups.push((partition, vec![i], vec![record])),
            }
        }
        let mut taken: Vec<(Arc<Entry>, Vec<usize>, Vec<T>)> = Vec::with_capacity(groups.len());
        for (partition, indexes, records) in groups {
            match self.child(entry, partition) {
                // Two groups can meet in `failed` when partitions run out.
                Ok(child) => match taken.iter_mut().find(|(e, _, _)| Arc::ptr_eq(e, &child)) {
                    Some(group) => {
                        child.put_done();
                        group.1.extend(indexes);
                        group.2.extend(records);
                    }
                    None => taken.push((child, indexes, records)),
                },
                Err(error) => {
                    for (child, _, _) in &taken {
                        child.put_done();
                    }
                    return Err(error);
                }
            }
        }
        Ok(taken)
    }

    /// The buffer of `entry`'s partition, made (and remembered in the data
    /// dir) the first time a record needs it. The caller owns one put on
    /// it (`put_done` when answered), so it cannot retire meanwhile.
    pub fn child(&self, entry: &Arc<Entry>, partition: Partition) -> Result<Arc<Entry>> {
        let mut label = label(&partition);
        let mut partition = partition;
        let mut families = self.families();
        let family = families.entry(entry.id).or_default();
        if let Some(child) = family.get(&label) {
            child.put_started();
            return Ok(child.clone());
        }
        if family.len() >= MAX_ACTIVE_PARTITIONS {
            // Partitions with nothing buffered and no put on its way are
            // idle: let them go.
            let idle: Vec<String> = family
                .iter()
                .filter(|(_, child)| child.is_idle())
                .map(|(label, _)| label.clone())
                .collect();
            for idle_label in idle {
                if let Some(child) = family.remove(&idle_label) {
                    child.mark_deleted();
                    state::forget_partition(&self.db, entry.id, &idle_label, child.id)?;
                }
            }
        }
        if family.len() >= MAX_ACTIVE_PARTITIONS {
            tracing::warn!(stream = %entry.name, "{MAX_ACTIVE_PARTITIONS} partitions are buffering; the record goes to partitioning-failed");
            partition = Partition::Failed;
            label = self::label(&partition);
            if let Some(child) = family.get(&label) {
                child.put_started();
                return Ok(child.clone());
            }
        }
        let id = {
            let _guard = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            state::next_id(&self.db)?
        };
        state::save_partition(&self.db, entry.id, &label, id)?;
        let child = self.child_entry(entry, id, partition, (0, 1, Default::default()));
        child.put_started();
        family.insert(label, child.clone());
        Ok(child)
    }

    /// A partition's entry: its stream's metadata and settings under its
    /// own id, with its own buffer and delivery task.
    fn child_entry(
        &self,
        parent: &Entry,
        id: u64,
        partition: Partition,
        (delivered, next_seq, buffer): (u64, u64, stream::BufferState),
    ) -> Arc<Entry> {
        let mut meta = parent.meta();
        meta.id = id;
        let settings = (*parent.settings()).clone();
        let mut child = Entry::new(meta, settings, &self.account, delivered, next_seq, buffer);
        child.partition = Some(partition);
        let child = Arc::new(child);
        self.runtime.spawn(self.delivery.clone().run(child.clone()));
        child
    }
}
