//! A regular (unwindowed) inner equi-join: both inputs kept in
//! differential arrangements by key, so a row joins every row of the other
//! side that has ever arrived and retractions on either side retract their
//! pairs. The extra condition is applied to the decoded pairs.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use differential_dataflow::collection::AsCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::Watermark;
use crate::updating::changelog::{self, RowKind, diffs, is_changelog};
use crate::updating::group_aggregate::Updates;

/// Turns one complete time's updates `(key, value, diff)` (sorted by key)
/// into a changelog batch.
pub type DecodeFn =
    Arc<dyn Fn(&[(Vec<u8>, Vec<u8>, isize)]) -> Result<RecordBatch, EngineError> + Send + Sync>;

/// Collects differential's output per time and, once the frontier has
/// passed a time, hands its consolidated updates to `decode`.
pub fn to_changelog<'scope>(
    updates: Stream<'scope, Watermark, Updates>,
    name: &str,
    decode: DecodeFn,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    updates.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
        Pipeline,
        name,
        move |_cap, _info| {
            type Pending = (Capability<Watermark>, Vec<(Vec<u8>, Vec<u8>, isize)>);
            let mut stash: BTreeMap<Watermark, Pending> = BTreeMap::new();
            move |(input, frontier), output| {
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
                while let Some(entry) = stash.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (cap, mut updates) = entry.remove();
                    updates.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
                    consolidate(&mut updates);
                    if updates.is_empty() {
                        continue;
                    }
                    match decode(&updates) {
                        Ok(batch) if batch.num_rows() > 0 => {
                            output.session(&cap).give_container(&mut Batch::new(batch))
                        }
                        Ok(_) => {}
                        Err(error) => context.fail(error),
                    }
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
    /// Left rows with (semi) or without (anti) a matching right row;
    /// the planner swaps the sides for right semi and anti joins.
    Semi,
    Anti,
}

pub struct RegularJoin {
    pub kind: RegularJoinKind,
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Over the left columns then the right columns (inner joins only).
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Each side's columns (with a trailing `__op` if a changelog).
    pub left_schema: SchemaRef,
    pub right_schema: SchemaRef,
    /// Left data columns, right data columns, all nullable.
    pub joined_schema: SchemaRef,
    /// `joined_schema` (the left columns for semi and anti joins) and `__op`.
    pub output_schema: SchemaRef,
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
        let n = batch.num_rows();
        let keys = self
            .keys
            .iter()
            .map(|k| k.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<Result<Vec<_>, _>>()?;
        // SQL equality: a NULL key matches nothing.
        let valid: Vec<bool> = (0..n).map(|i| keys.iter().all(|k| !k.is_null(i))).collect();
        let key_rows = self.key_codec.convert_columns(&keys)?;
        let row_rows = self
            .row_codec
            .convert_columns(&batch.columns()[..self.width])?;
        let diffs = diffs(batch)?;
        Ok((0..n)
            .filter(|&i| valid[i])
            .map(|i| {
                (
                    (
                        key_rows.row(i).as_ref().to_vec(),
                        row_rows.row(i).as_ref().to_vec(),
                    ),
                    time,
                    diffs[i],
                )
            })
            .collect())
    }
}

fn encode<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    side: Arc<Side>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Updates> {
    input.unary::<CapacityContainerBuilder<Updates>, _, _, _>(
        Pipeline,
        "JoinInput",
        move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let Some(batch) = data.take() else { return };
                    let time = cap.least().copied().unwrap_or(Watermark::MIN);
                    match side.updates(&batch, time) {
                        Ok(mut updates) if !updates.is_empty() => {
                            output.session(&cap).give_container(&mut updates)
                        }
                        Ok(_) => {}
                        Err(error) => context.fail(error),
                    }
                });
            }
        },
    )
}

pub fn regular_join<'scope>(
    left: Stream<'scope, Watermark, Batch>,
    right: Stream<'scope, Watermark, Batch>,
    spec: Arc<RegularJoin>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let key_codec = || crate::join::key_converter(&spec.left_keys, &spec.left_schema);
    let left_side = Arc::new(Side {
        keys: spec.left_keys.clone(),
        key_codec: key_codec()?,
        row_codec: row_converter(&spec.left_schema)?,
        width: data_columns(&spec.left_schema),
    });
    let right_side = Arc::new(Side {
        keys: spec.right_keys.clone(),
        key_codec: key_codec()?,
        row_codec: row_converter(&spec.right_schema)?,
        width: data_columns(&spec.right_schema),
    });
    let lefts = encode(left, left_side.clone(), context.clone()).as_collection();
    let rights = encode(right, right_side.clone(), context.clone()).as_collection();
    // Pairs are keyed by themselves: a join row has no key to update by,
    // so its changes are inserts and deletes.
    let pairs = match spec.kind {
        RegularJoinKind::Inner => lefts.join_map(rights, |_key, l: &Vec<u8>, r: &Vec<u8>| {
            (l.clone(), r.clone())
        }),
        RegularJoinKind::Semi | RegularJoinKind::Anti => {
            let right_keys = rights.map(|(key, _)| key).distinct();
            let matched = match spec.kind {
                RegularJoinKind::Semi => lefts.semijoin(right_keys),
                _ => lefts.antijoin(right_keys),
            };
            matched.map(|(_key, row)| (row, Vec::new()))
        }
    };
    let decode: DecodeFn =
        Arc::new(move |updates| decode_pairs(&spec, &left_side, &right_side, updates));
    Ok(to_changelog(
        pairs.inner,
        "RegularJoinOutput",
        decode,
        context,
    ))
}

fn decode_pairs(
    spec: &RegularJoin,
    left: &Side,
    right: &Side,
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
    let left_parser = left.row_codec.parser();
    let right_parser = right.row_codec.parser();
    let mut columns: Vec<ArrayRef> = left
        .row_codec
        .convert_rows(picks.iter().map(|&i| left_parser.parse(&updates[i].0)))?;
    let options = RecordBatchOptions::new().with_row_count(Some(picks.len()));
    if spec.kind != RegularJoinKind::Inner {
        columns.push(changelog::op_array(&kinds));
        return Ok(RecordBatch::try_new_with_options(
            spec.output_schema.clone(),
            columns,
            &options,
        )?);
    }
    columns.extend(
        right
            .row_codec
            .convert_rows(picks.iter().map(|&i| right_parser.parse(&updates[i].1)))?,
    );
    let joined = RecordBatch::try_new_with_options(spec.joined_schema.clone(), columns, &options)?;
    let (joined, kinds) = match &spec.filter {
        None => (joined, kinds),
        Some(condition) => {
            let mask = condition.evaluate(&joined)?.into_array(joined.num_rows())?;
            let mask: BooleanArray = datafusion::arrow::array::AsArray::as_boolean(mask.as_ref())
                .iter()
                .map(|b| Some(b.unwrap_or(false)))
                .collect();
            let kept: Vec<RowKind> = kinds
                .iter()
                .zip(mask.iter())
                .filter(|(_, keep)| keep.unwrap_or(false))
                .map(|(k, _)| *k)
                .collect();
            (filter_record_batch(&joined, &mask)?, kept)
        }
    };
    let mut columns = joined.columns().to_vec();
    columns.push(changelog::op_array(&kinds));
    let options = RecordBatchOptions::new().with_row_count(Some(kinds.len()));
    Ok(RecordBatch::try_new_with_options(
        spec.output_schema.clone(),
        columns,
        &options,
    )?)
}
