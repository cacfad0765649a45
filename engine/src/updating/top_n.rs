//! `ROW_NUMBER() OVER (PARTITION BY k ORDER BY ...)` over a whole stream,
//! usually cut to `rn <= N`: per partition, the first N rows in order, with
//! their numbers, recomputed when the partition's rows change. Keeping the
//! last row per key (`ORDER BY ts DESC`, `rn = 1`) is this with N = 1.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt64Array};
use datafusion::arrow::compute::{SortColumn, SortOptions, lexsort_to_indices};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use differential_dataflow::collection::AsCollection;
use timely::dataflow::Stream;

use crate::batch::Batch;
use crate::changelog::Updates;
use crate::changelog::{self, diffs, is_changelog};
use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::Watermark;
use crate::updating::expiry;
use crate::updating::join::{DecodeFn, to_changelog};

pub struct TopN {
    pub partition: Vec<usize>,
    pub order: Vec<(Arc<dyn PhysicalExpr>, SortOptions)>,
    /// Rows kept per partition; `None` numbers them all.
    pub limit: Option<usize>,
    /// The input's columns (a trailing `__op` if it is a changelog).
    pub input_schema: SchemaRef,
    /// The input's data columns, the row number, `__op`.
    pub output_schema: SchemaRef,
    /// `table.exec.state.ttl`: a partition not updated for this long is
    /// forgotten without retracting its rows.
    pub ttl: Option<std::time::Duration>,
}

pub(crate) struct Codecs {
    pub(crate) keys: RowConverter,
    pub(crate) rows: RowConverter,
    pub(crate) width: usize,
}

impl TopN {
    pub(crate) fn codecs(&self) -> Result<Codecs, EngineError> {
        let schema = &self.input_schema;
        let width = schema.fields().len() - usize::from(is_changelog(schema));
        let field = |i: usize| SortField::new(schema.field(i).data_type().clone());
        Ok(Codecs {
            keys: RowConverter::new(self.partition.iter().map(|&i| field(i)).collect())?,
            rows: RowConverter::new((0..width).map(field).collect())?,
            width,
        })
    }

    fn updates(
        &self,
        codecs: &Codecs,
        batch: &RecordBatch,
        time: Watermark,
    ) -> Result<Updates, EngineError> {
        let key_rows = self.partition_keys(codecs, batch)?;
        let rows = codecs
            .rows
            .convert_columns(&batch.columns()[..codecs.width])?;
        let diffs = diffs(batch)?;
        Ok(key_rows
            .into_iter()
            .zip(rows.iter())
            .zip(diffs)
            .map(|((key, row), diff)| ((key, row.as_ref().to_vec()), time, diff))
            .collect())
    }

    /// Each row's partition key in row format (empty without PARTITION BY).
    pub(crate) fn partition_keys(
        &self,
        codecs: &Codecs,
        batch: &RecordBatch,
    ) -> Result<Vec<Vec<u8>>, EngineError> {
        if self.partition.is_empty() {
            return Ok(vec![Vec::new(); batch.num_rows()]);
        }
        let keys: Vec<ArrayRef> = self
            .partition
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let rows = codecs.keys.convert_columns(&keys)?;
        Ok(rows.iter().map(|r| r.as_ref().to_vec()).collect())
    }

    /// The first `limit` rows of a partition, each as its row bytes followed
    /// by its number (8 bytes, big-endian).
    fn rank(
        &self,
        codecs: &Codecs,
        rows: &[(&Vec<u8>, isize)],
    ) -> Result<Vec<Vec<u8>>, EngineError> {
        let parser = codecs.rows.parser();
        let expanded: Vec<&Vec<u8>> = rows
            .iter()
            .flat_map(|(bytes, count)| std::iter::repeat_n(*bytes, (*count).max(0) as usize))
            .collect();
        let columns = codecs
            .rows
            .convert_rows(expanded.iter().map(|b| parser.parse(b)))?;
        let fields: Vec<_> = self.input_schema.fields()[..codecs.width].to_vec();
        let options = RecordBatchOptions::new().with_row_count(Some(expanded.len()));
        let batch = RecordBatch::try_new_with_options(
            Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
            columns,
            &options,
        )?;
        let mut sort = Vec::with_capacity(self.order.len() + 1);
        for (expr, options) in &self.order {
            sort.push(SortColumn {
                values: expr.evaluate(&batch)?.into_array(batch.num_rows())?,
                options: Some(*options),
            });
        }
        // Ties are broken by the row itself, so every worker count and
        // arrival order numbers a partition the same way.
        let whole: Vec<ArrayRef> = (0..codecs.width).map(|i| batch.column(i).clone()).collect();
        for column in whole {
            sort.push(SortColumn {
                values: column,
                options: None,
            });
        }
        let indices = lexsort_to_indices(&sort, self.limit)?;
        Ok(indices
            .values()
            .iter()
            .enumerate()
            .map(|(rank, &i)| {
                let mut bytes = expanded[i as usize].clone();
                bytes.extend_from_slice(&(rank as u64 + 1).to_be_bytes());
                bytes
            })
            .collect())
    }
}

pub fn top_n<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<TopN>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let codecs = Arc::new(spec.codecs()?);
    let (encode_spec, encode_codecs) = (spec.clone(), codecs.clone());
    let (updates, expired) = expiry::keyed_updates(
        input,
        "TopNInput",
        move |batch, time| encode_spec.updates(&encode_codecs, batch, time),
        spec.ttl,
        context.clone(),
    );
    let (rank_spec, rank_codecs, rank_context) = (spec.clone(), codecs.clone(), context.clone());
    let ranked = updates.as_collection().reduce_named(
        "TopN",
        move |_key, rows: &[(&Vec<u8>, isize)], output: &mut Vec<(Vec<u8>, isize)>| match rank_spec
            .rank(&rank_codecs, rows)
        {
            Ok(ranked) => output.extend(ranked.into_iter().map(|r| (r, 1))),
            Err(error) => rank_context.fail(error),
        },
    );
    let decode: DecodeFn = Arc::new(move |updates| decode_ranked(&spec, &codecs, updates));
    Ok(to_changelog(
        ranked.inner,
        expired,
        "TopNOutput",
        decode,
        context,
    ))
}

fn decode_ranked(
    spec: &TopN,
    codecs: &Codecs,
    updates: &[(Vec<u8>, Vec<u8>, isize)],
) -> Result<RecordBatch, EngineError> {
    let paired = changelog::pair_updates(updates);
    let parser = codecs.rows.parser();
    let split = |bytes: &[u8]| -> (Vec<u8>, u64) {
        let (row, rank) = bytes.split_at(bytes.len().saturating_sub(8));
        let mut number = [0u8; 8];
        number.copy_from_slice(rank);
        (row.to_vec(), u64::from_be_bytes(number))
    };
    let decoded: Vec<(Vec<u8>, u64)> = paired.iter().map(|(v, _)| split(v)).collect();
    let mut columns = codecs
        .rows
        .convert_rows(decoded.iter().map(|(row, _)| parser.parse(row)))?;
    columns.push(Arc::new(UInt64Array::from_iter_values(
        decoded.iter().map(|(_, rank)| *rank),
    )));
    let kinds: Vec<_> = paired.iter().map(|(_, kind)| *kind).collect();
    columns.push(changelog::op_array(&kinds));
    let options = RecordBatchOptions::new().with_row_count(Some(kinds.len()));
    Ok(RecordBatch::try_new_with_options(
        spec.output_schema.clone(),
        columns,
        &options,
    )?)
}
