//! Batch-at-a-time operators that keep no state: filters and projections.

pub mod eager_case;

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::Watermark;

pub type BatchFn =
    Arc<dyn Fn(RecordBatch) -> Result<Option<RecordBatch>, EngineError> + Send + Sync>;

/// Applies `f` to every batch; `None` or an empty batch sends nothing.
pub fn map_batches<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    name: &str,
    f: BatchFn,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    input.unary::<CapacityContainerBuilder<Batch>, _, _, _>(Pipeline, name, move |_cap, _info| {
        move |input, output| {
            input.for_each(|cap, data| {
                let Some(batch) = data.take() else { return };
                match f(batch) {
                    Ok(Some(out)) if out.num_rows() > 0 => {
                        output.session(&cap).give_container(&mut Batch::new(out))
                    }
                    Ok(_) => {}
                    Err(error) => context.fail(error),
                }
            });
        }
    })
}
