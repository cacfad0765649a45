//! Top-N over an append-only input (`ROW_NUMBER() ... <= N`, keep-last
//! deduplication): each partition keeps only its N best rows, sorted by
//! their sort key in Arrow's row format, and a new row that enters the top
//! N retracts and re-emits the rows whose number it changes. Rows that can
//! never come back (an append-only input never retracts) need not be kept,
//! unlike in the differential top-N, which is kept for changelog inputs.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::UInt64Array;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::row::{RowConverter, SortField};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::exchange;
use crate::time::Watermark;
use crate::updating::changelog::{RowKind, op_array};
use crate::updating::top_n::{Codecs, TopN};

/// A kept row: its sort key followed by the row itself (ties broken by the
/// row, as the differential top-N does), and the row.
struct Entry {
    order: Vec<u8>,
    row: Vec<u8>,
}

struct State {
    spec: Arc<TopN>,
    limit: usize,
    codecs: Codecs,
    order: RowConverter,
    kept: HashMap<Vec<u8>, Vec<Entry>>,
}

/// The output being built: rows (as row bytes), numbers and kinds.
#[derive(Default)]
struct Changes {
    rows: Vec<Vec<u8>>,
    ranks: Vec<u64>,
    kinds: Vec<RowKind>,
}

impl State {
    fn absorb(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>, EngineError> {
        let n = batch.num_rows();
        let partition_keys = self.spec.partition_keys(&self.codecs, batch)?;
        let order_columns = self
            .spec
            .order
            .iter()
            .map(|(e, _)| e.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<Result<Vec<_>, _>>()?;
        let order_rows = if order_columns.is_empty() {
            None
        } else {
            Some(self.order.convert_columns(&order_columns)?)
        };
        let data_rows = self.codecs.rows.convert_columns(batch.columns())?;
        let mut changes = Changes::default();
        for (i, key) in partition_keys.into_iter().enumerate() {
            let row = data_rows.row(i).as_ref().to_vec();
            let mut order = order_rows
                .as_ref()
                .map(|r| r.row(i).as_ref().to_vec())
                .unwrap_or_default();
            order.extend_from_slice(&row);
            let entries = self.kept.entry(key).or_default();
            if entries.len() == self.limit && entries.last().is_some_and(|last| order >= last.order)
            {
                continue;
            }
            let at = entries.partition_point(|e| e.order <= order);
            // Every row from `at` on changes its number (or leaves).
            for (rank, entry) in entries.iter().enumerate().skip(at) {
                changes.rows.push(entry.row.clone());
                changes.ranks.push(rank as u64 + 1);
                changes.kinds.push(RowKind::UpdateBefore);
            }
            let had = entries.len();
            entries.insert(at, Entry { order, row });
            entries.truncate(self.limit);
            for (rank, entry) in entries.iter().enumerate().skip(at) {
                changes.rows.push(entry.row.clone());
                changes.ranks.push(rank as u64 + 1);
                let kind = if rank < had {
                    RowKind::UpdateAfter
                } else {
                    RowKind::Insert
                };
                changes.kinds.push(kind);
            }
        }
        if changes.rows.is_empty() {
            return Ok(None);
        }
        let parser = self.codecs.rows.parser();
        let mut columns = self
            .codecs
            .rows
            .convert_rows(changes.rows.iter().map(|r| parser.parse(r)))?;
        columns.push(Arc::new(UInt64Array::from(changes.ranks)));
        columns.push(op_array(&changes.kinds));
        let options = RecordBatchOptions::new().with_row_count(Some(changes.kinds.len()));
        Ok(Some(RecordBatch::try_new_with_options(
            self.spec.output_schema.clone(),
            columns,
            &options,
        )?))
    }
}

/// Runs the top-N; `spec.limit` must be set (an unlimited numbering keeps
/// every row, which the differential top-N does).
pub fn append_top_n<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<TopN>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    let limit = spec
        .limit
        .ok_or_else(|| EngineError::Plan("an append-only top-N needs a limit".into()))?;
    let schema = &spec.input_schema;
    let codecs = spec.codecs()?;
    let order = RowConverter::new(
        spec.order
            .iter()
            .map(|(e, options)| Ok(SortField::new_with_options(e.data_type(schema)?, *options)))
            .collect::<Result<Vec<_>, EngineError>>()?,
    )?;
    let route = spec.partition.clone();
    Ok(input.unary::<CapacityContainerBuilder<Batch>, _, _, _>(
        exchange::by_key(route),
        "TopN",
        move |_cap, _info| {
            let mut state = State {
                spec,
                limit,
                codecs,
                order,
                kept: HashMap::new(),
            };
            move |input, output| {
                input.for_each(|cap, data| {
                    let Some(batch) = data.take() else { return };
                    match state.absorb(&batch) {
                        Ok(Some(out)) => output.session(&cap).give_container(&mut Batch::new(out)),
                        Ok(None) => {}
                        Err(error) => context.fail(error),
                    }
                });
            }
        },
    ))
}
