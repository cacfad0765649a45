//! The end of a dataflow: batches handed to a per-worker sink, with the
//! watermark so that sinks can commit what is final.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{ProbeHandle, Stream};

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::Watermark;

pub trait BatchSink: 'static {
    fn write(&mut self, batch: RecordBatch, time: Watermark) -> Result<(), EngineError>;

    /// The input watermark moved; `None` is the end of input.
    fn watermark(&mut self, _watermark: Option<Watermark>) -> Result<(), EngineError> {
        Ok(())
    }

    /// At a checkpoint, with the dataflow drained: the records an
    /// exactly-once sink held back since the last one, which are published
    /// in the same durable write as the checkpoint. An at-least-once sink
    /// flushes here (what it wrote is durable before the checkpoint is)
    /// and returns nothing. A sink learns its job's mode from
    /// `checkpoint::worker::mode()` when it is made.
    fn checkpoint_output(
        &mut self,
        _checkpoint: u64,
    ) -> Result<Vec<crate::checkpoint::SinkOutput>, EngineError> {
        Ok(Vec::new())
    }

    /// The checkpoint is durable: what it covers may be made visible (a
    /// file sink's in-progress files renamed).
    fn checkpoint_complete(&mut self, _checkpoint: u64) -> Result<(), EngineError> {
        Ok(())
    }
}

/// Attaches `sink`; `probe` then tells when it has seen everything up to a
/// time. One probe can watch every sink of a job.
pub fn sink(
    stream: Stream<'_, Watermark, Batch>,
    name: &str,
    sink: Box<dyn BatchSink>,
    context: Arc<JobContext>,
    probe: &ProbeHandle<Watermark>,
) {
    let sink = Rc::new(RefCell::new(sink));
    crate::checkpoint::worker::register_sink(Rc::new(CheckpointedSink(sink.clone())));
    let stream = stream.probe_with(probe);
    let mut last_watermark = Some(Watermark::MIN);
    let figures = context.register(name);
    stream.sink(Pipeline, name, move |(input, frontier)| {
        input.for_each(|cap, data| {
            let time = cap.least().copied().unwrap_or(Watermark::MIN);
            if let Some(batch) = data.take() {
                JobContext::add(&context.records_out, batch.num_rows());
                JobContext::add(&figures.rows, batch.num_rows());
                if !context.failed()
                    && let Err(error) = sink.borrow_mut().write(batch, time)
                {
                    context.fail(error);
                }
            }
        });
        let watermark = frontier.frontier().as_option().copied();
        if watermark != last_watermark {
            last_watermark = watermark;
            figures.watermark.store(
                watermark.unwrap_or(Watermark::MAX),
                std::sync::atomic::Ordering::Relaxed,
            );
            context.watermark.fetch_max(
                watermark.unwrap_or(Watermark::MAX),
                std::sync::atomic::Ordering::Relaxed,
            );
            if let Err(error) = sink.borrow_mut().watermark(watermark) {
                context.fail(error);
            }
        }
    });
}

/// A sink as a checkpoint sees it.
struct CheckpointedSink(Rc<RefCell<Box<dyn BatchSink>>>);

impl crate::checkpoint::worker::SinkState for CheckpointedSink {
    fn prepare(&self, checkpoint: u64) -> Result<Vec<crate::checkpoint::SinkOutput>, EngineError> {
        self.0.borrow_mut().checkpoint_output(checkpoint)
    }

    fn complete(&self, checkpoint: u64) -> Result<(), EngineError> {
        self.0.borrow_mut().checkpoint_complete(checkpoint)
    }
}

/// Keeps every batch with the time it arrived at; for tests and benchmarks.
#[derive(Clone, Default)]
pub struct CollectSink {
    pub batches: Arc<Mutex<Vec<(Watermark, RecordBatch)>>>,
}

impl BatchSink for CollectSink {
    fn write(&mut self, batch: RecordBatch, time: Watermark) -> Result<(), EngineError> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((time, batch));
        Ok(())
    }
}

impl CollectSink {
    pub fn take(&self) -> Vec<(Watermark, RecordBatch)> {
        std::mem::take(&mut *self.batches.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Counts rows and drops them, like Flink's `blackhole`.
#[derive(Default)]
pub struct BlackholeSink;

impl BatchSink for BlackholeSink {
    fn write(&mut self, _batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        Ok(())
    }
}
