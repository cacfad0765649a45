//! The event-time temporal join, Flink's `JOIN versioned FOR SYSTEM_TIME AS
//! OF probe.time`: each probe row meets the version of its key that was
//! valid at its time, the latest version at or before it, once both
//! inputs' watermarks have passed that time (so every version up to it has
//! arrived). A condition on the version is applied to the version found,
//! never used to look for an older one. Versions of a key older than the
//! one valid at the watermark can meet no future probe row and are dropped.
//!
//! A changelog (a debezium-json table) is versioned as Flink versions it:
//! `+I` and `+U` rows are versions at their time, a `-D` row ends its key's
//! versions at its time (a probe row after it finds none, until a later
//! version), and `-U` rows are not read, as Flink's planner drops them
//! before the join.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::RowConverter;
use datafusion::physical_expr::PhysicalExpr;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use super::kernel::{JoinKind, JoinSpec, KeyedBatch, Matches, key_converter, unmatched};
use crate::batch::Batch;
use crate::changelog::{self, RowKind};
use crate::checkpoint::codec::{corrupt, fits_schema, new_state, open_state, seal};
use crate::checkpoint::encoding::{batches_from_bytes, batches_to_bytes, put_bytes, put_i64};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::fast_hash::HashMap;
use crate::kept_rows::{RowRef, Rows};
use crate::runtime::exchange;
use crate::time::{Millis, Watermark};
use crate::time_order::TimeOrder;

pub struct TemporalJoin {
    /// Inner or left; `filter` over the probe's columns then the version's.
    pub join: JoinSpec,
    /// The probe side's time attribute.
    pub left_time: usize,
    /// The versioned table's time attribute.
    pub right_time: usize,
    /// A condition on the version alone, over the versioned table's columns.
    pub version_filter: Option<Arc<dyn PhysicalExpr>>,
    /// A condition rows must meet to be versions at all (a versioned
    /// view's WHERE under its deduplication).
    pub before_versions: Option<Arc<dyn PhysicalExpr>>,
    pub left_route: Vec<usize>,
    pub right_route: Vec<usize>,
}

/// A key's versions by time, then arrival (the later of equal times wins):
/// a tree, since a worker far ahead of the watermark adds versions ahead of
/// the ones arriving in time.
type Versions = BTreeMap<(Millis, u64), Version>;

/// A version's row, or the `-D` row that ends its key's versions (kept as
/// a row so that a checkpoint writes it and a restore reads it as one).
#[derive(Debug, Clone, Copy)]
struct Version {
    row: RowRef,
    deleted: bool,
}

struct State {
    spec: Arc<TemporalJoin>,
    context: Arc<JobContext>,
    converter: RowConverter,
    versions: HashMap<Box<[u8]>, Versions>,
    /// Keys with more than one version: where dropping can happen.
    crowded: HashSet<Box<[u8]>>,
    rows: Rows,
    arrivals: u64,
    /// Versions kept.
    live: usize,
    /// The bound outdated versions were last dropped at.
    swept_at: Watermark,
}

/// How far (event time) the watermark moves between drops of outdated
/// versions: a key's versions are looked at once per such step, not once
/// per firing.
const SWEEP_EVERY: Millis = 1000;

/// Batches to keep before the versions still current are copied into one.
const COMPACT_AFTER: usize = 64;

