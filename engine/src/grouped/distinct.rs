//! COUNT(DISTINCT x) per group: one hash table of (group, value) for every
//! group, so there is no set per group. Over an append-only input the
//! table serves up to 64 COUNT DISTINCTs of the same `x` with different
//! FILTERs: a value holds the bits of those it has been counted for, and a
//! row costs one lookup however many of them it passes. Over a changelog it
//! serves one, and a value holds its multiplicity, so that a retraction
//! taking a value's last row away lowers the count.
//! Integers, dates and times are hashed as i64; other types by their Arrow
//! row bytes; floats stay with DataFusion's (its equality of NaN and -0.0).

use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, UInt32Type};
use datafusion::arrow::row::{RowConverter, SortField};
use hashbrown::hash_map::EntryRef;

use super::{GroupedAccumulator, Rows, gather, renumbering, retain_vec, scatter};
use crate::checkpoint::codec::{
    columns_from_bytes, columns_to_bytes, concat_parts, corrupt, padded, split_parts, values,
};
use crate::error::EngineError;
use crate::fast_hash::HashMap;

/// Whether values of the type fit in an i64 without loss.
fn integer(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Int8 | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | Date32
            | Date64
            | Timestamp(_, _)
            | Time32(_)
            | Time64(_)
            | Duration(_)
    )
}

/// Whether this module counts distinct values of the type.
pub(super) fn hashes(data_type: &DataType) -> bool {
    integer(data_type)
        || !data_type.is_floating()
            && RowConverter::supports_fields(&[SortField::new(data_type.clone())])
}

/// A state for `results` COUNT DISTINCTs of one argument (one if
/// `takes_back`), if the argument's type is one this module hashes.
pub(super) fn for_type(
    data_type: &DataType,
    results: usize,
    takes_back: bool,
) -> Option<Box<dyn GroupedAccumulator>> {
    if results == 0 || results > 64 || takes_back && results > 1 || !hashes(data_type) {
        return None;
    }
    let counts = vec![Vec::new(); results];
    match data_type {
        t if integer(t) => Some(Box::new(Integers {
            seen: Seen {
                values: HashMap::default(),
                counts,
                takes_back,
            },
        })),
        _ => {
            let converter = RowConverter::new(vec![SortField::new(data_type.clone())]).ok()?;
            Some(Box::new(Encoded {
                data_type: data_type.clone(),
                converter,
                seen: Seen {
                    values: HashMap::default(),
                    counts,
                    takes_back,
                },
                key: Vec::new(),
            }))
        }
    }
}

/// The (group, value) table and each result's count per group.
struct Seen<K> {
    /// Over an append-only input, the results a value has been counted
    /// for (bit `i` for result `i`); over a changelog, its multiplicity.
    values: HashMap<K, i64>,
    counts: Vec<Vec<i64>>,
    takes_back: bool,
}

/// A table key: a group's number and a value.
trait GroupKey: Hash + Eq {
    fn group(&self) -> usize;
    /// The key with the group's new number (after forgetting groups).
    fn renumbered(self, group: u32) -> Self;
}

impl<K: GroupKey> Seen<K> {
    fn grow(&mut self, groups: usize) {
        for counts in &mut self.counts {
            if counts.len() < groups {
                counts.resize(groups, 0);
            }
        }
    }

    /// Notes that `key` (of `group`) came `diff` times in a row that
    /// `results` (bits) take.
    #[inline]
    fn note<Q>(&mut self, key: &Q, group: usize, diff: isize, results: u64)
    where
        Q: Hash + hashbrown::Equivalent<K> + ToOwned<Owned = K> + ?Sized,
    {
        match self.values.entry_ref(key) {
            EntryRef::Occupied(mut entry) => {
                let tally = entry.get_mut();
                if self.takes_back {
                    let before = *tally > 0;
                    *tally += diff as i64;
                    self.counts[0][group] += (*tally > 0) as i64 - before as i64;
                    if *tally == 0 {
                        entry.remove();
                    }
                } else {
                    let new = results & !(*tally as u64);
                    *tally |= new as i64;
                    count_in(&mut self.counts, group, new);
                }
            }
            EntryRef::Vacant(entry) => {
                if self.takes_back {
                    self.counts[0][group] += (diff > 0) as i64;
                    entry.insert(diff as i64);
                } else {
                    count_in(&mut self.counts, group, results);
                    entry.insert(results as i64);
                }
            }
        }
    }

