//! An unwindowed `GROUP BY`: per key, the aggregates of every row the key
//! has now. Differential keeps each key's rows (as Arrow row bytes with
//! their multiplicities); when they change, the key's aggregates are
//! recomputed from them with DataFusion's accumulators, so MIN and MAX
//! survive retractions and every DataFusion aggregate works.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::scalar::ScalarValue;
use differential_dataflow::collection::AsCollection;
use timely::dataflow::Stream;

use crate::batch::Batch;
use crate::changelog::{self, diffs};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::Watermark;
use crate::updating::expiry;

pub use crate::changelog::Updates;

pub struct GroupAggregate {
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    pub filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// The input's columns (a trailing `__op` if it is a changelog).
    pub input_schema: SchemaRef,
    /// Keys, then aggregates, then `__op`.
    pub output_schema: SchemaRef,
    /// `table.exec.state.ttl`: a key not updated for this long is
    /// forgotten without retracting its result.
    pub ttl: Option<std::time::Duration>,
}

/// Row formats for the keys, the aggregate inputs and the results.
struct Codecs {
    keys: RowConverter,
    values: RowConverter,
    results: RowConverter,
    /// For aggregate `i`, its argument columns in a decoded value, and the
    /// column of its FILTER (if any).
    arguments: Vec<(std::ops::Range<usize>, Option<usize>)>,
}

impl GroupAggregate {
    fn codecs(&self) -> Result<Codecs, EngineError> {
        let schema = &self.input_schema;
        let sort = |t: DataType| SortField::new(t);
        let mut values = Vec::new();
        let mut arguments = Vec::new();
        for (aggregate, filter) in self.aggregates.iter().zip(&self.filters) {
            let start = values.len();
            for argument in aggregate.expressions() {
                values.push(sort(argument.data_type(schema)?));
            }
            let end = values.len();
            let filter_column = filter.as_ref().map(|_| {
                values.push(sort(DataType::Boolean));
                end
            });
            arguments.push((start..end, filter_column));
        }
        let key_count = self.keys.len();
        let results = self.output_schema.fields()[key_count..key_count + self.aggregates.len()]
            .iter()
            .map(|f| sort(f.data_type().clone()))
            .collect();
        Ok(Codecs {
            keys: crate::join::kernel::key_converter(&self.keys, schema)?,
            values: RowConverter::new(values)?,
            results: RowConverter::new(results)?,
            arguments,
        })
    }

    /// One update per input row: its key, its aggregate inputs, its diff.
    fn updates(
        &self,
        codecs: &Codecs,
        batch: &RecordBatch,
        time: Watermark,
    ) -> Result<Updates, EngineError> {
        let n = batch.num_rows();
        let evaluate = |e: &Arc<dyn PhysicalExpr>| e.evaluate(batch).and_then(|v| v.into_array(n));
        let keys = self
            .keys
            .iter()
            .map(evaluate)
            .collect::<Result<Vec<_>, _>>()?;
        let mut values: Vec<ArrayRef> = Vec::new();
        for (aggregate, filter) in self.aggregates.iter().zip(&self.filters) {
            for argument in aggregate.expressions() {
                values.push(evaluate(&argument)?);
            }
            if let Some(filter) = filter {
                let mask = evaluate(filter)?;
                // A NULL condition filters the row out, as FALSE does.
                let mask: BooleanArray = mask
                    .as_boolean()
                    .iter()
                    .map(|b| Some(b.unwrap_or(false)))
                    .collect();
                values.push(Arc::new(mask));
            }
        }
        let key_rows = encode_rows(&codecs.keys, &keys, n)?;
        let value_rows = encode_rows(&codecs.values, &values, n)?;
        let diffs = diffs(batch)?;
        Ok(key_rows
            .into_iter()
            .zip(value_rows)
            .zip(diffs)
            .map(|(pair, diff)| (pair, time, diff))
            .collect())
    }

    /// The aggregates over a key's current rows, as result row bytes.
    fn aggregate(
        &self,
        codecs: &Codecs,
        rows: &[(&Vec<u8>, isize)],
    ) -> Result<Vec<u8>, EngineError> {
        let parser = codecs.values.parser();
        let repeated = rows
            .iter()
            .flat_map(|(bytes, count)| std::iter::repeat_n(*bytes, (*count).max(0) as usize))
            .map(|bytes| parser.parse(bytes));
        let columns = if codecs
            .arguments
            .iter()
            .all(|(r, f)| r.is_empty() && f.is_none())
        {
            Vec::new()
        } else {
            codecs.values.convert_rows(repeated)?
        };
        let mut results: Vec<ArrayRef> = Vec::with_capacity(self.aggregates.len());
        for (aggregate, (range, filter_column)) in self.aggregates.iter().zip(&codecs.arguments) {
            let mut arguments: Vec<ArrayRef> = columns[range.clone()].to_vec();
            if let Some(f) = filter_column {
                let mask = columns[*f].as_boolean().clone();
                arguments = arguments
                    .iter()
                    .map(|a| filter(a.as_ref(), &mask))
                    .collect::<Result<_, _>>()?;
            }
            let mut accumulator = aggregate.create_accumulator()?;
            accumulator.update_batch(&arguments)?;
            let value: ScalarValue = accumulator.evaluate()?;
            results.push(value.to_array_of_size(1)?);
        }
        Ok(encode_rows(&codecs.results, &results, 1)?.swap_remove(0))
    }
}

