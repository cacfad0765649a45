//! A regular (unwindowed) inner equi-join: both inputs kept in
//! differential arrangements by key, so a row joins every row of the other
//! side that has ever arrived and retractions on either side retract their
//! pairs. The extra condition is applied to the decoded pairs.

use std::collections::BTreeMap;

use crate::fast_hash::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use differential_dataflow::VecCollection;
use differential_dataflow::collection::AsCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::core::ToStream;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::changelog::{self, RowKind, diffs, is_changelog};
use crate::changelog::{Updates, to_updates};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::join::kernel::KeyedBatch;
use crate::time::Watermark;
use crate::updating::expiry::{self, Expired, MarkBy};
use crate::updating::replay::EmittedOutput;

/// Turns one complete time's updates `(key, value, diff)` (sorted by key)
/// into a changelog batch.
pub type DecodeFn =
    Arc<dyn Fn(&[(Vec<u8>, Vec<u8>, isize)]) -> Result<RecordBatch, EngineError> + Send + Sync>;

/// Collects differential's output per time and, once the frontier has
/// passed a time, hands its consolidated updates to `decode`. With
/// `expired` (a TTL's marks, see `expiry`), what an expiry changed is
/// dropped instead.
pub fn to_changelog<'scope>(
    updates: Stream<'scope, Watermark, Updates>,
    expired: Expired<'scope>,
    name: &str,
    decode: DecodeFn,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    // A record's updates can come from different workers (an antijoin is
    // its input minus a re-arranged semijoin), so they meet on the worker
    // of their key before they are paired and consolidated.
    let by_key = timely::dataflow::channels::pact::Exchange::new(
        |update: &((Vec<u8>, Vec<u8>), Watermark, isize)| expiry::owner(&update.0.0),
    );
    let scope = updates.scope();
    let (marks, mark_by) = match expired {
        Some((marks, mark_by)) => (marks, mark_by),
        None => (
            std::iter::empty::<(Vec<u8>, Watermark, isize)>().to_stream(scope),
            MarkBy::Key,
        ),
    };
    updates.binary_frontier::<_, CapacityContainerBuilder<Batch>, _, _, _, _>(
        marks,
        by_key,
        Pipeline,
        name,
        move |initial, _info| {
            type Pending = (Capability<Watermark>, Vec<(Vec<u8>, Vec<u8>, isize)>);
            let mut stash: BTreeMap<Watermark, Pending> = BTreeMap::new();
            let emitted = match EmittedOutput::register() {
                Ok(Some((emitted, cancel))) => {
                    if !cancel.is_empty() {
                        stash.insert(*initial.time(), (initial, cancel));
                    }
                    Some(emitted)
                }
                Ok(None) => None,
                Err(error) => {
                    context.fail(error);
                    None
                }
            };
            let mut marked: BTreeMap<Watermark, HashMap<Vec<u8>, isize>> = BTreeMap::new();
            move |(input, frontier), (marks, marks_frontier), output| {
                input.for_each(|cap, data| {
                    for ((key, value), time, diff) in data.drain(..) {
                        let entry = match stash.get_mut(&time) {
                            Some(entry) => entry,
                            None => {
                                let held = cap.delayed(&time, 0);
                                stash.entry(time).or_insert((held, Vec::new()))
                            }
                        };
                        entry.1.push((key, value, diff));
                    }
                });
                marks.for_each(|_cap, data| {
                    for (mark, time, diff) in data.drain(..) {
                        *marked.entry(time).or_default().entry(mark).or_default() += diff;
                    }
                });
                while let Some(entry) = stash.first_entry() {
                    let time = *entry.key();
                    if frontier.less_equal(&time) || marks_frontier.less_equal(&time) {
                        break;
                    }
                    let (cap, mut updates) = entry.remove();
                    if let Some(marks) = marked.remove(&time) {
                        let is_marked = |bytes: &[u8]| marks.get(bytes).is_some_and(|n| *n > 0);
                        updates.retain(|(key, value, _)| match mark_by {
                            MarkBy::Key => !is_marked(key),
                            MarkBy::Row { .. } => !is_marked(key) && !is_marked(value),
                        });
                    }
                    updates.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
                    consolidate(&mut updates);
                    if updates.is_empty() {
                        continue;
                    }
                    if let Some(emitted) = &emitted {
                        emitted.note(&updates);
                    }
                    match decode(&updates) {
                        Ok(batch) if batch.num_rows() > 0 => {
                            output.session(&cap).give_container(&mut Batch::new(batch))
                        }
                        Ok(_) => {}
                        Err(error) => context.fail(error),
                    }
                }
                // Marks of times that can no longer have output.
                let waiting = stash.keys().next().copied();
                let open = frontier.frontier().iter().min().copied();
                match waiting.into_iter().chain(open).min() {
                    Some(earliest) => marked = marked.split_off(&earliest),
                    None => marked.clear(),
                }
            }
        },
    )
}

