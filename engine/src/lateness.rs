//! Event times of a batch, and the rows that are late for a watermark.
//! Sources drop late rows; window and session operators drop them again so
//! that they stay correct for any input (a window over another's results).

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::aggregate::millis;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::{Millis, Watermark};

/// Each row's event time, in milliseconds.
pub fn event_times(
    expr: &dyn PhysicalExpr,
    batch: &RecordBatch,
) -> Result<Vec<Millis>, EngineError> {
    millis(&expr.evaluate(batch)?.into_array(batch.num_rows())?)
}

/// The rows at or after `watermark`, with their event times. Late rows are
/// counted in `context` and dropped; a batch with none is not copied.
pub fn drop_late(
    batch: RecordBatch,
    times: Vec<Millis>,
    watermark: Watermark,
    context: &JobContext,
) -> Result<(RecordBatch, Vec<Millis>), EngineError> {
    let late = times.iter().filter(|&&t| t < watermark).count();
    if late == 0 {
        return Ok((batch, times));
    }
    JobContext::add(&context.late_records, late);
    let keep: BooleanArray = times.iter().map(|&t| Some(t >= watermark)).collect();
    let on_time = filter_record_batch(&batch, &keep)?;
    Ok((
        on_time,
        times.into_iter().filter(|&t| t >= watermark).collect(),
    ))
}