    fn evaluate(&self, groups: &[u32]) -> Vec<ArrayRef> {
        self.counts
            .iter()
            .map(|counts| {
                Arc::new(Int64Array::from_iter_values(
                    groups
                        .iter()
                        .map(|&g| counts.get(g as usize).copied().unwrap_or(0)),
                )) as ArrayRef
            })
            .collect()
    }

    /// Keeps the groups `keep` marks.
    fn retain(&mut self, keep: &[bool]) {
        let renumber = renumbering(keep);
        self.values = self
            .values
            .drain()
            .filter(|(key, _)| keep[key.group()])
            .map(|(key, tally)| {
                let group = renumber[key.group()];
                (key.renumbered(group), tally)
            })
            .collect();
        for counts in &mut self.counts {
            retain_vec(counts, keep);
        }
    }

    /// The table as (group, tally) columns with `value_column` between
    /// them, and each result's count per group: two parts.
    fn snapshot(
        &self,
        groups: usize,
        value_column: impl FnOnce(&mut dyn Iterator<Item = &K>) -> Result<ArrayRef, EngineError>,
    ) -> Result<Vec<u8>, EngineError> {
        let entries: Vec<(&K, i64, u32)> = self
            .values
            .iter()
            .map(|(k, &t)| (k, t, k.group() as u32))
            .collect();
        let counts = self
            .counts
            .iter()
            .map(|c| Arc::new(Int64Array::from_iter_values(padded(c, groups, 0))) as ArrayRef)
            .collect();
        Self::parts(entries, counts, value_column)
    }

    /// As `snapshot` for `groups` alone, numbered by their place in it.
    /// The table is scanned whole: a delta's bytes follow what changed,
    /// its time the table's size.
    fn snapshot_groups(
        &self,
        groups: &[u32],
        value_column: impl FnOnce(&mut dyn Iterator<Item = &K>) -> Result<ArrayRef, EngineError>,
    ) -> Result<Vec<u8>, EngineError> {
        let place: HashMap<u32, u32> = (0u32..).zip(groups).map(|(i, &g)| (g, i)).collect();
        let entries: Vec<(&K, i64, u32)> = self
            .values
            .iter()
            .filter_map(|(k, &t)| place.get(&(k.group() as u32)).map(|&at| (k, t, at)))
            .collect();
        let counts = self
            .counts
            .iter()
            .map(|c| Arc::new(Int64Array::from_iter_values(gather(c, groups, 0))) as ArrayRef)
            .collect();
        Self::parts(entries, counts, value_column)
    }

    fn parts(
        entries: Vec<(&K, i64, u32)>,
        counts: Vec<ArrayRef>,
        value_column: impl FnOnce(&mut dyn Iterator<Item = &K>) -> Result<ArrayRef, EngineError>,
    ) -> Result<Vec<u8>, EngineError> {
        let group_of = UInt32Array::from_iter_values(entries.iter().map(|e| e.2));
        let value_of = value_column(&mut entries.iter().map(|e| e.0))?;
        let tallies = Int64Array::from_iter_values(entries.iter().map(|e| e.1));
        let table = columns_to_bytes(vec![Arc::new(group_of), value_of, Arc::new(tallies)])?;
        Ok(concat_parts(&[table, columns_to_bytes(counts)?]))
    }

    /// What `snapshot` wrote; `keys` makes each row's table keys from its
    /// group and the value column.
    fn restore(
        &mut self,
        bytes: &[u8],
        groups: usize,
        value_type: &DataType,
        keys: impl FnOnce(&UInt32Array, &ArrayRef) -> Result<Vec<K>, EngineError>,
    ) -> Result<(), EngineError> {
        let (table, counts) = self.read(bytes, groups, value_type, keys, |g| g)?;
        self.values = HashMap::default();
        for (key, tally) in table {
            if self.values.insert(key, tally).is_some() {
                return Err(corrupt("a COUNT DISTINCT value twice"));
            }
        }
        self.counts = counts;
        Ok(())
    }

    /// What `snapshot_groups` wrote for `groups`, put in their place.
    fn restore_groups(
        &mut self,
        bytes: &[u8],
        groups: &[u32],
        group_count: usize,
        value_type: &DataType,
        keys: impl FnOnce(&UInt32Array, &ArrayRef) -> Result<Vec<K>, EngineError>,
    ) -> Result<(), EngineError> {
        let (table, counts) = self.read(bytes, groups.len(), value_type, keys, |at| {
            groups[at as usize]
        })?;
        let replaced: crate::fast_hash::HashSet<usize> =
            groups.iter().map(|&g| g as usize).collect();
        self.values
            .retain(|key, _| !replaced.contains(&key.group()));
        for (key, tally) in table {
            if self.values.insert(key, tally).is_some() {
                return Err(corrupt("a COUNT DISTINCT value twice"));
            }
        }
        for (mine, theirs) in self.counts.iter_mut().zip(counts) {
            scatter(mine, groups, theirs, group_count, 0);
        }
        Ok(())
    }