/// Sums the diffs of equal (key, value) neighbours and drops zeros.
fn consolidate(updates: &mut Vec<(Vec<u8>, Vec<u8>, isize)>) {
    let mut out: Vec<(Vec<u8>, Vec<u8>, isize)> = Vec::with_capacity(updates.len());
    for (key, value, diff) in updates.drain(..) {
        match out.last_mut() {
            Some(last) if last.0 == key && last.1 == value => last.2 += diff,
            _ => out.push((key, value, diff)),
        }
    }
    out.retain(|u| u.2 != 0);
    *updates = out;
}

/// Which rows a regular join outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegularJoinKind {
    /// Matching pairs.
    Inner,
    /// Matching pairs and each side's rows without a match (with NULLs).
    Left,
    Right,
    Full,
    /// Left rows with (semi) or without (anti) a matching right row;
    /// the planner swaps the sides for right semi and anti joins.
    Semi,
    Anti,
}

pub struct RegularJoin {
    pub kind: RegularJoinKind,
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Over the left columns then the right columns.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Each side's columns (with a trailing `__op` if a changelog).
    pub left_schema: SchemaRef,
    pub right_schema: SchemaRef,
    /// Left data columns, right data columns, all nullable.
    pub joined_schema: SchemaRef,
    /// `joined_schema` (the left columns for semi and anti joins) and `__op`.
    pub output_schema: SchemaRef,
    /// `table.exec.state.ttl`: a key idle on both sides for this long is
    /// forgotten without retracting its output.
    pub ttl: Option<std::time::Duration>,
}

/// The data columns (without `__op`) of a side.
fn data_columns(schema: &SchemaRef) -> usize {
    schema.fields().len() - usize::from(is_changelog(schema))
}

fn row_converter(schema: &SchemaRef) -> Result<RowConverter, EngineError> {
    let fields = schema.fields()[..data_columns(schema)]
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    Ok(RowConverter::new(fields)?)
}

struct Side {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_codec: RowConverter,
    row_codec: RowConverter,
    width: usize,
}

impl Side {
    fn updates(&self, batch: &RecordBatch, time: Watermark) -> Result<Updates, EngineError> {
        let row_rows = self
            .row_codec
            .convert_columns(&batch.columns()[..self.width])?;
        let diffs = diffs(batch)?;
        let keyed = KeyedBatch::new(batch.clone(), &self.keys, &self.key_codec)?;
        Ok(keyed
            .keys()
            .enumerate()
            .filter_map(|(i, key)| {
                let key = key?.to_vec();
                Some(((key, row_rows.row(i).as_ref().to_vec()), time, diffs[i]))
            })
            .collect())
    }
}

fn encode<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    sides: Arc<Sides>,
    left: bool,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Updates> {
    to_updates(
        input,
        "JoinInput",
        move |batch, time| {
            let side = if left { &sides.left } else { &sides.right };
            side.updates(batch, time)
        },
        context,
    )
}

