//! One aggregate's state for every group of an operator, kept in vectors
//! indexed by group number, so that a batch is absorbed with one pass per
//! aggregate over its rows and only the groups it touched are evaluated.
//! DataFusion's `GroupsAccumulator`s cannot serve here: their `evaluate`
//! hands the state over, and an updating GROUP BY evaluates the same groups
//! after every batch. COUNT, SUM, AVG, MIN, MAX and COUNT DISTINCT of the
//! common types are Runnel's own; any other aggregate keeps one DataFusion
//! `Accumulator` per group (`per_group`).

mod counts;
mod distinct;
mod extremes;
pub mod operator;
mod per_group;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use crate::error::EngineError;

/// The rows of one batch as a state sees them.
pub(crate) struct Rows<'a> {
    /// Each row's group.
    pub groups: &'a [u32],
    /// The FILTER of each result the state gives: a row a FILTER holds
    /// false or NULL for is skipped for that result.
    pub filters: &'a [Option<&'a BooleanArray>],
    /// `+1` adds a row, `-1` takes it back; `None` when every row adds.
    pub diffs: Option<&'a [isize]>,
    /// Groups there are once this batch is in (new ones are numbered on).
    pub group_count: usize,
}

fn passes(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|mask| mask.is_valid(row) && mask.value(row))
}

impl Rows<'_> {
    fn diff(&self, row: usize) -> isize {
        self.diffs.map_or(1, |d| d[row])
    }

    /// Calls `f(row, group, diff)` for each row the (only) FILTER lets
    /// through.
    #[inline]
    fn each(&self, mut f: impl FnMut(usize, usize, isize)) {
        match self.filters.first().copied().flatten() {
            None => {
                for (row, &group) in self.groups.iter().enumerate() {
                    f(row, group as usize, self.diff(row));
                }
            }
            Some(mask) => {
                for (row, &group) in self.groups.iter().enumerate() {
                    if passes(Some(mask), row) {
                        f(row, group as usize, self.diff(row));
                    }
                }
            }
        }
    }

    /// Calls `f(row, group, diff, results)` for each row some FILTER lets
    /// through, `results` holding bit `i` if result `i`'s does.
    #[inline]
    fn each_for(&self, mut f: impl FnMut(usize, usize, isize, u64)) {
        for (row, &group) in self.groups.iter().enumerate() {
            let results = self
                .filters
                .iter()
                .enumerate()
                .fold(0u64, |bits, (i, filter)| {
                    bits | (passes(*filter, row) as u64) << i
                });
            if results != 0 {
                f(row, group as usize, self.diff(row), results);
            }
        }
    }
}

pub(crate) trait GroupedAccumulator: Send {
    /// Adds (or takes back) the rows' argument values to their groups.
    fn update(&mut self, arguments: &[ArrayRef], rows: &Rows<'_>) -> Result<(), EngineError>;

    /// Each result's values for `groups`, in that order, in the
    /// aggregate's type.
    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<ArrayRef>, EngineError>;

    /// Keeps the groups `keep` marks, renumbered in order (group `g` becomes
    /// the count of kept groups before it).
    fn retain(&mut self, keep: &[bool]);

    /// The state of groups `0..groups` as bytes, for a checkpoint; the
    /// state itself is left as it was.
    fn snapshot(&mut self, groups: usize) -> Result<Vec<u8>, EngineError>;

    /// Replaces the state with what `snapshot` gave for `groups` groups;
    /// bytes that are not such a state are an error.
    fn restore(&mut self, bytes: &[u8], groups: usize) -> Result<(), EngineError>;

    /// Why the state cannot be checkpointed, if it cannot.
    fn checkpoint_refusal(&self) -> Option<String> {
        None
    }

    /// Whether `snapshot_groups` and `restore_groups` serve, so that a
    /// checkpoint may hold only the groups that changed.
    fn incremental(&self) -> bool {
        false
    }

    /// The state of `groups` alone, laid out as `snapshot` lays out that
    /// many groups.
    fn snapshot_groups(&mut self, _groups: &[u32]) -> Result<Vec<u8>, EngineError> {
        Err(EngineError::Runtime(
            "this aggregate's state is checkpointed whole".into(),
        ))
    }

    /// Sets the state of `groups` to what `snapshot_groups` gave for
    /// them; there are `group_count` groups in all.
    fn restore_groups(
        &mut self,
        _bytes: &[u8],
        _groups: &[u32],
        _group_count: usize,
    ) -> Result<(), EngineError> {
        Err(crate::checkpoint::codec::corrupt(
            "a delta of an aggregate state that is checkpointed whole",
        ))
    }
}

/// The values of `groups`, `fill` for those past the end.
pub(crate) fn gather<'a, T: Clone>(
    values: &'a [T],
    groups: &'a [u32],
    fill: T,
) -> impl Iterator<Item = T> + 'a {
    groups.iter().map(move |&g| {
        values
            .get(g as usize)
            .cloned()
            .unwrap_or_else(|| fill.clone())
    })
}

/// Puts `new[i]` at `groups[i]`, first growing `values` to `group_count`.
pub(crate) fn scatter<T: Clone>(
    values: &mut Vec<T>,
    groups: &[u32],
    new: impl IntoIterator<Item = T>,
    group_count: usize,
    fill: T,
) {
    if values.len() < group_count {
        values.resize(group_count, fill);
    }
    for (&g, value) in groups.iter().zip(new) {
        if let Some(slot) = values.get_mut(g as usize) {
            *slot = value;
        }
    }
}