pub fn temporal_join<'scope>(
    left: Stream<'scope, Watermark, Batch>,
    right: Stream<'scope, Watermark, Batch>,
    spec: Arc<TemporalJoin>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    let routes = (spec.left_route.clone(), spec.right_route.clone());
    left.binary_frontier::<_, CapacityContainerBuilder<Batch>, _, _, _, _>(
        right,
        exchange::by_key(routes.0),
        exchange::by_key(routes.1),
        "TemporalJoin",
        move |initial, _info| {
            let joining = match key_converter(&spec.join.right_keys, &spec.join.right_schema) {
                Ok(converter) => {
                    let joining = Rc::new(RefCell::new(Joining {
                        probes: TimeOrder::new(spec.left_time),
                        state: State {
                            spec: spec.clone(),
                            context: context.clone(),
                            converter,
                            versions: HashMap::default(),
                            crowded: HashSet::new(),
                            rows: Rows::default(),
                            arrivals: 0,
                            live: 0,
                            swept_at: Watermark::MIN,
                        },
                    }));
                    let checkpointed = Rc::new(Checkpointed(joining.clone()));
                    if let Some(bytes) =
                        crate::checkpoint::worker::register("TemporalJoin", checkpointed)
                        && let Err(error) = joining.borrow_mut().restore(&bytes, &initial)
                    {
                        context.fail(error);
                    }
                    Some(joining)
                }
                Err(error) => {
                    context.fail(error);
                    None
                }
            };
            move |(left, left_frontier), (right, right_frontier), output| {
                let Some(joining) = joining.as_ref() else {
                    left.for_each(|_cap, data| drop(data.take()));
                    right.for_each(|_cap, data| drop(data.take()));
                    return;
                };
                let mut joining = joining.borrow_mut();
                let Joining { probes, state } = &mut *joining;
                left.for_each(|cap, data| {
                    if let Some(batch) = data.take() {
                        probes.accept(&cap, batch);
                    }
                });
                let mut arrived = Vec::new();
                right.for_each(|_cap, data| {
                    if let Some(batch) = data.take() {
                        arrived.push(batch);
                    }
                });
                let result = arrived
                    .into_iter()
                    .try_for_each(|batch| state.add_versions(batch));
                if let Err(error) = result {
                    return context.fail(error);
                }
                let least = |f: &timely::progress::frontier::MutableAntichain<Watermark>| {
                    f.frontier().iter().min().copied()
                };
                let bound = match (least(left_frontier), least(right_frontier)) {
                    (Some(l), Some(r)) => Some(l.min(r)),
                    (l, r) => l.or(r),
                };
                let ready = match probes.ready(bound) {
                    Ok(Some(ready)) => ready,
                    Ok(None) => return,
                    Err(error) => return context.fail(error),
                };
                match state.probe(ready.batches, &ready.times) {
                    Ok(Some(out)) => output
                        .session(&ready.cap)
                        .give_container(&mut Batch::new(out)),
                    Ok(None) => {}
                    Err(error) => context.fail(error),
                }
                if let Some(bound) = bound
                    && bound.saturating_sub(state.swept_at) >= SWEEP_EVERY
                {
                    state.swept_at = bound;
                    state.drop_outdated(bound);
                }
                if let Err(error) = state.compact_if_scattered() {
                    context.fail(error);
                }
                probes.hold(ready.cap);
            }
        },
    )
}

/// What the operator carries between activations, shared with the
/// checkpoint that takes it.
struct Joining {
    /// Probe rows held until both watermarks pass their time.
    probes: TimeOrder,
    state: State,
}

/// A temporal join's checkpoint: a version; the held probe rows (a
/// `TimeOrder` state); the bound outdated versions were last dropped at;
/// and the versions kept (Arrow IPC, empty if none), key by key in
/// version order, whose keys and times are read from them again.
const STATE_VERSION: u32 = 1;

struct Checkpointed(Rc<RefCell<Joining>>);

impl crate::checkpoint::worker::OperatorState for Checkpointed {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow().snapshot().map(seal)
    }
}

impl Joining {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let mut out = new_state(STATE_VERSION);
        put_bytes(&mut out, &self.probes.snapshot()?);
        put_i64(&mut out, self.state.swept_at);
        put_bytes(&mut out, &self.state.versions_to_bytes()?);
        Ok(out)
    }

    /// Takes what a snapshot held; held probe rows get capabilities made
    /// anew from the operator's initial one.
    fn restore(
        &mut self,
        bytes: &[u8],
        initial: &Capability<Watermark>,
    ) -> Result<(), EngineError> {
        let mut reader = open_state(bytes, STATE_VERSION, "a temporal join")?;
        self.probes.restore(reader.bytes()?, initial)?;
        let swept_at = reader.i64()?;
        let versions = reader.bytes()?;
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes after a temporal join state"));
        }
        if !versions.is_empty() {
            for batch in batches_from_bytes(versions)? {
                if !fits_schema(&batch, &self.state.spec.join.right_schema) {
                    return Err(corrupt("temporal join versions with other columns"));
                }
                self.state.insert_versions(batch)?;
            }
        }
        self.state.swept_at = swept_at;
        Ok(())
    }
}