pub fn regular_join<'scope>(
    left: Stream<'scope, Watermark, Batch>,
    right: Stream<'scope, Watermark, Batch>,
    spec: Arc<RegularJoin>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let key_codec = || crate::join::kernel::key_converter(&spec.left_keys, &spec.left_schema);
    let sides = Arc::new(Sides {
        left: Side {
            keys: spec.left_keys.clone(),
            key_codec: key_codec()?,
            row_codec: row_converter(&spec.left_schema)?,
            width: data_columns(&spec.left_schema),
        },
        right: Side {
            keys: spec.right_keys.clone(),
            key_codec: key_codec()?,
            row_codec: row_converter(&spec.right_schema)?,
            width: data_columns(&spec.right_schema),
        },
    });
    let lefts = encode(left, sides.clone(), true, context.clone());
    let rights = encode(right, sides.clone(), false, context.clone());
    let (lefts, rights, expired) = match spec.ttl {
        Some(ttl) => {
            let (lefts, rights, marks) = expiry::expire_pair(lefts, rights, ttl, context.clone());
            (lefts, rights, Some((marks, MarkBy::Row { skip: 1 })))
        }
        None => (lefts, rights, None),
    };
    let (lefts, rights) = (lefts.as_collection(), rights.as_collection());
    let pairs = lefts
        .clone()
        .join_map(rights.clone(), |_key, l: &Vec<u8>, r: &Vec<u8>| {
            (l.clone(), r.clone())
        });
    let matched = match &spec.filter {
        None => pairs,
        Some(_) => {
            filter_pairs(pairs.inner, spec.clone(), sides.clone(), context.clone()).as_collection()
        }
    };
    // A side's rows without a match are found by their own value, so rows
    // that are equal (and so match alike) keep their multiplicity.
    let matched_rows = |left_side: bool| {
        matched
            .clone()
            .map(move |(l, r)| if left_side { l } else { r })
            .distinct()
    };
    let by_row = |side: VecCollection<'scope, Watermark, (Vec<u8>, Vec<u8>)>| {
        side.map(|(_key, row)| (row, ()))
    };
    // An empty side in an output pair is that side's NULL row.
    let output = match spec.kind {
        RegularJoinKind::Inner => matched,
        RegularJoinKind::Semi => by_row(lefts)
            .semijoin(matched_rows(true))
            .map(|(row, ())| (row, Vec::new())),
        RegularJoinKind::Anti => by_row(lefts)
            .antijoin(matched_rows(true))
            .map(|(row, ())| (row, Vec::new())),
        RegularJoinKind::Left | RegularJoinKind::Right | RegularJoinKind::Full => {
            let mut output = matched.clone();
            if matches!(spec.kind, RegularJoinKind::Left | RegularJoinKind::Full) {
                let lonely = by_row(lefts)
                    .antijoin(matched_rows(true))
                    .map(|(row, ())| (row, Vec::new()));
                output = output.concat(lonely);
            }
            if matches!(spec.kind, RegularJoinKind::Right | RegularJoinKind::Full) {
                let lonely = by_row(rights)
                    .antijoin(matched_rows(false))
                    .map(|(row, ())| (Vec::new(), row));
                output = output.concat(lonely);
            }
            output
        }
    };
    let decode: DecodeFn = Arc::new(move |updates| decode_pairs(&spec, &sides, updates));
    Ok(to_changelog(
        output.inner,
        expired,
        "RegularJoinOutput",
        decode,
        context,
    ))
}

struct Sides {
    left: Side,
    right: Side,
}