/// Renumbering after `retain`: each kept group's new number.
pub(crate) fn renumbering(keep: &[bool]) -> Vec<u32> {
    let mut next = 0;
    keep.iter()
        .map(|&k| {
            let at = next;
            next += k as u32;
            at
        })
        .collect()
}

/// Keeps the entries of a per-group vector that `keep` marks.
pub(crate) fn retain_vec<T>(values: &mut Vec<T>, keep: &[bool]) {
    let mut group = 0;
    values.retain(|_| {
        group += 1;
        keep.get(group - 1).copied().unwrap_or(true)
    });
}

/// A state and the aggregates (by position) whose results it gives.
pub(crate) struct Unit {
    pub aggregates: Vec<usize>,
    pub state: Box<dyn GroupedAccumulator>,
}

/// The states for `aggregates` (`argument_types` for each); `takes_back`
/// when the input is a changelog. COUNT DISTINCTs of one argument share a
/// table of the values seen, each value marked with the FILTERs it passed
/// (as Flink shares a distinct view between filters), when the input only
/// adds.
pub(crate) fn plan(
    aggregates: &[Arc<AggregateFunctionExpr>],
    argument_types: &[Vec<DataType>],
    takes_back: bool,
) -> Result<Vec<Unit>, EngineError> {
    let mut units: Vec<Unit> = Vec::new();
    let mut sharing: Vec<Vec<usize>> = Vec::new();
    for (i, aggregate) in aggregates.iter().enumerate() {
        let shareable = !takes_back && counted_distinct(aggregate, &argument_types[i]).is_some();
        if !shareable {
            units.push(Unit {
                aggregates: vec![i],
                state: for_aggregate(aggregate, &argument_types[i], takes_back)?,
            });
            continue;
        }
        let argument = &aggregate.expressions()[0];
        let same = sharing.iter_mut().find(|members| {
            members.len() < 64
                && aggregates[members[0]].expressions()[0].as_ref() == argument.as_ref()
        });
        match same {
            Some(members) => members.push(i),
            None => sharing.push(vec![i]),
        }
    }
    for members in sharing {
        let state = distinct::for_type(&argument_types[members[0]][0], members.len(), false)
            .ok_or_else(|| EngineError::Plan("a COUNT DISTINCT without its state".into()))?;
        units.push(Unit {
            aggregates: members,
            state,
        });
    }
    Ok(units)
}

/// The state for `aggregate` alone.
fn for_aggregate(
    aggregate: &Arc<AggregateFunctionExpr>,
    argument_types: &[DataType],
    takes_back: bool,
) -> Result<Box<dyn GroupedAccumulator>, EngineError> {
    if let Some(own) = own(aggregate, argument_types, takes_back) {
        return Ok(own);
    }
    Ok(Box::new(per_group::PerGroup::new(
        aggregate.clone(),
        takes_back,
    )))
}

/// The argument's type if `aggregate` is a COUNT(DISTINCT x) whose values
/// `distinct` hashes itself.
fn counted_distinct<'t>(
    aggregate: &AggregateFunctionExpr,
    argument_types: &'t [DataType],
) -> Option<&'t DataType> {
    let [argument] = argument_types else {
        return None;
    };
    (aggregate.is_distinct()
        && aggregate.fun().name().eq_ignore_ascii_case("count")
        && aggregate.order_bys().is_empty()
        && aggregate.field().data_type() == &DataType::Int64
        && distinct::hashes(argument))
    .then_some(argument)
}

/// Runnel's own state for the aggregates it knows in the types it knows;
/// the result type must be DataFusion's for the same call.
fn own(
    aggregate: &AggregateFunctionExpr,
    argument_types: &[DataType],
    takes_back: bool,
) -> Option<Box<dyn GroupedAccumulator>> {
    use datafusion::arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
    if let Some(argument) = counted_distinct(aggregate, argument_types) {
        return distinct::for_type(argument, 1, takes_back);
    }
    let [argument] = argument_types else {
        return None;
    };
    if !aggregate.order_bys().is_empty() {
        return None;
    }
    let result = aggregate.field().data_type().clone();
    let name = aggregate.fun().name().to_ascii_lowercase();
    let distinct = aggregate.is_distinct();
    match (name.as_str(), distinct, argument, &result) {
        ("count", false, _, DataType::Int64) => Some(Box::new(counts::Count::default())),
        ("sum", false, DataType::Int64, DataType::Int64) => {
            Some(Box::new(counts::Sum::<Int64Type>::default()))
        }
        ("sum", false, DataType::UInt64, DataType::UInt64) => {
            Some(Box::new(counts::Sum::<UInt64Type>::default()))
        }
        ("sum", false, DataType::Float64, DataType::Float64) => {
            Some(Box::new(counts::Sum::<Float64Type>::default()))
        }
        ("avg" | "mean", false, DataType::Float64, DataType::Float64) => {
            Some(Box::new(counts::Average::default()))
        }
        // MIN and MAX cannot take a row back.
        ("min" | "max", _, _, _) if !takes_back && argument == &result => {
            extremes::for_type(argument, name == "max")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
