//! The source operator: pulls batches from a reader, assigns watermarks and
//! drops late rows, so that every row downstream travels at a time no later
//! than its event time; a changelog's late rows go on at the current time
//! (only a temporal join's versioned side reads a changelog with a
//! watermark, and a dropped delete would leave it wrong for good).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source as timely_source;
use timely::dataflow::{Scope, Stream};

use crate::batch::Batch;
use crate::connector::KeepOnly;
use crate::context::JobContext;
use crate::error::EngineError;
use crate::lateness::{event_times, hand_over_late, split_late};
use crate::sink::BatchSink;
use crate::time::{Millis, Watermark, wall_clock_millis};

pub enum Poll {
    Batch(RecordBatch),
    /// Nothing now; ask again later.
    Idle,
    Done,
}

/// One worker's share of a source.
pub trait BatchReader: 'static {
    fn poll(&mut self) -> Result<Poll, EngineError>;

    /// A reader of several independently ordered parts (a stream's shards)
    /// says which part its last batch came from, and which parts are open:
    /// the source's watermark is then the least over the open parts, as
    /// Flink's per-split watermarks are, so a part read ahead of another
    /// does not make the other's rows late. An open part that has given no
    /// row yet holds the watermark back, until `idle_timeout` says it is
    /// idle.
    fn part_of_last_batch(&self) -> Option<u64> {
        None
    }

    fn open_parts(&self) -> Option<Vec<u64>> {
        None
    }

    /// A reader that can tell when it has data again keeps `wake` and
    /// calls it then (from any thread), and says so: the source then asks
    /// again only when woken, or at `WOKEN_FALLBACK`, instead of polling.
    fn wake_on_data(&mut self, _wake: Waker) -> bool {
        false
    }

    /// Where the reader stands, just after the last batch `poll` gave, for
    /// a checkpoint (a shard's sequence numbers, a file's byte offset, a
    /// generator's event number). `None`: this reader cannot resume.
    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(None)
    }

    /// Resumes from a position `checkpoint_position` gave; called before
    /// the first `poll`.
    fn restore_position(&mut self, _position: &[u8]) -> Result<(), EngineError> {
        Err(EngineError::Plan(
            "this source cannot resume from a checkpoint".into(),
        ))
    }
}

/// Reactivates a source from another thread.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// What a source operator keeps between activations, and checkpoints.
struct SourceCore {
    reader: Box<dyn BatchReader>,
    max_event_time: Millis,
    parts: PartTimes,
    /// At the source's watermark; `None` once its input has ended.
    capability: Option<timely::dataflow::operators::Capability<Watermark>>,
}

impl crate::checkpoint::worker::OperatorState for Rc<RefCell<SourceCore>> {
    fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        use crate::checkpoint::encoding::{put_bytes, put_i64, put_u32};
        let mut core = self.borrow_mut();
        let watermark = core.capability.as_ref().map(|cap| *cap.time());
        let mut out = vec![u8::from(watermark.is_none())];
        put_i64(&mut out, watermark.unwrap_or(Watermark::MAX));
        put_i64(&mut out, core.max_event_time);
        put_u32(&mut out, core.parts.len() as u32);
        let mut parts: Vec<(u64, Millis)> = core.parts.iter().map(|(p, (t, _))| (*p, *t)).collect();
        parts.sort_unstable();
        for (part, time) in parts {
            put_i64(&mut out, part as i64);
            put_i64(&mut out, time);
        }
        let position = if watermark.is_none() {
            Vec::new()
        } else {
            core.reader.checkpoint_position()?.ok_or_else(|| {
                EngineError::Plan("a source of this job cannot be checkpointed".into())
            })?
        };
        put_bytes(&mut out, &position);
        Ok(crate::checkpoint::codec::seal(out))
    }
}

impl SourceCore {
    /// Resumes where a checkpoint left the source: its reader's position,
    /// its watermark (so that rows late then are late now) and its parts'
    /// event times.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let mut reader =
            crate::checkpoint::encoding::Reader::new(crate::checkpoint::codec::unseal(bytes)?);
        let finished = reader.take(1)? == [1];
        let watermark = reader.i64()?;
        self.max_event_time = reader.i64()?;
        let parts = reader.u32()?;
        self.parts.clear();
        for _ in 0..parts {
            let part = reader.i64()? as u64;
            let time = reader.i64()?;
            self.parts.insert(part, (time, Instant::now()));
        }
        let position = reader.bytes()?;
        if finished {
            self.capability = None;
            return Ok(());
        }
        self.reader.restore_position(position)?;
        if let Some(cap) = self.capability.as_mut()
            && watermark > *cap.time()
        {
            cap.downgrade(&watermark);
        }
        Ok(())
    }
}

/// Moves the source's watermark forward to `watermark`, never back.
fn advance(
    cap: &mut timely::dataflow::operators::Capability<Watermark>,
    watermark: Watermark,
    context: &JobContext,
) {
    if watermark > *cap.time() {
        cap.downgrade(&watermark);
        context
            .source_watermark
            .fetch_max(watermark, Ordering::Relaxed);
    }
}