/// Keeps the pairs that pass the join's extra condition, a container of
/// pairs at a time.
fn filter_pairs<'scope>(
    pairs: Stream<'scope, Watermark, PairUpdates>,
    spec: Arc<RegularJoin>,
    sides: Arc<Sides>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, PairUpdates> {
    pairs.unary::<CapacityContainerBuilder<PairUpdates>, _, _, _>(
        Pipeline,
        "JoinCondition",
        move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let kept = (|| {
                        let joined =
                            joined_batch(&spec, &sides, data.iter().map(|((l, r), _, _)| (l, r)))?;
                        let mask = passing(&spec, &joined)?;
                        Ok::<_, EngineError>(
                            data.drain(..)
                                .zip(mask)
                                .filter(|(_, keep)| *keep)
                                .map(|(update, _)| update)
                                .collect::<PairUpdates>(),
                        )
                    })();
                    match kept {
                        Ok(mut kept) if !kept.is_empty() => {
                            output.session(&cap).give_container(&mut kept)
                        }
                        Ok(_) => {}
                        Err(error) => context.fail(error),
                    }
                });
            }
        },
    )
}

type PairUpdates = Vec<((Vec<u8>, Vec<u8>), Watermark, isize)>;

/// Whether each row of `joined` passes the join's condition (NULL fails).
fn passing(spec: &RegularJoin, joined: &RecordBatch) -> Result<Vec<bool>, EngineError> {
    let Some(condition) = &spec.filter else {
        return Ok(vec![true; joined.num_rows()]);
    };
    let mask = condition.evaluate(joined)?.into_array(joined.num_rows())?;
    Ok(datafusion::arrow::array::AsArray::as_boolean(mask.as_ref())
        .iter()
        .map(|b| b.unwrap_or(false))
        .collect())
}

/// Decodes one side's rows; an empty row is that side's NULL row.
fn side_columns<'a>(
    side: &Side,
    rows: impl Iterator<Item = &'a Vec<u8>>,
) -> Result<Vec<ArrayRef>, EngineError> {
    let parser = side.row_codec.parser();
    let mut present = Vec::new();
    let indices: Vec<Option<u32>> = rows
        .map(|row| {
            if row.is_empty() {
                None
            } else {
                present.push(parser.parse(row));
                Some(present.len() as u32 - 1)
            }
        })
        .collect();
    let values = side.row_codec.convert_rows(present)?;
    let all_present = indices.iter().all(Option::is_some);
    if all_present {
        return Ok(values);
    }
    let indices = datafusion::arrow::array::UInt32Array::from(indices);
    Ok(values
        .iter()
        .map(|v| datafusion::arrow::compute::take(v.as_ref(), &indices, None))
        .collect::<Result<_, _>>()?)
}

fn joined_batch<'a>(
    spec: &RegularJoin,
    sides: &Sides,
    pairs: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> + Clone,
) -> Result<RecordBatch, EngineError> {
    let rows = pairs.clone().count();
    let mut columns = side_columns(&sides.left, pairs.clone().map(|(l, _)| l))?;
    columns.extend(side_columns(&sides.right, pairs.map(|(_, r)| r))?);
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        spec.joined_schema.clone(),
        columns,
        &options,
    )?)
}

fn decode_pairs(
    spec: &RegularJoin,
    sides: &Sides,
    updates: &[(Vec<u8>, Vec<u8>, isize)],
) -> Result<RecordBatch, EngineError> {
    let mut kinds = Vec::new();
    let mut picks: Vec<usize> = Vec::new();
    for (i, (_, _, diff)) in updates.iter().enumerate() {
        let kind = if *diff > 0 {
            RowKind::Insert
        } else {
            RowKind::Delete
        };
        for _ in 0..diff.unsigned_abs() {
            kinds.push(kind);
            picks.push(i);
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(picks.len()));
    let mut columns = if matches!(spec.kind, RegularJoinKind::Semi | RegularJoinKind::Anti) {
        side_columns(&sides.left, picks.iter().map(|&i| &updates[i].0))?
    } else {
        joined_batch(
            spec,
            sides,
            picks.iter().map(|&i| (&updates[i].0, &updates[i].1)),
        )?
        .columns()
        .to_vec()
    };
    columns.push(changelog::op_array(&kinds));
    Ok(RecordBatch::try_new_with_options(
        spec.output_schema.clone(),
        columns,
        &options,
    )?)
}
