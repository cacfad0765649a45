//! Incremental checkpoints of the GROUP BY: a delta holds the groups
//! touched since the last snapshot (their keys, bookkeeping and each
//! aggregate's state) and the keys of the groups forgotten since, so that
//! its cost follows what changed, not how many groups there are.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};

use super::State;
use crate::checkpoint::codec::{
    columns_from_bytes, columns_to_bytes, corrupt, new_state, open_state, seal, values,
};
use crate::checkpoint::encoding::{put_bytes, put_u32};
use crate::checkpoint::worker::Snapshot;
use crate::context::JobContext;
use crate::error::EngineError;

/// Distinct from every whole-state version, so that neither is read as
/// the other.
const DELTA_VERSION: u32 = 0x8000_0001;

/// A chain of deltas is cut by a whole snapshot after this many, so that a
/// restore applies a bounded number of them.
const MOST_DELTAS: usize = 16;

/// What changed since the last snapshot or restore, kept once the job
/// has checkpointed (or restored) this state.
#[derive(Default)]
pub(super) struct Increments {
    /// The operator's batch count then: a group touched in a later batch
    /// changed.
    pub since: u64,
    /// Keys of the groups touched since, at their first touch (a key
    /// forgotten and made again comes twice).
    pub touched: Vec<Vec<u8>>,
    /// Keys of the groups forgotten since.
    pub forgotten: Vec<Vec<u8>>,
    /// Deltas since the last whole snapshot, and the groups they held.
    deltas: usize,
    delta_groups: usize,
}

impl State {
    /// A delta when allowed and cheaper than the whole state, else the
    /// whole state; either way what changes next is counted from here.
    pub(super) fn snapshot_checkpoint(
        &mut self,
        delta_allowed: bool,
    ) -> Result<Snapshot, EngineError> {
        let capable = self.units.iter().all(|unit| unit.state.incremental());
        let groups = self.groups.rows.len();
        let changed = self
            .increments
            .as_ref()
            .map_or(0, |i| i.touched.len() + i.forgotten.len());
        let delta = delta_allowed
            && capable
            && self
                .increments
                .as_ref()
                .is_some_and(|i| i.deltas < MOST_DELTAS && i.delta_groups + changed <= groups / 2);
        let snapshot = if delta {
            Snapshot::Delta(seal(self.delta()?))
        } else {
            Snapshot::Whole(seal(self.snapshot()?))
        };
        let batches = self.batches;
        let increments = self.increments.get_or_insert_with(Increments::default);
        if delta {
            increments.deltas += 1;
            increments.delta_groups += changed;
        } else {
            increments.deltas = 0;
            increments.delta_groups = 0;
        }
        increments.touched.clear();
        increments.forgotten.clear();
        increments.since = batches;
        Ok(snapshot)
    }

    /// The forgotten keys, then the touched groups in the whole state's
    /// layout (keys, rows, emitted), then each unit's state of them.
    fn delta(&mut self) -> Result<Vec<u8>, EngineError> {
        let Some(increments) = &self.increments else {
            return Err(EngineError::Runtime("a delta with no base".into()));
        };
        let mut touched: Vec<(u32, &[u8])> = increments
            .touched
            .iter()
            .filter_map(|key| {
                let group = self.index.get(key.as_slice())?;
                Some((*group, key.as_slice()))
            })
            .collect();
        touched.sort_unstable_by_key(|(group, _)| *group);
        touched.dedup_by_key(|(group, _)| *group);
        let forgotten = match self.spec.keys.is_empty() {
            // The one group's key is empty: only how many times it went.
            true => vec![Arc::new(Int64Array::from_iter_values(
                increments.forgotten.iter().map(|_| 0),
            )) as ArrayRef],
            false => self.key_columns_of(increments.forgotten.iter().map(Vec::as_slice))?,
        };
        let mut columns = self.key_columns_of(touched.iter().map(|(_, key)| *key))?;
        let touched: Vec<u32> = touched.into_iter().map(|(group, _)| group).collect();
        let rows = touched.iter().map(|&g| self.groups.rows[g as usize]);
        columns.push(Arc::new(Int64Array::from_iter_values(rows)));
        let emitted = touched
            .iter()
            .map(|&g| Some(self.groups.emitted[g as usize]));
        columns.push(Arc::new(BooleanArray::from_iter(emitted)));
        let mut out = new_state(DELTA_VERSION);
        put_bytes(&mut out, &columns_to_bytes(forgotten)?);
        put_bytes(&mut out, &columns_to_bytes(columns)?);
        put_u32(&mut out, self.units.len() as u32);
        for unit in &mut self.units {
            put_bytes(&mut out, &unit.state.snapshot_groups(&touched)?);
        }
        Ok(out)
    }

