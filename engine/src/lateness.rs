//! Event times of a batch, and the rows that are late for a watermark.
//! Sources drop late rows; window and session operators drop them again so
//! that they stay correct for any input (a window over another's results).

use std::sync::Arc;

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::{Millis, Watermark};
use crate::window::state::millis;

/// Each row's event time, in milliseconds.
pub fn event_times(
    expr: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
) -> Result<Vec<Millis>, EngineError> {
    millis(&crate::stateless::eager_case::evaluate(expr, batch)?)
}

/// Whether a row at `time` is on time for `watermark`. A NULL time (which
/// `millis` makes `i64::MIN`) has no window and is always late: counted and
/// dropped, or sent to the late-rows table.
fn is_on_time(time: Millis, watermark: Watermark) -> bool {
    time >= watermark && time != Millis::MIN
}

/// Splits a batch at `watermark`: the rows at or after it with their event
/// times, and the late rows, if any. A batch with none late is not copied.
pub fn split_late(
    batch: RecordBatch,
    times: Vec<Millis>,
    watermark: Watermark,
) -> Result<(RecordBatch, Vec<Millis>, Option<RecordBatch>), EngineError> {
    if times.iter().all(|&t| is_on_time(t, watermark)) {
        return Ok((batch, times, None));
    }
    let on_time_mask: BooleanArray = times
        .iter()
        .map(|&t| Some(is_on_time(t, watermark)))
        .collect();
    let late_mask = datafusion::arrow::compute::not(&on_time_mask)?;
    let on_time = filter_record_batch(&batch, &on_time_mask)?;
    let late = filter_record_batch(&batch, &late_mask)?;
    Ok((
        on_time,
        times
            .into_iter()
            .filter(|&t| is_on_time(t, watermark))
            .collect(),
        Some(late),
    ))
}

/// The rows at or after `watermark`, with their event times. Late rows are
/// counted in `context` and dropped.
pub fn drop_late(
    batch: RecordBatch,
    times: Vec<Millis>,
    watermark: Watermark,
    context: &JobContext,
) -> Result<(RecordBatch, Vec<Millis>), EngineError> {
    let (on_time, times, late) = split_late(batch, times, watermark)?;
    if let Some(late) = late {
        JobContext::add(&context.late_records, late.num_rows());
    }
    Ok((on_time, times))
}

/// Counts late rows and hands them to the side output, if there is one.
pub fn hand_over_late(
    late: Option<RecordBatch>,
    watermark: Watermark,
    side_output: &mut Option<Box<dyn crate::sink::BatchSink>>,
    context: &JobContext,
) -> Result<(), EngineError> {
    let Some(late) = late else { return Ok(()) };
    JobContext::add(&context.late_records, late.num_rows());
    match side_output {
        Some(sink) => sink.write(late, watermark),
        None => Ok(()),
    }
}