/// A time column as milliseconds.
fn millis(column: &ArrayRef) -> Result<Vec<Option<Millis>>, EngineError> {
    let as_millis = cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    let as_int = cast(&as_millis, &DataType::Int64)?;
    let values = as_int.as_primitive::<Int64Type>();
    Ok((0..values.len())
        .map(|i| values.is_valid(i).then(|| values.value(i)))
        .collect())
}

impl State {
    fn add_versions(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        let batch = match &self.spec.before_versions {
            Some(condition) => {
                let mask = condition.evaluate(&batch)?.into_array(batch.num_rows())?;
                let mask = mask
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| EngineError::Plan("a condition must be boolean".into()))?;
                datafusion::arrow::compute::filter_record_batch(&batch, mask)?
            }
            None => batch,
        };
        self.insert_versions(batch)
    }

    /// Keeps `batch`'s rows (already past `before_versions`) as versions,
    /// each after the versions of its key and time already kept; of a
    /// changelog, `-D` rows as ends of versions and no `-U` row.
    fn insert_versions(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let times = millis(batch.column(self.spec.right_time))?;
        let kinds = changelog::kinds(&batch);
        let keyed = KeyedBatch::new(batch, &self.spec.join.right_keys, &self.converter)?;
        let id = self.rows.keep(keyed.batch.clone(), Vec::new());
        let mut new_rows = 0;
        for (row, key) in keyed.keys().enumerate() {
            let (Some(key), Some(time)) = (key, times[row]) else {
                continue;
            };
            let kind = kinds.as_ref().map_or(RowKind::Insert, |kinds| kinds[row]);
            if kind == RowKind::UpdateBefore {
                continue;
            }
            let deleted = kind == RowKind::Delete;
            let version = Version {
                row: RowRef {
                    batch: id,
                    row: row as u32,
                },
                deleted,
            };
            new_rows += 1;
            let versions = match self.versions.get_mut(key) {
                Some(versions) => versions,
                None => self.versions.entry(key.into()).or_default(),
            };
            versions.insert((time, self.arrivals), version);
            self.arrivals += 1;
            // An end of versions is looked at by the sweep even alone: once
            // the watermark passes it, its key can be forgotten.
            if versions.len() == 2 || deleted {
                self.crowded.insert(key.into());
            }
        }
        self.live += new_rows;
        JobContext::add(&self.context.state_rows, new_rows);
        Ok(())
    }

    /// Each probe row (in time order, at `times`) with its key's version
    /// at its time.
    fn probe(
        &mut self,
        batches: Vec<RecordBatch>,
        times: &[Millis],
    ) -> Result<Option<RecordBatch>, EngineError> {
        let spec = &self.spec.join;
        let Some(first) = batches.first() else {
            return Ok(None);
        };
        let left = concat_batches(&first.schema(), &batches)?;
        if left.num_rows() == 0 {
            return Ok(None);
        }
        let probe_converter = key_converter(&spec.left_keys, &spec.left_schema)?;
        let keyed = KeyedBatch::new(left, &spec.left_keys, &probe_converter)?;
        let mut probe_rows: Vec<u32> = Vec::new();
        let mut version_refs: Vec<Option<RowRef>> = Vec::new();
        for (i, key) in keyed.keys().enumerate() {
            let found = key
                .and_then(|key| self.versions.get(key))
                .and_then(|versions| {
                    versions
                        .range(..=(times[i], u64::MAX))
                        .next_back()
                        .filter(|(_, version)| !version.deleted)
                        .map(|(_, version)| version.row)
                });
            if let Some(row) = found {
                probe_rows.push(i as u32);
                version_refs.push(Some(row));
            }
        }
        let columns = spec
            .right_schema
            .fields()
            .iter()
            .enumerate()
            .map(|(c, f)| self.rows.column(c, f.data_type(), &version_refs))
            .collect::<Result<Vec<_>, _>>()?;
        let right = RecordBatch::try_new_with_options(
            spec.right_schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(version_refs.len())),
        )?;
        let (l, r): (Vec<u32>, Vec<u32>) = match &self.spec.version_filter {
            Some(filter) => {
                let mask = filter.evaluate(&right)?.into_array(right.num_rows())?;
                let mask = mask
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| EngineError::Plan("a join condition must be boolean".into()))?;
                probe_rows
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| mask.is_valid(k) && mask.value(k))
                    .map(|(k, &i)| (i, k as u32))
                    .unzip()
            }
            None => probe_rows
                .iter()
                .enumerate()
                .map(|(k, &i)| (i, k as u32))
                .unzip(),
        };
        let matches: Matches = spec.filter_pairs(&keyed.batch, &right, l, r)?;
        let unmatched_left = match spec.kind {
            JoinKind::Left => unmatched(keyed.len(), &matches.left),
            _ => Vec::new(),
        };
        spec.output(&keyed.batch, &right, &matches, &unmatched_left, &[])
    }

    /// Every version kept, key by key and in each key's order, as Arrow
    /// IPC (empty if none): restored in this order, they keep the order
    /// of a key's versions of equal time.
    fn versions_to_bytes(&self) -> Result<Vec<u8>, EngineError> {
        let refs: Vec<RowRef> = self
            .versions
            .values()
            .flat_map(|versions| versions.values().map(|version| version.row))
            .collect();
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        match self.rows.rows_at(&refs)? {
            Some(rows) => batches_to_bytes(&rows.schema(), &[rows]),
            None => Ok(Vec::new()),
        }
    }

    /// Drops the versions no probe row at or after `bound` can meet: those
    /// older than each key's last version before `bound`.
    fn drop_outdated(&mut self, bound: Watermark) {
        let mut dropped = 0;
        let mut settled = Vec::new();
        let mut forgotten = Vec::new();
        for key in &self.crowded {
            if let Some(versions) = self.versions.get_mut(key) {
                // The last version before `bound` stays valid for it.
                let Some(&valid_at) = versions.range(..(bound, 0)).next_back().map(|(k, _)| k)
                else {
                    continue;
                };
                while versions
                    .first_key_value()
                    .is_some_and(|(at, _)| *at < valid_at)
                {
                    versions.pop_first();
                    dropped += 1;
                }
                // An end of versions valid at the bound, alone: no probe row
                // from the bound on finds a version of its key.
                let ended = versions.len() == 1
                    && versions.first_key_value().is_some_and(|(_, v)| v.deleted);
                if ended {
                    versions.clear();
                    dropped += 1;
                    forgotten.push(key.clone());
                }
                if versions.len() < 2 {
                    settled.push(key.clone());
                }
            }
        }
        for key in settled {
            self.crowded.remove(&key);
        }
        for key in forgotten {
            self.versions.remove(&key);
        }
        self.live -= dropped;
        self.context
            .state_rows
            .fetch_sub(dropped as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Copies the versions still kept into one batch once old batches are
    /// kept alive by a few of their rows: when at most half the rows kept
    /// are versions, so that a copy costs no more than the rows it frees
    /// (a worker far ahead of the watermark keeps many versions, all live).
    fn compact_if_scattered(&mut self) -> Result<(), EngineError> {
        if self.rows.kept_batches() < COMPACT_AFTER {
            return Ok(());
        }
        if self.live * 2 > self.rows.kept_rows() {
            return Ok(());
        }
        let mut refs: Vec<&mut RowRef> = self
            .versions
            .values_mut()
            .flat_map(|versions| versions.values_mut().map(|version| &mut version.row))
            .collect();
        self.rows.compact(&mut refs)
    }
}