/// Runs the aggregation; its output is a changelog (`+I`, `-U`/`+U`, `-D`
/// per key) emitted as the watermark passes each time.
pub fn group_aggregate<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<GroupAggregate>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let codecs = Arc::new(spec.codecs()?);
    let (encode_spec, encode_codecs) = (spec.clone(), codecs.clone());
    let (updates, expired) = expiry::keyed_updates(
        input,
        "GroupAggregateInput",
        move |batch, time| encode_spec.updates(&encode_codecs, batch, time),
        spec.ttl,
        context.clone(),
    );
    let (reduce_spec, reduce_codecs, reduce_context) =
        (spec.clone(), codecs.clone(), context.clone());
    let results = updates.as_collection().reduce_named(
        "GroupAggregate",
        move |_key, rows: &[(&Vec<u8>, isize)], output: &mut Vec<(Vec<u8>, isize)>| {
            if rows.iter().map(|(_, c)| *c).sum::<isize>() <= 0 {
                return;
            }
            match reduce_spec.aggregate(&reduce_codecs, rows) {
                Ok(row) => output.push((row, 1)),
                Err(error) => reduce_context.fail(error),
            }
        },
    );
    Ok(crate::updating::join::to_changelog(
        results.inner,
        expired,
        "GroupAggregateOutput",
        Arc::new(move |updates: &[(Vec<u8>, Vec<u8>, isize)]| {
            decode_results(&spec, &codecs, updates)
        }),
        context,
    ))
}

/// Keys and results of paired updates as a changelog batch.
fn decode_results(
    spec: &GroupAggregate,
    codecs: &Codecs,
    updates: &[(Vec<u8>, Vec<u8>, isize)],
) -> Result<RecordBatch, EngineError> {
    type KeyedResult<'a> = (&'a [u8], (&'a [u8], &'a [u8]), isize);
    let keyed: Vec<KeyedResult<'_>> = updates
        .iter()
        .map(|(k, v, d)| (k.as_slice(), (k.as_slice(), v.as_slice()), *d))
        .collect();
    let paired = changelog::pair_updates(&keyed);
    let mut columns = decode_rows(
        &codecs.keys,
        spec.keys.len(),
        paired.iter().map(|((k, _), _)| *k),
    )?;
    columns.extend(decode_rows(
        &codecs.results,
        spec.aggregates.len(),
        paired.iter().map(|((_, v), _)| *v),
    )?);
    let kinds: Vec<_> = paired.iter().map(|(_, kind)| *kind).collect();
    columns.push(changelog::op_array(&kinds));
    output_batch(&spec.output_schema, columns, kinds.len())
}

/// Keys, aggregates and `__op` as a batch of the output schema: an
/// aggregate's value may come out in a type of its own family (an
/// accumulator's Int64 for an INT column, say), so each column is cast.
pub(crate) fn output_batch(
    schema: &SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch, EngineError> {
    let options =
        datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                datafusion::arrow::compute::cast(&c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}

/// Each row's bytes in `converter`'s format; no columns (a global
/// aggregate's key, DISTINCT's aggregates) give empty rows.
fn encode_rows(
    converter: &RowConverter,
    columns: &[ArrayRef],
    rows: usize,
) -> Result<Vec<Vec<u8>>, EngineError> {
    if columns.is_empty() {
        return Ok(vec![Vec::new(); rows]);
    }
    let encoded = converter.convert_columns(columns)?;
    Ok(encoded.iter().map(|r| r.as_ref().to_vec()).collect())
}

/// Decodes rows of `columns` columns; none decode to no arrays.
fn decode_rows<'a>(
    converter: &RowConverter,
    columns: usize,
    rows: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<ArrayRef>, EngineError> {
    if columns == 0 {
        return Ok(Vec::new());
    }
    let parser = converter.parser();
    Ok(converter.convert_rows(rows.map(|r| parser.parse(r)))?)
}