/// Per part: the greatest event time seen and when it last gave a row.
type PartTimes = std::collections::HashMap<u64, (Millis, Instant)>;

/// The event time the watermark follows: the greatest seen, or, for a
/// reader of parts, the least over its open parts that are not idle.
fn watermark_base(
    reader: &dyn BatchReader,
    parts: &mut PartTimes,
    max_event_time: Millis,
    idle_timeout: Option<Duration>,
) -> Millis {
    let Some(open) = reader.open_parts() else {
        return max_event_time;
    };
    parts.retain(|part, _| open.contains(part));
    open.iter()
        .filter_map(|part| {
            let (time, last_row) = parts.entry(*part).or_insert((Millis::MIN, Instant::now()));
            let idle = idle_timeout.is_some_and(|timeout| last_row.elapsed() >= timeout);
            (!idle).then_some(*time)
        })
        .min()
        .unwrap_or(max_event_time)
}

/// `WATERMARK FOR col AS col - INTERVAL ...`: bounded out-of-orderness.
#[derive(Clone)]
pub struct EventTime {
    pub expr: Arc<dyn PhysicalExpr>,
    pub max_out_of_orderness: Millis,
    /// `PROCTIME()`: the watermark follows the wall clock, also while the
    /// source has nothing to read, so processing-time windows close on time.
    pub processing_time: bool,
    /// After this long without a row, the source stops holding the
    /// watermark back: it moves its own to the furthest any other source
    /// has reached (Flink's `table.exec.source.idle-timeout`). Rows that
    /// come later than that are late.
    pub idle_timeout: Option<Duration>,
    /// Rows the query does not keep, which a source that drops rows early
    /// (`KeepOnly`) hands over anyway with their event time: they move the
    /// watermark and count as late as they would without the pushdown, and
    /// are dropped here.
    pub drop_after: Option<KeepOnly>,
}

/// Where a source's late rows go instead of being dropped.
pub type LateRows = Option<Box<dyn BatchSink>>;

/// Batches read per activation, so one busy source cannot starve the rest
/// of the dataflow on its worker.
const BATCHES_PER_ACTIVATION: usize = 16;
const IDLE_POLL: Duration = Duration::from_millis(10);
/// A reader that wakes its source is still asked this often, so that a stop
/// and idle parts' timeouts are seen without a wake-up.
const WOKEN_FALLBACK: Duration = Duration::from_millis(100);

