//! Source behaviour around the watermark: an idle source stops holding it
//! back after its timeout, and late rows can go to a side output.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::{Cluster, run};
use runnel_engine::sink::{BatchSink, sink};
use runnel_engine::source::{BatchReader, EventTime, MemoryReader, Poll, source};
use runnel_engine::time::Watermark;
use runnel_engine::window::kind::WindowKind;
use runnel_engine::window::operator::window_aggregate;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::Concat;

use crate::support::{batch_of, spec};

/// A source with nothing to read until `released` is set or `deadline`
/// passes; it then ends and says which came first.
struct IdleUntil {
    released: Arc<AtomicBool>,
    deadline: Instant,
    released_first: Arc<Mutex<Option<bool>>>,
}

impl BatchReader for IdleUntil {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        let released = self.released.load(Ordering::SeqCst);
        if released || Instant::now() >= self.deadline {
            self.released_first.lock().unwrap().get_or_insert(released);
            return Ok(Poll::Done);
        }
        Ok(Poll::Idle)
    }
}

/// Releases the idle source when the first window result arrives.
struct Release(Arc<AtomicBool>);

impl BatchSink for Release {
    fn write(&mut self, _batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Whether windows fired while the idle source was still open.
fn windows_fire_while_a_source_idles(idle_timeout: Option<Duration>, wait: Duration) -> bool {
    let spec = Arc::new(spec(WindowKind::tumble(10).unwrap()));
    let batches = Arc::new(vec![batch_of(&[(1, 1, 1), (1, 15, 2), (2, 38, 3)])]);
    let released = Arc::new(AtomicBool::new(false));
    let released_first = Arc::new(Mutex::new(None));
    let deadline = Instant::now() + wait;
    let (flag, first) = (released.clone(), released_first.clone());
    run(
        &Cluster::local(1),
        Arc::new(JobContext::default()),
        move |worker, context| {
            let event_time = EventTime {
                expr: spec.time.clone(),
                max_out_of_orderness: 0,
                processing_time: false,
                idle_timeout,
                drop_after: None,
            };
            let spec = spec.clone();
            let busy = Box::new(MemoryReader::new(batches.clone(), 0, 1));
            let idle = Box::new(IdleUntil {
                released: flag.clone(),
                deadline,
                released_first: first.clone(),
            });
            let flag = flag.clone();
            worker.dataflow::<i64, _, _>(move |scope| {
                let a = source(
                    scope,
                    "busy",
                    busy,
                    Some(event_time.clone()),
                    None,
                    context.clone(),
                );
                let b = source(scope, "idle", idle, Some(event_time), None, context.clone());
                let windows = window_aggregate(a.concat(b), spec, context.clone())?;
                let probe = ProbeHandle::new();
                sink(windows, "release", Box::new(Release(flag)), context, &probe);
                Ok(probe)
            })
        },
    )
    .unwrap();
    released_first.lock().unwrap().unwrap()
}

#[test]
fn an_idle_source_stops_holding_the_watermark_after_its_timeout() {
    assert!(windows_fire_while_a_source_idles(
        Some(Duration::from_millis(50)),
        Duration::from_secs(20)
    ));
}

#[test]
fn without_a_timeout_an_idle_source_holds_every_window_back() {
    assert!(!windows_fire_while_a_source_idles(
        None,
        Duration::from_millis(500)
    ));
}

#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<RecordBatch>>>);

impl BatchSink for Collected {
    fn write(&mut self, batch: RecordBatch, _time: Watermark) -> Result<(), EngineError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

#[test]
fn late_rows_go_to_the_side_output_and_are_counted() {
    let spec = Arc::new(spec(WindowKind::tumble(10).unwrap()));
    // With a bound of 2, the watermark is 28 after ts=30: ts=5 and 20 are late.
    let batches = Arc::new(vec![
        batch_of(&[(1, 1, 1), (1, 30, 2)]),
        batch_of(&[(1, 5, 3), (2, 29, 4), (2, 20, 5)]),
    ]);
    let late = Collected::default();
    let context = Arc::new(JobContext::default());
    let side = late.clone();
    run(
        &Cluster::local(1),
        context.clone(),
        move |worker, context| {
            let event_time = EventTime {
                expr: spec.time.clone(),
                max_out_of_orderness: 2,
                processing_time: false,
                idle_timeout: None,
                drop_after: None,
            };
            let reader = Box::new(MemoryReader::new(batches.clone(), 0, 1));
            let spec = spec.clone();
            let side: Box<dyn BatchSink> = Box::new(side.clone());
            worker.dataflow::<i64, _, _>(move |scope| {
                let rows = source(
                    scope,
                    "rows",
                    reader,
                    Some(event_time),
                    Some(side),
                    context.clone(),
                );
                let windows = window_aggregate(rows, spec, context.clone())?;
                let probe = ProbeHandle::new();
                sink(
                    windows,
                    "windows",
                    Box::new(Collected::default()),
                    context,
                    &probe,
                );
                Ok(probe)
            })
        },
    )
    .unwrap();
    let late_rows: Vec<i64> = late
        .0
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| {
            let ts = b
                .column(1)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap();
            ts.values().to_vec()
        })
        .collect();
    assert_eq!(late_rows, [5, 20]);
    assert_eq!(context.late_records.load(Ordering::Relaxed), 2);
}

/// Two parts (a stream's shards) read one after the other: part 0's rows
/// (times 100..=130) all come before part 1's (times 0..=30), both open.
struct TwoParts {
    batches: Vec<(u64, RecordBatch)>,
    last: Option<u64>,
}

impl BatchReader for TwoParts {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        match self.batches.pop() {
            Some((part, batch)) => {
                self.last = Some(part);
                Ok(Poll::Batch(batch))
            }
            None => Ok(Poll::Done),
        }
    }

    fn part_of_last_batch(&self) -> Option<u64> {
        self.last
    }

    fn open_parts(&self) -> Option<Vec<u64>> {
        Some(vec![0, 1])
    }
}

#[test]
fn a_part_read_ahead_of_another_does_not_make_the_others_rows_late() {
    let spec = Arc::new(spec(WindowKind::tumble(10).unwrap()));
    let context = Arc::new(JobContext::default());
    let windows = Collected::default();
    let out = windows.clone();
    run(
        &Cluster::local(1),
        context.clone(),
        move |worker, context| {
            let event_time = EventTime {
                expr: spec.time.clone(),
                max_out_of_orderness: 0,
                processing_time: false,
                idle_timeout: None,
                drop_after: None,
            };
            let reader = Box::new(TwoParts {
                // Popped from the end: part 0 first.
                batches: vec![
                    (1, batch_of(&[(2, 20, 1), (2, 30, 1)])),
                    (1, batch_of(&[(2, 0, 1), (2, 10, 1)])),
                    (0, batch_of(&[(1, 120, 1), (1, 130, 1)])),
                    (0, batch_of(&[(1, 100, 1), (1, 110, 1)])),
                ],
                last: None,
            });
            let spec = spec.clone();
            let sink_of: Box<dyn BatchSink> = Box::new(out.clone());
            worker.dataflow::<i64, _, _>(move |scope| {
                let rows = source(
                    scope,
                    "shards",
                    reader,
                    Some(event_time),
                    None,
                    context.clone(),
                );
                let windows = window_aggregate(rows, spec, context.clone())?;
                let probe = ProbeHandle::new();
                sink(windows, "windows", sink_of, context, &probe);
                Ok(probe)
            })
        },
    )
    .unwrap();
    assert_eq!(context.late_records.load(Ordering::Relaxed), 0);
    let rows: usize = windows
        .0
        .lock()
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 8, "one window per row: 4 of each part");
}
