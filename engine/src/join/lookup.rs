//! The lookup join, Flink's processing-time temporal join against an
//! external table (`JOIN dim FOR SYSTEM_TIME AS OF o.proc_time AS d ON
//! o.k = d.k`): each probe batch's distinct keys are looked up in the table
//! as it is when the batch passes (through the connector's cache, if it
//! has one), and the rows found joined by the hash-join kernel. Each
//! worker has its own lookup source (connection and cache).
//!
//! A checkpoint holds nothing of it: every probe batch is looked up and
//! its result given out at once, so no row waits in the operator between
//! batches, and the cache is only a copy of the external table, which a
//! resumed job reads afresh. Flink's lookup join keeps no state either.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::kernel::JoinSpec;
use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::fast_hash::HashMap;
use crate::time::Watermark;

/// Rows of an external table by key, on one worker.
pub trait LookupSource {
    /// Every row whose key columns equal one of `keys`' rows (distinct,
    /// none NULL; its columns the lookup keys in order).
    fn lookup(&mut self, keys: &RecordBatch) -> Result<RecordBatch, EngineError>;
}

pub trait LookupProvider: Send + Sync {
    fn source(&self, worker: usize) -> Result<Box<dyn LookupSource>, EngineError>;
}

pub struct LookupJoin {
    /// Inner or left; the right side is the looked-up table's columns.
    pub join: JoinSpec,
    /// The probe's key columns, in the order of the table's lookup keys.
    pub probe_keys: Vec<usize>,
    /// The lookup keys' schema (the table's key columns).
    pub key_schema: SchemaRef,
    /// A condition on the table's rows alone, applied to the rows found.
    pub found_filter: Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    pub provider: Arc<dyn LookupProvider>,
}

pub fn lookup_join<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<LookupJoin>,
    worker: usize,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    input.unary::<CapacityContainerBuilder<Batch>, _, _, _>(
        Pipeline,
        "LookupJoin",
        move |_cap, _info| {
            let mut source = None;
            move |input, output| {
                input.for_each(|cap, data| {
                    let Some(batch) = data.take() else { return };
                    if context.failed() {
                        return;
                    }
                    if source.is_none() {
                        match spec.provider.source(worker) {
                            Ok(s) => source = Some(s),
                            Err(error) => return context.fail(error),
                        }
                    }
                    let Some(source) = source.as_mut() else {
                        return;
                    };
                    match join_batch(&spec, source.as_mut(), batch) {
                        Ok(Some(out)) if out.num_rows() > 0 => {
                            output.session(&cap).give_container(&mut Batch::new(out))
                        }
                        Ok(_) => {}
                        Err(error) => context.fail(error),
                    }
                });
            }
        },
    )
}

fn join_batch(
    spec: &LookupJoin,
    source: &mut dyn LookupSource,
    probe: RecordBatch,
) -> Result<Option<RecordBatch>, EngineError> {
    let columns: Vec<ArrayRef> = spec
        .probe_keys
        .iter()
        .map(|&c| probe.column(c).clone())
        .collect();
    let converter = RowConverter::new(
        columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )?;
    let rows = converter.convert_columns(&columns)?;
    let mut first_of: HashMap<&[u8], u32> = HashMap::default();
    for row in 0..probe.num_rows() {
        if columns.iter().all(|c| c.is_valid(row)) {
            first_of.entry(rows.row(row).data()).or_insert(row as u32);
        }
    }
    let mut distinct: Vec<u32> = first_of.into_values().collect();
    distinct.sort_unstable();
    let indices = UInt32Array::from(distinct);
    let key_columns = columns
        .iter()
        .zip(spec.key_schema.fields())
        .map(|(c, field)| {
            let taken = take(c.as_ref(), &indices, None)?;
            Ok(match taken.data_type() == field.data_type() {
                true => taken,
                false => datafusion::arrow::compute::cast(&taken, field.data_type())?,
            })
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    let keys = RecordBatch::try_new(spec.key_schema.clone(), key_columns)?;
    let mut found = match keys.num_rows() {
        0 => RecordBatch::new_empty(spec.join.right_schema.clone()),
        _ => source.lookup(&keys)?,
    };
    if let Some(filter) = &spec.found_filter {
        let mask = filter.evaluate(&found)?.into_array(found.num_rows())?;
        let mask = mask
            .as_any()
            .downcast_ref::<datafusion::arrow::array::BooleanArray>()
            .ok_or_else(|| EngineError::Plan("a join condition must be boolean".into()))?;
        found = datafusion::arrow::compute::filter_record_batch(&found, mask)?;
    }
    spec.join.join_all(&[probe], &[found])
}
