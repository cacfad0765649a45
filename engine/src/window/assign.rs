//! Window table function rows that are not aggregated (window top-N, window
//! deduplication, window joins, `SELECT * FROM TABLE(TUMBLE(...))`): each row
//! gets its windows' `window_start`, `window_end` and `window_time` and
//! travels at `window_end - 1`, so that an operator downstream has all rows
//! of a window once the watermark passes its end.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::lateness::drop_late;
use crate::time::{Millis, Watermark};
use crate::window::kind::{Window, WindowKind};
use crate::window::state::millis;

/// Where an output column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowColumn {
    Input(usize),
    Start,
    End,
    /// `window_end - 1 ms`, Flink's `window_time`.
    Time,
}

pub struct WindowAssign {
    pub kind: WindowKind,
    /// The input column that windows are assigned by.
    pub time: usize,
    pub columns: Vec<WindowColumn>,
    pub schema: SchemaRef,
}

impl WindowAssign {
    /// The rows of `batch` per window (a HOP row is in several), each with
    /// its window columns.
    pub fn assign(
        &self,
        batch: &RecordBatch,
        times: &[Millis],
    ) -> Result<Vec<(Window, RecordBatch)>, EngineError> {
        let mut by_window: BTreeMap<Window, Vec<u32>> = BTreeMap::new();
        for i in 0..self.kind.windows_per_row() {
            for (row, &ts) in times.iter().enumerate() {
                if self.kind.has_nth_window(ts, i) {
                    by_window
                        .entry(self.kind.nth_window(ts, i))
                        .or_default()
                        .push(row as u32);
                }
            }
        }
        let mut out = Vec::with_capacity(by_window.len());
        for (window, rows) in by_window {
            let rows_batch = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                take_record_batch(batch, &UInt32Array::from(rows))?
            };
            out.push((window, self.with_window_columns(&rows_batch, window)?));
        }
        Ok(out)
    }

    fn with_window_columns(
        &self,
        batch: &RecordBatch,
        window: Window,
    ) -> Result<RecordBatch, EngineError> {
        let n = batch.num_rows();
        let constant = |value: Millis| -> ArrayRef {
            Arc::new(TimestampMillisecondArray::from_value(value, n))
        };
        let columns = self
            .columns
            .iter()
            .map(|c| match *c {
                WindowColumn::Input(i) => batch.column(i).clone(),
                WindowColumn::Start => constant(window.start),
                WindowColumn::End => constant(window.end),
                WindowColumn::Time => constant(window.end - 1),
            })
            .collect();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

pub fn assign_windows<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<WindowAssign>,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    input.unary::<CapacityContainerBuilder<Batch>, _, _, _>(
        Pipeline,
        "WindowAssign",
        move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let Some(batch) = data.take() else { return };
                    let time = cap.least().copied().unwrap_or(Watermark::MIN);
                    let result = millis(batch.column(spec.time))
                        .and_then(|times| drop_late(batch, times, time, &context))
                        .and_then(|(batch, times)| spec.assign(&batch, &times));
                    match result {
                        Ok(windows) => {
                            for (window, rows) in windows {
                                let at = cap.delayed(&(window.end - 1), 0);
                                output.session(&at).give_container(&mut Batch::new(rows));
                            }
                        }
                        Err(error) => context.fail(error),
                    }
                });
            }
        },
    )
}