    /// The table's entries (groups numbered by `number`) and each
    /// result's counts, from bytes of `groups` groups.
    fn read(
        &self,
        bytes: &[u8],
        groups: usize,
        value_type: &DataType,
        keys: impl FnOnce(&UInt32Array, &ArrayRef) -> Result<Vec<K>, EngineError>,
        number: impl Fn(u32) -> u32,
    ) -> Result<Read<K>, EngineError> {
        let [table, counts] = split_parts(bytes, 2)?[..] else {
            return Err(corrupt("a COUNT DISTINCT state is not two parts"));
        };
        let types = [DataType::UInt32, value_type.clone(), DataType::Int64];
        let table = columns_from_bytes(table, None, &types)?;
        let group_of = table[0]
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| corrupt("a COUNT DISTINCT state's groups are not UInt32"))?;
        if group_of.values().iter().any(|&g| g as usize >= groups) {
            return Err(corrupt("a COUNT DISTINCT value of a group there is not"));
        }
        let group_of = UInt32Array::from_iter_values(group_of.values().iter().map(|&g| number(g)));
        let tallies = values::<Int64Type>(&table[2])?;
        let entries = keys(&group_of, &table[1])?
            .into_iter()
            .zip(tallies)
            .collect();
        let types = vec![DataType::Int64; self.counts.len()];
        let counts = columns_from_bytes(counts, Some(groups), &types)?;
        let counts = counts
            .iter()
            .map(values::<Int64Type>)
            .collect::<Result<_, _>>()?;
        Ok((entries, counts))
    }
}

/// A state's table entries and each result's counts per group.
type Read<K> = (Vec<(K, i64)>, Vec<Vec<i64>>);

/// Adds one to the count of each result in `results` (bits).
#[inline]
fn count_in(counts: &mut [Vec<i64>], group: usize, mut results: u64) {
    while results != 0 {
        counts[results.trailing_zeros() as usize][group] += 1;
        results &= results - 1;
    }
}

/// A group's number and a value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct GroupValue(u32, i64);

impl GroupKey for GroupValue {
    fn group(&self) -> usize {
        self.0 as usize
    }

    fn renumbered(self, group: u32) -> Self {
        GroupValue(group, self.1)
    }
}

struct Integers {
    seen: Seen<GroupValue>,
}

impl GroupedAccumulator for Integers {
    fn update(&mut self, arguments: &[ArrayRef], rows: &Rows<'_>) -> Result<(), EngineError> {
        self.seen.grow(rows.group_count);
        let wide;
        let values = if arguments[0].data_type() == &DataType::Int64 {
            arguments[0].as_primitive::<Int64Type>()
        } else {
            wide = cast(&arguments[0], &DataType::Int64)?;
            wide.as_primitive::<Int64Type>()
        };
        let seen = &mut self.seen;
        rows.each_for(|row, group, diff, results| {
            if values.is_valid(row) {
                seen.note(
                    &GroupValue(group as u32, values.value(row)),
                    group,
                    diff,
                    results,
                );
            }
        });
        Ok(())
    }

    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError> {
        Ok(self.seen.evaluate(groups))
    }

    fn retain(&mut self, keep: &[bool]) {
        self.seen.retain(keep);
    }

    fn snapshot(&mut self, groups: usize) -> Result<Vec<u8>, EngineError> {
        self.seen.snapshot(groups, |keys| {
            Ok(Arc::new(Int64Array::from_iter_values(keys.map(|k| k.1))))
        })
    }

    fn restore(&mut self, bytes: &[u8], groups: usize) -> Result<(), EngineError> {
        self.seen
            .restore(bytes, groups, &DataType::Int64, integer_keys)
    }

    fn incremental(&self) -> bool {
        true
    }

    fn snapshot_groups(&mut self, groups: &[u32]) -> Result<Vec<u8>, EngineError> {
        self.seen.snapshot_groups(groups, |keys| {
            Ok(Arc::new(Int64Array::from_iter_values(keys.map(|k| k.1))))
        })
    }