    /// Applies a delta on the state restored so far.
    pub(super) fn apply_delta(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let mut reader = open_state(bytes, DELTA_VERSION, "a GROUP BY delta")?;
        let key_count = self.spec.keys.len();
        let key_types = self.key_types()?;
        let forgotten = self.rows_of(reader.bytes()?, &key_types)?;
        if !forgotten.is_empty() {
            let mut keep = vec![true; self.groups.rows.len()];
            for key in &forgotten {
                if let Some(&group) = self.index.get(key.as_slice()) {
                    keep[group as usize] = false;
                }
            }
            self.forget(&keep);
        }
        let mut types = key_types;
        types.extend([DataType::Int64, DataType::Boolean]);
        let columns = columns_from_bytes(reader.bytes()?, None, &types)?;
        let rows = values::<Int64Type>(&columns[key_count])?;
        let emitted = columns[key_count + 1]
            .as_boolean_opt()
            .ok_or_else(|| corrupt("a GROUP BY delta's emitted flags are not booleans"))?;
        let keys = self.encoded(&columns[..key_count], rows.len())?;
        let now = std::time::Instant::now();
        let mut created = 0;
        let mut targets = Vec::with_capacity(rows.len());
        for (i, key) in keys.into_iter().enumerate() {
            let group = match self.index.get(key.as_slice()) {
                Some(&group) => group,
                None => {
                    created += 1;
                    let group = self.groups.push(now);
                    self.index.insert(key, group);
                    group
                }
            };
            self.groups.rows[group as usize] = rows[i];
            self.groups.emitted[group as usize] = emitted.value(i);
            targets.push(group);
        }
        if reader.u32()? as usize != self.units.len() {
            return Err(corrupt("a GROUP BY delta with other aggregates"));
        }
        let group_count = self.groups.rows.len();
        for unit in &mut self.units {
            unit.state
                .restore_groups(reader.bytes()?, &targets, group_count)?;
        }
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes after a GROUP BY delta"));
        }
        JobContext::add(&self.context.state_rows, created);
        Ok(())
    }

    /// The key columns of the given key bytes (none without keys).
    fn key_columns_of<'k>(
        &self,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> Result<Vec<ArrayRef>, EngineError> {
        if self.spec.keys.is_empty() {
            return Ok(Vec::new());
        }
        let parser = self.keys.parser();
        Ok(self.keys.convert_rows(keys.map(|key| parser.parse(key)))?)
    }

    /// Key bytes of the forgotten groups a delta names.
    fn rows_of(&self, bytes: &[u8], key_types: &[DataType]) -> Result<Vec<Vec<u8>>, EngineError> {
        if self.spec.keys.is_empty() {
            let columns = columns_from_bytes(bytes, None, &[DataType::Int64])?;
            return Ok(vec![Vec::new(); columns[0].len()]);
        }
        let columns = columns_from_bytes(bytes, None, key_types)?;
        let rows = columns.first().map_or(0, |c| c.len());
        self.encoded(&columns, rows)
    }

    fn encoded(&self, columns: &[ArrayRef], rows: usize) -> Result<Vec<Vec<u8>>, EngineError> {
        if self.spec.keys.is_empty() {
            return Ok(vec![Vec::new(); rows]);
        }
        let encoded = self.keys.convert_columns(columns)?;
        Ok(encoded.iter().map(|row| row.data().to_vec()).collect())
    }
}
