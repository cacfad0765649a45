//! The timely side of window aggregation: holds a capability per open
//! window at `window_end - 1` and fires the window once the input frontier
//! (the watermark) has passed it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{ParallelizationContract, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::batch::Batch;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::lateness::drop_late;
use crate::runtime::exchange;
use crate::time::{Millis, Watermark};
use crate::window::kind::Window;
use crate::window::state::{Stage, WindowAggregate, WindowAggregator};

/// A window aggregation over `input`, in one stage on one worker and in
/// partial and final stages around a keyed exchange on several.
pub fn window_aggregate<'scope>(
    input: Stream<'scope, Watermark, Batch>,
    spec: Arc<WindowAggregate>,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
    if matches!(spec.window, crate::window::kind::WindowKind::Session { .. }) {
        return crate::window::session::session_aggregate(input, spec, context);
    }
    if input.scope().peers() == 1 {
        return stage(input, Pipeline, spec, Stage::Complete, context);
    }
    let key_columns = spec.state_key_columns();
    let partial = stage(
        input,
        Pipeline,
        spec.clone(),
        Stage::Partial,
        context.clone(),
    )?;
    stage(
        partial,
        exchange::by_key(key_columns),
        spec,
        Stage::Final,
        context,
    )
}

fn stage<'scope, P>(
    input: Stream<'scope, Watermark, Batch>,
    pact: P,
    spec: Arc<WindowAggregate>,
    stage: Stage,
    context: Arc<JobContext>,
) -> Result<Stream<'scope, Watermark, Batch>, EngineError>
where
    P: ParallelizationContract<Watermark, Batch>,
{
    let aggregator = Rc::new(RefCell::new(WindowAggregator::new(spec, stage)?));
    let name = format!("WindowAggregate({stage:?})");
    let state_kind = name.clone();
    Ok(
        input.unary_frontier::<CapacityContainerBuilder<Batch>, _, _, _>(
            pact,
            &name,
            move |initial, _info| {
                let mut window_caps: BTreeMap<(Millis, Millis), Capability<Watermark>> =
                    BTreeMap::new();
                let state = Rc::new(WindowState(aggregator.clone()));
                if let Some(bytes) = crate::checkpoint::worker::register(&state_kind, state) {
                    let restored = aggregator.borrow_mut().restore(&bytes).and_then(|windows| {
                        for window in windows {
                            let cap = initial.try_delayed(&(window.end - 1)).ok_or_else(|| {
                                crate::checkpoint::codec::corrupt("a window ends before time began")
                            })?;
                            window_caps.insert((window.end, window.start), cap);
                        }
                        Ok(())
                    });
                    if let Err(error) = restored {
                        context.fail(error);
                    }
                }
                move |(input, frontier), output| {
                    let mut aggregator = aggregator.borrow_mut();
                    input.for_each(|cap, data| {
                        let Some(batch) = data.take() else { return };
                        let time = cap.least().copied().unwrap_or(Watermark::MIN);
                        let absorbed = absorb(&mut aggregator, stage, batch, time, &context);
                        match absorbed {
                            Ok(opened) => {
                                for window in opened {
                                    // Every row of `window` has an event time in it and
                                    // travelled at `time` <= that event time < end.
                                    let fire_at = (window.end - 1).max(time);
                                    window_caps.insert(
                                        (window.end, window.start),
                                        cap.delayed(&fire_at, 0),
                                    );
                                }
                            }
                            Err(error) => context.fail(error),
                        }
                    });
                    let watermark = frontier.frontier().as_option().copied();
                    while let Some(entry) = window_caps.first_entry() {
                        let (end, start) = *entry.key();
                        if watermark.is_some_and(|w| w < end) {
                            break;
                        }
                        let cap = entry.remove();
                        match aggregator.fire(Window { start, end }) {
                            Ok(Some(batch)) => {
                                output.session(&cap).give_container(&mut Batch::new(batch))
                            }
                            Ok(None) => {}
                            Err(error) => context.fail(error),
                        }
                    }
                }
            },
        ),
    )
}

/// A window stage's open windows, as per-key aggregate states (the
/// partial stage's output shape), for a checkpoint.
struct WindowState(Rc<RefCell<WindowAggregator>>);

impl crate::checkpoint::worker::OperatorState for WindowState {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.0.borrow_mut().snapshot()
    }

    /// The states are taken here; the committer encodes them.
    fn snapshot_incremental(
        &self,
        _delta_allowed: bool,
    ) -> Result<crate::checkpoint::worker::Snapshot, EngineError> {
        let (schema, batches) = self.0.borrow_mut().snapshot_batches()?;
        let encode = move || {
            crate::checkpoint::encoding::batches_to_bytes(&schema, &batches)
                .map(crate::checkpoint::codec::seal)
        };
        Ok(crate::checkpoint::worker::Snapshot::Later {
            delta: false,
            encode: Box::new(encode),
        })
    }
}

fn absorb(
    aggregator: &mut WindowAggregator,
    stage: Stage,
    batch: datafusion::arrow::record_batch::RecordBatch,
    time: Watermark,
    context: &JobContext,
) -> Result<Vec<Window>, EngineError> {
    if stage == Stage::Final {
        return aggregator.absorb(&batch, Vec::new());
    }
    let times = aggregator.event_times(&batch)?;
    let (on_time, times) = drop_late(batch, times, time, context)?;
    aggregator.absorb(&on_time, times)
}