    fn restore_groups(
        &mut self,
        bytes: &[u8],
        groups: &[u32],
        group_count: usize,
    ) -> Result<(), EngineError> {
        self.seen
            .restore_groups(bytes, groups, group_count, &DataType::Int64, integer_keys)
    }
}

fn integer_keys(
    group_of: &UInt32Array,
    value_of: &ArrayRef,
) -> Result<Vec<GroupValue>, EngineError> {
    let value_of = values::<Int64Type>(value_of)?;
    Ok(group_of
        .values()
        .iter()
        .zip(value_of)
        .map(|(&g, v)| GroupValue(g, v))
        .collect())
}

/// Values by their row bytes, after the group's number (4 bytes).
struct Encoded {
    /// The argument's type, which a checkpoint keeps values in.
    data_type: DataType,
    converter: RowConverter,
    seen: Seen<Vec<u8>>,
    /// Scratch for one (group, value) key.
    key: Vec<u8>,
}

impl GroupKey for Vec<u8> {
    fn group(&self) -> usize {
        let mut number = [0; 4];
        number.copy_from_slice(&self[..4]);
        u32::from_le_bytes(number) as usize
    }

    fn renumbered(mut self, group: u32) -> Self {
        self[..4].copy_from_slice(&group.to_le_bytes());
        self
    }
}

impl GroupedAccumulator for Encoded {
    fn update(&mut self, arguments: &[ArrayRef], rows: &Rows<'_>) -> Result<(), EngineError> {
        self.seen.grow(rows.group_count);
        let nulls = arguments[0].logical_nulls();
        let encoded = self.converter.convert_columns(&arguments[..1])?;
        let (seen, key) = (&mut self.seen, &mut self.key);
        rows.each_for(|row, group, diff, results| {
            if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                return;
            }
            key.clear();
            key.extend_from_slice(&(group as u32).to_le_bytes());
            key.extend_from_slice(encoded.row(row).as_ref());
            seen.note(key.as_slice(), group, diff, results);
        });
        Ok(())
    }

    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError> {
        Ok(self.seen.evaluate(groups))
    }

    fn retain(&mut self, keep: &[bool]) {
        self.seen.retain(keep);
    }

    /// Values as their argument's type, not as row bytes, whose layout is
    /// Arrow's to change between versions.
    fn snapshot(&mut self, groups: usize) -> Result<Vec<u8>, EngineError> {
        let converter = &self.converter;
        self.seen
            .snapshot(groups, |keys| value_column(converter, keys))
    }

    fn restore(&mut self, bytes: &[u8], groups: usize) -> Result<(), EngineError> {
        let converter = &self.converter;
        let data_type = self.data_type.clone();
        self.seen
            .restore(bytes, groups, &data_type, |group_of, value_of| {
                encoded_keys(converter, group_of, value_of)
            })
    }

    fn incremental(&self) -> bool {
        true
    }

    fn snapshot_groups(&mut self, groups: &[u32]) -> Result<Vec<u8>, EngineError> {
        let converter = &self.converter;
        self.seen
            .snapshot_groups(groups, |keys| value_column(converter, keys))
    }

    fn restore_groups(
        &mut self,
        bytes: &[u8],
        groups: &[u32],
        group_count: usize,
    ) -> Result<(), EngineError> {
        let converter = &self.converter;
        let data_type = self.data_type.clone();
        self.seen.restore_groups(
            bytes,
            groups,
            group_count,
            &data_type,
            |group_of, value_of| encoded_keys(converter, group_of, value_of),
        )
    }
}

/// The values of table keys (group number, row bytes) as one column.
fn value_column(
    converter: &RowConverter,
    keys: &mut dyn Iterator<Item = &Vec<u8>>,
) -> Result<ArrayRef, EngineError> {
    let parser = converter.parser();
    let rows = keys.map(|key| parser.parse(&key[4..]));
    let mut columns = converter.convert_rows(rows)?;
    columns
        .pop()
        .ok_or_else(|| EngineError::Runtime("a row converter gave no column".into()))
}

fn encoded_keys(
    converter: &RowConverter,
    group_of: &UInt32Array,
    value_of: &ArrayRef,
) -> Result<Vec<Vec<u8>>, EngineError> {
    let rows = converter.convert_columns(std::slice::from_ref(value_of))?;
    Ok(group_of
        .values()
        .iter()
        .zip(rows.iter())
        .map(|(&g, row)| {
            let mut key = g.to_le_bytes().to_vec();
            key.extend_from_slice(row.as_ref());
            key
        })
        .collect())
}