pub fn source<'scope>(
    scope: Scope<'scope, Watermark>,
    name: &str,
    reader: Box<dyn BatchReader>,
    event_time: Option<EventTime>,
    mut late_rows: LateRows,
    context: Arc<JobContext>,
) -> Stream<'scope, Watermark, Batch> {
    timely_source::<_, CapacityContainerBuilder<Batch>, _, _>(
        scope,
        name,
        move |capability, info| {
            let mut reader = reader;
            let activator = scope.activator_for(info.address.clone());
            let sync_activator = scope.worker().sync_activator_for(info.address.to_vec());
            let woken = reader.wake_on_data(Arc::new(move || {
                // Fails only once the job's worker has gone.
                let _ = sync_activator.activate();
            }));
            let idle_poll = if woken && !event_time.as_ref().is_some_and(|e| e.processing_time) {
                WOKEN_FALLBACK
            } else {
                IDLE_POLL
            };
            let figures = context.register(name);
            let core = Rc::new(RefCell::new(SourceCore {
                reader,
                max_event_time: Millis::MIN,
                parts: PartTimes::new(),
                capability: Some(capability),
            }));
            if let Some(bytes) =
                crate::checkpoint::worker::register("Source", Rc::new(core.clone()))
                && let Err(error) = core.borrow_mut().restore(&bytes)
            {
                context.fail(error);
            }
            let mut last_row = Instant::now();
            move |output| {
                let mut borrowed = core.borrow_mut();
                let SourceCore {
                    reader,
                    max_event_time,
                    parts,
                    capability,
                } = &mut *borrowed;
                let Some(cap) = capability.as_mut() else {
                    return;
                };
                if crate::checkpoint::worker::paused() {
                    crate::checkpoint::worker::resume_later(activator.clone());
                    return;
                }
                let mut finished = context.ending();
                let mut idle = false;
                for _ in 0..BATCHES_PER_ACTIVATION {
                    if finished {
                        break;
                    }
                    let batch = match reader.poll() {
                        Ok(Poll::Batch(batch)) => batch,
                        Ok(Poll::Idle) => {
                            idle = true;
                            break;
                        }
                        Ok(Poll::Done) => {
                            finished = true;
                            break;
                        }
                        Err(error) => {
                            context.fail(error);
                            finished = true;
                            break;
                        }
                    };
                    JobContext::add(&context.records_in, batch.num_rows());
                    JobContext::add(&figures.rows, batch.num_rows());
                    let part = reader.part_of_last_batch();
                    if batch.num_rows() > 0 {
                        last_row = Instant::now();
                        if let Some(part) = part {
                            parts.entry(part).or_insert((Millis::MIN, last_row)).1 = last_row;
                        }
                    }
                    let on_time = match &event_time {
                        None => batch,
                        Some(event_time) => {
                            // A changelog's late rows go on, at the current
                            // time: a late delete or update dropped would
                            // leave what reads it (a temporal join's
                            // versions) wrong for good.
                            let keep_late = crate::changelog::is_changelog(&batch.schema());
                            let split = event_times(&event_time.expr, &batch).and_then(|times| {
                                if keep_late {
                                    return Ok((batch, times));
                                }
                                let (on_time, times, late) = split_late(batch, times, *cap.time())?;
                                hand_over_late(late, *cap.time(), &mut late_rows, &context)?;
                                Ok((on_time, times))
                            });
                            let kept = split.and_then(|(on_time, times)| {
                                if let Some(&batch_max) = times.iter().max() {
                                    *max_event_time = (*max_event_time).max(batch_max);
                                    if let Some(part) = part {
                                        let seen = parts
                                            .entry(part)
                                            .or_insert((Millis::MIN, Instant::now()));
                                        seen.0 = seen.0.max(batch_max);
                                    }
                                }
                                match &event_time.drop_after {
                                    None => Ok(on_time),
                                    Some(keep) => {
                                        let mask = keep.keeps(&on_time)?;
                                        Ok(datafusion::arrow::compute::filter_record_batch(
                                            &on_time, &mask,
                                        )?)
                                    }
                                }
                            });
                            match kept {
                                Ok(on_time) => on_time,
                                Err(error) => {
                                    context.fail(error);
                                    finished = true;
                                    break;
                                }
                            }
                        }
                    };
                    if on_time.num_rows() > 0 {
                        output
                            .session(&*cap)
                            .give_container(&mut Batch::new(on_time));
                    }
                    if let Some(event_time) = &event_time {
                        let watermark = watermark_base(
                            reader.as_ref(),
                            parts,
                            *max_event_time,
                            event_time.idle_timeout,
                        )
                        .saturating_sub(event_time.max_out_of_orderness);
                        advance(cap, watermark, &context);
                    }
                }
                // Parts may have ended or gone idle without a batch.
                if let Some(event_time) = &event_time
                    && idle
                    && !finished
                {
                    let watermark = watermark_base(
                        reader.as_ref(),
                        parts,
                        *max_event_time,
                        event_time.idle_timeout,
                    )
                    .saturating_sub(event_time.max_out_of_orderness);
                    advance(cap, watermark, &context);
                }
                if idle
                    && let Some(timeout) = event_time.as_ref().and_then(|e| e.idle_timeout)
                    && last_row.elapsed() >= timeout
                {
                    let furthest = context.source_watermark.load(Ordering::Relaxed);
                    if furthest > *cap.time() {
                        cap.downgrade(&furthest);
                    }
                }
                // Without event time, rows travel at the wall clock: updating
                // operators then emit as time passes, not only at the end.
                if event_time.is_none()
                    || (idle && event_time.as_ref().is_some_and(|e| e.processing_time))
                {
                    let now = wall_clock_millis();
                    if now > *cap.time() {
                        cap.downgrade(&now);
                    }
                }
                figures.watermark.store(
                    if finished { Millis::MAX } else { *cap.time() },
                    Ordering::Relaxed,
                );
                if finished {
                    // Dropping the capability is end of input: the watermark goes
                    // to the end of time and every window fires.
                    *capability = None;
                    if let Some(sink) = late_rows.as_mut()
                        && let Err(error) = sink.watermark(None)
                    {
                        context.fail(error);
                    }
                } else if idle {
                    activator.activate_after(idle_poll);
                } else {
                    activator.activate();
                }
            }
        },
    )
}

/// A reader over batches in memory: this worker's share is every
/// `peers`-th batch starting at its index.
pub struct MemoryReader {
    batches: Arc<Vec<RecordBatch>>,
    next: usize,
    step: usize,
}

impl MemoryReader {
    pub fn new(batches: Arc<Vec<RecordBatch>>, worker: usize, peers: usize) -> Self {
        MemoryReader {
            batches,
            next: worker,
            step: peers.max(1),
        }
    }
}

impl BatchReader for MemoryReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        match self.batches.get(self.next) {
            Some(batch) => {
                self.next += self.step;
                Ok(Poll::Batch(batch.clone()))
            }
            None => Ok(Poll::Done),
        }
    }

    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(Some((self.next as u64).to_le_bytes().to_vec()))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        let bytes: [u8; 8] = position
            .try_into()
            .map_err(|_| EngineError::Runtime("a memory reader's position is 8 bytes".into()))?;
        self.next = u64::from_le_bytes(bytes) as usize;
        Ok(())
    }
}
