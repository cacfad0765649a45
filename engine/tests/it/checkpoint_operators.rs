//! The operators besides window aggregation that checkpoints cover: the
//! unwindowed GROUP BY, the interval join, the regular join of append-only
//! inputs, deduplication, the append-only top-N, the per-closed-time
//! functions (window top-N, window join) and SESSION window aggregation.
//! Each runs in a job killed at random moments and resumed from its last
//! checkpoint; what its exactly-once sink published, changelogs applied,
//! is what an uninterrupted run gives. Corrupt state is an error on
//! restore, never a panic.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, Int8Array, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{SortColumn, SortOptions, concat_batches, lexsort_to_indices};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::functions_aggregate::{
    average::avg_udaf,
    count::count_udaf,
    min_max::{max_udaf, min_udaf},
    sum::sum_udaf,
};
use datafusion::logical_expr::{AggregateUDF, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use datafusion::physical_expr::expressions::{binary, cast, col, lit};
use proptest::prelude::*;
use runnel_engine::EngineError;
use runnel_engine::batch::Batch;
use runnel_engine::changelog::{op_field, with_op};
use runnel_engine::checkpoint::chain::standalone;
use runnel_engine::checkpoint::encoding::{
    Checkpoint as Decoded, Entry, decode_checkpoint, encode_checkpoint,
};
use runnel_engine::checkpoint::{
    CheckpointConfig, CheckpointStorage, Coordinator, MemoryStorage, Mode, StoredCheckpoint,
};
use runnel_engine::context::JobContext;
use runnel_engine::join::interval::{Expiry, IntervalJoin, interval_join};
use runnel_engine::join::kernel::{JoinKind, JoinSpec};
use runnel_engine::rank::closed_time::{
    ClosedTimeFn, ClosedTimePairFn, per_closed_time, per_closed_time_pair,
};
use runnel_engine::rank::dedup::{Deduplicate, deduplicate};
use runnel_engine::rank::top_n::append_top_n;
use runnel_engine::runtime::{Cluster, run};
use runnel_engine::sink::{BatchSink, CollectSink, sink};
use runnel_engine::source::{BatchReader, EventTime, MemoryReader, Poll, source};
use runnel_engine::time::Watermark;
use runnel_engine::updating::group_aggregate::GroupAggregate;
use runnel_engine::updating::top_n::TopN;
use runnel_engine::window::kind::WindowKind;
use runnel_engine::window::operator::window_aggregate;
use runnel_engine::window::state::WindowAggregate;
use timely::dataflow::{ProbeHandle, Stream};

use crate::support::{HeldRows, Row, apply_changes, batch_of, render_changes, schema, spec};

/// Where a run dies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Crash {
    /// Worker 0's first source fails at this poll.
    AtPoll(usize),
    /// Every source reads all its rows, then idles this long, so that
    /// checkpoints find every row read and what is still open held, and
    /// then fails.
    AfterIdling(Duration),
    /// No crash: every poll waits this long first, so that commits (no
    /// round starts while one runs) finish between a few polls and a run
    /// takes many checkpoints whatever the machine's load.
    Paced(Duration),
}

/// A reader that fails after `polls` polls, or `linger` after its last
/// row: the process "dies" there.
struct Crashing {
    inner: MemoryReader,
    polls: Option<usize>,
    linger: Option<Duration>,
    idle_since: Option<std::time::Instant>,
    pace: Option<Duration>,
    after_checkpoint: Option<AfterCheckpoint>,
}

impl Crashing {
    fn new(
        inner: MemoryReader,
        crash: Option<Crash>,
        crashes_at_poll: bool,
        storage: Option<Arc<dyn CheckpointStorage>>,
    ) -> Self {
        Crashing {
            after_checkpoint: storage.map(AfterCheckpoint::new),
            inner,
            polls: match crash {
                Some(Crash::AtPoll(at)) if crashes_at_poll => Some(at),
                _ => None,
            },
            linger: match crash {
                Some(Crash::AfterIdling(linger)) => Some(linger),
                _ => None,
            },
            idle_since: None,
            pace: match crash {
                Some(Crash::Paced(pace)) => Some(pace),
                _ => None,
            },
        }
    }
}

impl BatchReader for Crashing {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        if let Some(pace) = self.pace {
            std::thread::sleep(pace);
        }
        if let Some(left) = self.polls.as_mut() {
            if *left == 0 {
                let waiting = match self.after_checkpoint.as_mut() {
                    Some(after) => !after.taken()?,
                    None => false,
                };
                return match waiting {
                    true => Ok(Poll::Idle),
                    false => Err(EngineError::Runtime("killed".into())),
                };
            }
            *left -= 1;
        }
        match (self.inner.poll()?, self.linger) {
            (Poll::Done, Some(linger)) => {
                let since = *self.idle_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() < linger {
                    Ok(Poll::Idle)
                } else {
                    Err(EngineError::Runtime("killed".into()))
                }
            }
            (poll, _) => Ok(poll),
        }
    }

    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.checkpoint_position()
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        self.inner.restore_position(position)
    }
}

/// A crash at a poll waits (idle, bounded) for a checkpoint taken after
/// that poll, so that the crash has something to resume from whatever the
/// machine's load: a round may still be committing when the poll comes,
/// so the one after it is awaited.
pub(crate) struct AfterCheckpoint {
    storage: Arc<dyn CheckpointStorage>,
    wanted: Option<(u64, std::time::Instant)>,
}

impl AfterCheckpoint {
    pub(crate) fn new(storage: Arc<dyn CheckpointStorage>) -> Self {
        AfterCheckpoint {
            storage,
            wanted: None,
        }
    }

    pub(crate) fn taken(&mut self) -> Result<bool, EngineError> {
        let latest = self.storage.latest()?.map_or(0, |c| c.id);
        let (wanted, since) = *self
            .wanted
            .get_or_insert_with(|| (latest + 2, std::time::Instant::now()));
        Ok(latest >= wanted || since.elapsed() > Duration::from_secs(20))
    }
}

/// The operator under test, over one or two sources of `support::schema`
/// rows (or that with `__op`).
#[derive(Clone)]
pub(crate) enum Job {
    GroupBy(Arc<GroupAggregate>),
    IntervalJoin(Arc<IntervalJoin>),
    /// An interval join spec with `Expiry::Never`, which `interval_join`
    /// hands to the append join as the planner's joins are.
    AppendJoin(Arc<IntervalJoin>),
    /// A window aggregation over SESSION windows.
    Session(Arc<WindowAggregate>),
    Deduplicate(Arc<Deduplicate>),
    TopN(Arc<TopN>),
    /// A window aggregation, then the first `n` of each window's rows.
    WindowTopN(Arc<WindowAggregate>, usize),
    /// Two window aggregations joined per window.
    WindowJoin(Arc<WindowAggregate>, Arc<JoinSpec>),
    /// The first `n` rows of each key among the rows of each time, straight
    /// from the source: with out-of-orderness, a time's rows wait for the
    /// watermark, so checkpoints find them held.
    PerTime(usize),
    /// Both sources' rows of each time joined, straight from the sources.
    PerTimePair(Arc<JoinSpec>),
    /// An operator another test module builds.
    Custom(Arc<dyn CustomJob>),
}

/// A job of another test module, run by this module's harness.
pub(crate) trait CustomJob: Send + Sync {
    /// The id its state has in a checkpoint.
    fn state_id(&self) -> &'static str;

    /// The operator over the two sources.
    fn build<'scope>(
        &self,
        first: Stream<'scope, Watermark, Batch>,
        second: Stream<'scope, Watermark, Batch>,
        context: Arc<JobContext>,
    ) -> Result<Stream<'scope, Watermark, Batch>, EngineError>;
}

impl Job {
    /// The id its state has in a checkpoint.
    fn state_id(&self) -> &'static str {
        match self {
            Job::GroupBy(_) => "GroupAggregate#0",
            Job::IntervalJoin(_) => "IntervalJoin#0",
            Job::AppendJoin(_) => "AppendJoin#0",
            Job::Session(_) => "SessionAggregate#0",
            Job::Deduplicate(_) => "Deduplicate#0",
            Job::TopN(_) => "TopN#0",
            Job::WindowTopN(..) => "WindowTopN#0",
            Job::WindowJoin(..) => "WindowJoin#0",
            Job::PerTime(_) => "PerTime#0",
            Job::PerTimePair(_) => "PerTimePair#0",
            Job::Custom(job) => job.state_id(),
        }
    }

    fn build<'scope>(
        &self,
        mut inputs: Vec<Stream<'scope, Watermark, Batch>>,
        context: Arc<JobContext>,
    ) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
        let second = inputs.pop();
        let first = inputs.pop();
        let (Some(first), Some(second)) = (first, second) else {
            return Err(EngineError::Plan("a test job reads two sources".into()));
        };
        Ok(match self {
            Job::GroupBy(spec) => {
                runnel_engine::grouped::operator::append_aggregate(first, spec.clone(), context)?
            }
            Job::IntervalJoin(spec) | Job::AppendJoin(spec) => {
                interval_join(first, second, spec.clone(), context)?
            }
            Job::Session(spec) => window_aggregate(first, spec.clone(), context)?,
            Job::Deduplicate(spec) => deduplicate(first, spec.clone(), schema(), context)?,
            Job::TopN(spec) => append_top_n(first, spec.clone(), context)?,
            Job::WindowTopN(window, n) => {
                let windows = window_aggregate(first, window.clone(), context.clone())?;
                let n = *n;
                let f: ClosedTimeFn = Arc::new(move |batches| first_per_window(&batches, n));
                per_closed_time(windows, "WindowTopN", vec![0, 1], f, context)
            }
            Job::WindowJoin(window, join) => {
                let left = window_aggregate(first, window.clone(), context.clone())?;
                let right = window_aggregate(second, window.clone(), context.clone())?;
                let join = join.clone();
                let f: ClosedTimePairFn =
                    Arc::new(move |lefts, rights| join.join_all(&lefts, &rights));
                let routes = (vec![0, 1], vec![0, 1]);
                per_closed_time_pair(left, right, "WindowJoin", routes, f, context)
            }
            Job::PerTime(n) => {
                let n = *n;
                let f: ClosedTimeFn = Arc::new(move |batches| first_per_window(&batches, n));
                per_closed_time(first, "PerTime", vec![0], f, context)
            }
            Job::PerTimePair(join) => {
                let join = join.clone();
                let f: ClosedTimePairFn =
                    Arc::new(move |lefts, rights| join.join_all(&lefts, &rights));
                let routes = (vec![0], vec![0]);
                per_closed_time_pair(first, second, "PerTimePair", routes, f, context)
            }
            Job::Custom(job) => job.build(first, second, context)?,
        })
    }
}

/// Checkpoints into `storage` every `interval`, resuming from its latest.
pub(crate) struct Checkpointing {
    pub(crate) storage: Arc<MemoryStorage>,
    pub(crate) interval: Duration,
}

/// Runs `job` over `inputs` (two sources; a job that reads one leaves the
/// second's rows alone), into an exactly-once sink when checkpointing and
/// a collecting one otherwise; dies as `crash` says, if given. Sources
/// allow `bound` ms of
/// out-of-orderness. Returns what the collecting sink got.
pub(crate) fn run_job(
    job: &Job,
    inputs: &[Arc<Vec<RecordBatch>>; 2],
    workers: usize,
    bound: i64,
    checkpointing: Option<&Checkpointing>,
    crash: Option<Crash>,
) -> Result<Vec<String>, EngineError> {
    let context = Arc::new(JobContext::default());
    if let Some(checkpointing) = checkpointing {
        let config = CheckpointConfig {
            interval: checkpointing.interval,
            min_pause: Duration::ZERO,
            mode: Mode::ExactlyOnce,
            retained: 1,
            timeout: Duration::from_secs(60),
            incremental: true,
            tolerable_failures: 0,
        };
        let storage = checkpointing.storage.clone();
        let coordinator = Coordinator::new(config, storage, workers, true)?;
        let _ = context.checkpoints.set(Arc::new(coordinator));
    }
    let collector = CollectSink::default();
    let output = collector.clone();
    let held = checkpointing.is_some();
    let storage = checkpointing.map(|c| c.storage.clone() as Arc<dyn CheckpointStorage>);
    let (job, inputs) = (job.clone(), inputs.clone());
    run(&Cluster::local(workers), context, move |worker, context| {
        let (index, peers) = (worker.index(), worker.peers());
        let readers: Vec<Box<dyn BatchReader>> = inputs
            .iter()
            .enumerate()
            .map(|(i, batches)| {
                let inner = MemoryReader::new(batches.clone(), index, peers);
                Box::new(Crashing::new(
                    inner,
                    crash,
                    index == 0 && i == 0,
                    storage.clone(),
                )) as Box<dyn BatchReader>
            })
            .collect();
        let (job, output) = (job.clone(), output.clone());
        worker.dataflow::<i64, _, _>(move |scope| {
            let streams = readers
                .into_iter()
                .enumerate()
                .map(|(i, reader)| {
                    let name = format!("memory{i}");
                    let event_time = Some(event_time(bound));
                    source(scope, &name, reader, event_time, None, context.clone())
                })
                .collect();
            let out = job.build(streams, context.clone())?;
            let writer: Box<dyn BatchSink> = if held {
                Box::new(HeldRows::new(render_changes))
            } else {
                Box::new(output)
            };
            let probe = ProbeHandle::new();
            sink(out, "out", writer, context, &probe);
            Ok(probe)
        })
    })?;
    Ok(collector
        .take()
        .iter()
        .flat_map(|(_, batch)| render_changes(batch))
        .collect())
}

/// Event time is `ts`. Each worker's rows come in time order, so none is
/// late, and a row's time is never below the watermark it travels at.
pub(crate) fn event_time(bound: i64) -> EventTime {
    EventTime {
        expr: Arc::new(datafusion::physical_expr::expressions::Column::new("ts", 1)),
        max_out_of_orderness: bound,
        processing_time: false,
        idle_timeout: None,
        drop_after: None,
    }
}

pub(crate) fn published(storage: &MemoryStorage) -> Vec<String> {
    storage
        .published
        .lock()
        .unwrap()
        .iter()
        .flat_map(|output| output.records.iter())
        .map(|record| String::from_utf8(record.data.clone()).unwrap())
        .collect()
}

/// What a property test varies besides the rows.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) workers: usize,
    /// The sources' out-of-orderness, which delays the watermark.
    pub(crate) bound: i64,
    pub(crate) interval_ms: u64,
    /// Where each crashing run dies, as a share of worker 0's polls of
    /// the whole first input.
    pub(crate) crashes: Vec<f64>,
}

pub(crate) fn runs() -> impl Strategy<Value = Run> {
    let bounds = prop_oneof![Just(0i64), 1i64..60];
    let crashes = prop::collection::vec(0.0f64..1.0, 1..3);
    (1usize..4, bounds, 0u64..4, crashes).prop_map(|(workers, bound, interval_ms, crashes)| Run {
        workers,
        bound,
        interval_ms,
        crashes,
    })
}

/// Crashes at each of `run.crashes`, then runs to the end, all from the
/// latest checkpoint; the published changelog must apply cleanly and
/// leave what an uninterrupted run's does, which is returned.
pub(crate) fn resumed_equals_uninterrupted(
    job: &Job,
    inputs: [Arc<Vec<RecordBatch>>; 2],
    run: &Run,
) -> Result<Vec<String>, TestCaseError> {
    let uninterrupted = run_job(job, &inputs, run.workers, run.bound, None, None).unwrap();
    let expected = apply_changes(&uninterrupted).map_err(TestCaseError::fail)?;
    let checkpointing = Checkpointing {
        storage: Arc::new(MemoryStorage::default()),
        interval: Duration::from_millis(run.interval_ms),
    };
    // Worker 0 polls its share of the first input's batches, then once
    // more for the end. A source reads 16 batches an activation, and a
    // checkpoint comes between activations at the earliest.
    let polls = inputs[0].len().div_ceil(run.workers) + 1;
    for share in &run.crashes {
        let at = (share * polls as f64) as usize;
        let result = run_job(
            job,
            &inputs,
            run.workers,
            run.bound,
            Some(&checkpointing),
            Some(Crash::AtPoll(at)),
        );
        // A resumed run may reach the end of its input before the point.
        if let Err(error) = result {
            prop_assert!(error.to_string().contains("killed"), "{}", error);
        }
    }
    run_job(
        job,
        &inputs,
        run.workers,
        run.bound,
        Some(&checkpointing),
        None,
    )
    .unwrap();
    prop_assert!(checkpointing.storage.latest().unwrap().is_some());
    let resumed = apply_changes(&published(&checkpointing.storage)).map_err(TestCaseError::fail)?;
    prop_assert_eq!(&resumed, &expected);
    Ok(expected)
}

pub(crate) fn batches(rows: &[Row], batch_rows: usize) -> Arc<Vec<RecordBatch>> {
    Arc::new(rows.chunks(batch_rows).map(batch_of).collect())
}

pub(crate) fn no_input() -> Arc<Vec<RecordBatch>> {
    Arc::new(Vec::new())
}

/// Rows in time order, as each worker's source must read them.
pub(crate) fn in_time_order(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|r| r.1);
    rows
}

// ---------------------------------------------------------------- GROUP BY

pub(crate) fn v() -> Arc<dyn PhysicalExpr> {
    col("v", &schema()).unwrap()
}

pub(crate) fn as_type(expr: Arc<dyn PhysicalExpr>, data_type: DataType) -> Arc<dyn PhysicalExpr> {
    cast(expr, &schema(), data_type).unwrap()
}

pub(crate) fn aggregate(
    fun: Arc<AggregateUDF>,
    argument: Arc<dyn PhysicalExpr>,
    name: &str,
    distinct: bool,
    input: &SchemaRef,
) -> Arc<AggregateFunctionExpr> {
    Arc::new(
        AggregateExprBuilder::new(fun, vec![argument])
            .schema(input.clone())
            .alias(name)
            .with_distinct(distinct)
            .build()
            .unwrap(),
    )
}

/// Over an append-only input, every kind of grouped state: Runnel's own
/// COUNT, SUM, AVG, MIN and MAX of integers and strings, COUNT DISTINCTs
/// sharing one table under different FILTERs, of strings by their row
/// bytes, and DataFusion's accumulators for floats' MAX and COUNT
/// DISTINCT. Over a changelog, those that take rows back, DataFusion's
/// sliding SUM of decimals among them.
fn group_by(keyed: bool, changelog: bool) -> GroupAggregate {
    group_by_with(keyed, changelog, changelog)
}

/// `exact_sum`: with DataFusion's sliding SUM of decimals, which a
/// retraction ahead of its insert (from another worker) underflows.
pub(crate) fn group_by_with(keyed: bool, changelog: bool, exact_sum: bool) -> GroupAggregate {
    let input = if changelog {
        with_op(&schema())
    } else {
        schema()
    };
    let float = || as_type(v(), DataType::Float64);
    let text = || as_type(v(), DataType::Utf8);
    let positive = binary(v(), Operator::Gt, lit(0i64), &schema()).unwrap();
    let mut aggregates = vec![
        aggregate(count_udaf(), v(), "cnt", false, &input),
        aggregate(sum_udaf(), v(), "total", false, &input),
        aggregate(avg_udaf(), float(), "mean", false, &input),
        aggregate(count_udaf(), v(), "values", true, &input),
        aggregate(count_udaf(), text(), "texts", true, &input),
    ];
    let mut filters = vec![None; aggregates.len()];
    if exact_sum {
        let decimal = as_type(v(), DataType::Decimal128(20, 2));
        aggregates.push(aggregate(sum_udaf(), decimal, "exact", false, &input));
        filters.push(None);
    }
    if !changelog {
        aggregates.extend([
            aggregate(min_udaf(), v(), "lo", false, &input),
            aggregate(max_udaf(), v(), "hi", false, &input),
            aggregate(min_udaf(), text(), "first_text", false, &input),
            aggregate(max_udaf(), float(), "hi_float", false, &input),
            aggregate(count_udaf(), float(), "floats", true, &input),
            aggregate(count_udaf(), v(), "positives", true, &input),
        ]);
        filters.extend([None, None, None, None, None, Some(positive)]);
    }
    let keys = if keyed {
        vec![col("k", &schema()).unwrap()]
    } else {
        Vec::new()
    };
    spec_of(keys, aggregates, filters, input)
}

/// A GROUP BY of `keys` (the `k` column, or none) with its changelog
/// output schema.
pub(crate) fn spec_of(
    keys: Vec<Arc<dyn PhysicalExpr>>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    input: SchemaRef,
) -> GroupAggregate {
    let mut fields: Vec<Field> = keys
        .iter()
        .map(|_| Field::new("k", DataType::Int64, true))
        .collect();
    fields.extend(aggregates.iter().map(|a| a.field().as_ref().clone()));
    GroupAggregate {
        keys,
        aggregates,
        filters,
        input_schema: input,
        output_schema: with_op(&Schema::new(fields)),
        ttl: None,
    }
}

/// Over an append-only input, Runnel's own states only (those that
/// checkpoint in deltas): COUNT, SUM, AVG, MIN and MAX of integers and
/// strings, and COUNT DISTINCTs sharing a table under different FILTERs.
fn group_by_own_states() -> GroupAggregate {
    let input = schema();
    let float = || as_type(v(), DataType::Float64);
    let text = || as_type(v(), DataType::Utf8);
    let positive = binary(v(), Operator::Gt, lit(0i64), &schema()).unwrap();
    let aggregates = vec![
        aggregate(count_udaf(), v(), "cnt", false, &input),
        aggregate(sum_udaf(), v(), "total", false, &input),
        aggregate(avg_udaf(), float(), "mean", false, &input),
        aggregate(count_udaf(), v(), "values", true, &input),
        aggregate(count_udaf(), text(), "texts", true, &input),
        aggregate(min_udaf(), v(), "lo", false, &input),
        aggregate(max_udaf(), v(), "hi", false, &input),
        aggregate(min_udaf(), text(), "first_text", false, &input),
        aggregate(count_udaf(), v(), "positives", true, &input),
    ];
    let mut filters = vec![None; aggregates.len()];
    filters[8] = Some(positive);
    let keys = vec![col("k", &schema()).unwrap()];
    spec_of(keys, aggregates, filters, input)
}

/// An insert of `(k, v)` and, `gone_after` rows later if given, its
/// retraction, as a changelog in time order (`ts` is each change's place)
/// dealt to `workers` by key, as an upstream keyed operator would: a
/// retraction never overtakes its insert. (The grouped operator forgets a
/// group whose row count reaches zero, which is wrong while one has.)
pub(crate) fn changelog(
    rows: &[(i64, i64, Option<usize>)],
    batch_rows: usize,
    workers: usize,
) -> Arc<Vec<RecordBatch>> {
    let mut placed: Vec<(usize, Change)> = Vec::new();
    for (i, &(k, v, gone_after)) in rows.iter().enumerate() {
        // +I or +U in, -D or -U out: each adds or takes away a row.
        let op = if i % 2 == 0 { 0 } else { 2 };
        placed.push((2 * i, Change { ts: 0, k, v, op }));
        if let Some(after) = gone_after {
            let op = if i % 3 == 0 { 1 } else { 3 };
            placed.push((2 * (i + after) + 1, Change { ts: 0, k, v, op }));
        }
    }
    placed.sort_by_key(|(place, _)| *place);
    let changes: Vec<Change> = (0i64..)
        .zip(placed)
        .map(|(ts, (_, change))| Change { ts, ..change })
        .collect();
    let per_worker: Vec<Vec<RecordBatch>> = (0..workers as i64)
        .map(|worker| {
            let mine: Vec<Change> = changes
                .iter()
                .filter(|c| c.k.rem_euclid(workers as i64) == worker)
                .copied()
                .collect();
            mine.chunks(batch_rows).map(changes_batch).collect()
        })
        .collect();
    // Batch `i` goes to worker `i % workers`.
    let rounds = per_worker.iter().map(Vec::len).max().unwrap_or(0);
    let empty = changes_batch(&[]);
    let batches = (0..rounds)
        .flat_map(|round| {
            per_worker
                .iter()
                .map(|batches| batches.get(round).unwrap_or(&empty).clone())
                .collect::<Vec<_>>()
        })
        .collect();
    Arc::new(batches)
}

/// One row of a changelog input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change {
    ts: i64,
    k: i64,
    v: i64,
    op: i8,
}

pub(crate) fn changes_batch(changes: &[Change]) -> RecordBatch {
    let column = |f: fn(&Change) -> i64| {
        Arc::new(Int64Array::from_iter_values(changes.iter().map(f))) as ArrayRef
    };
    let ops = Int8Array::from_iter_values(changes.iter().map(|c| c.op));
    let columns = vec![
        column(|c| c.k),
        column(|c| c.ts),
        column(|c| c.v),
        Arc::new(ops),
    ];
    RecordBatch::try_new(with_op(&schema()), columns).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// An append-only GROUP BY: every group's aggregates and what was
    /// last emitted for it survive the crashes, so the -U/+U pairs after a
    /// restore retract what was published before it.
    #[test]
    fn a_group_by_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..6, 0i64..2000, -20i64..20), 1..160),
        batch_rows in 1usize..20,
        keyed in prop::bool::weighted(0.8),
        run in runs(),
    ) {
        let job = Job::GroupBy(Arc::new(group_by(keyed, false)));
        let inputs = [batches(&in_time_order(rows), batch_rows), no_input()];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }

    /// The same over a changelog: groups whose rows all went are deleted
    /// and may come back; retractions from one worker may come ahead of
    /// their inserts from another.
    #[test]
    fn a_group_by_over_a_changelog_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec(
            (0i64..5, -10i64..10, prop::option::weighted(0.5, 0usize..6)),
            1..120,
        ),
        batch_rows in 1usize..20,
        keyed in prop::bool::weighted(0.8),
        run in runs(),
    ) {
        let spec = group_by_with(keyed, true, run.workers == 1);
        prop_assert!(runnel_engine::grouped::operator::retracts(&spec));
        let job = Job::GroupBy(Arc::new(spec));
        let inputs = [changelog(&rows, batch_rows, run.workers), no_input()];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }
}

/// A few hot keys after many cold ones: the checkpoints after the first
/// hold only the groups that changed.
pub(crate) fn hot_after_cold(cold: i64, hot: &[(i64, i64, i64)]) -> Vec<Row> {
    let mut rows: Vec<Row> = (0..cold).map(|k| (k, k, k % 7)).collect();
    rows.extend(hot.iter().map(|&(k, ts, v)| (k, cold + ts, v)));
    in_time_order(rows)
}

/// Whether some checkpoint in `storage` (up to its latest) holds a delta.
/// The pace of runs that must take many checkpoints.
pub(crate) const PACED: Option<Crash> = Some(Crash::Paced(Duration::from_millis(1)));

pub(crate) fn holds_a_delta(storage: &MemoryStorage) -> bool {
    let latest = storage.latest().unwrap().map_or(0, |c| c.id);
    (1..=latest).any(|id| {
        storage.get(id).unwrap().is_some_and(|c| {
            decode_checkpoint(&c.state)
                .unwrap()
                .workers
                .iter()
                .flatten()
                .any(|(_, entry)| entry.previous.is_some())
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Incremental checkpoints: many groups, then changes to a few, so
    /// that checkpoints are chains of deltas (groups made, changed and,
    /// over a changelog, forgotten and made again); restored from such a
    /// chain, the job goes on as one never killed.
    #[test]
    fn a_group_by_resumed_from_deltas_equals_one_never_killed(
        hot in prop::collection::vec((0i64..4, 0i64..400, -20i64..20), 1..150),
        gone in prop::collection::vec(prop::option::weighted(0.4, 0usize..4), 150),
        batch_rows in 1usize..6,
        changelog_input in any::<bool>(),
        run in runs(),
    ) {
        let rows = hot_after_cold(80, &hot);
        let (spec, input) = if changelog_input {
            let changes: Vec<(i64, i64, Option<usize>)> = rows
                .iter()
                .zip(gone.iter().cycle())
                .map(|(&(k, _, v), &gone)| (k, v, gone))
                .collect();
            // Without DataFusion's decimal SUM, which is checkpointed whole.
            let spec = group_by_with(true, true, false);
            (spec, changelog(&changes, batch_rows, run.workers))
        } else {
            (group_by_own_states(), batches(&rows, batch_rows))
        };
        let job = Job::GroupBy(Arc::new(spec));
        resumed_equals_uninterrupted(&job, [input, no_input()], &run)?;
    }
}

/// The test above takes deltas, not only whole states.
#[test]
fn a_group_by_over_many_groups_checkpoints_deltas() {
    let hot: Vec<(i64, i64, i64)> = (0..300).map(|i| (i % 3, i, i % 11)).collect();
    let inputs = [batches(&hot_after_cold(200, &hot), 2), no_input()];
    let job = Job::GroupBy(Arc::new(group_by_own_states()));
    let checkpointing = Checkpointing {
        storage: Arc::new(MemoryStorage::default()),
        interval: Duration::ZERO,
    };
    run_job(&job, &inputs, 1, 0, Some(&checkpointing), PACED).unwrap();
    assert!(holds_a_delta(&checkpointing.storage));
}

// ----------------------------------------------------------- interval join

pub(crate) fn right_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("rk", DataType::Int64, false),
        Field::new("rts", DataType::Int64, false),
        Field::new("rv", DataType::Int64, false),
    ]))
}

pub(crate) fn nullable(schemas: &[&SchemaRef]) -> SchemaRef {
    let fields: Vec<Field> = schemas
        .iter()
        .flat_map(|s| s.fields().iter())
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Equal keys, and for an interval `rts - ts` in `[lower, upper]`.
pub(crate) fn join_spec(
    kind: JoinKind,
    left: &SchemaRef,
    right: &SchemaRef,
    keys: &[usize],
    interval: Option<(i64, i64)>,
) -> JoinSpec {
    let joined = nullable(&[left, right]);
    let column = |schema: &SchemaRef, i: usize| -> Arc<dyn PhysicalExpr> {
        Arc::new(datafusion::physical_expr::expressions::Column::new(
            schema.field(i).name(),
            i,
        ))
    };
    let filter = interval.map(|(lower, upper)| {
        let width = left.fields().len();
        let gap = binary(
            column(&joined, width + 1),
            Operator::Minus,
            column(&joined, 1),
            &joined,
        )
        .unwrap();
        let above = binary(gap.clone(), Operator::GtEq, lit(lower), &joined).unwrap();
        let below = binary(gap, Operator::LtEq, lit(upper), &joined).unwrap();
        binary(above, Operator::And, below, &joined).unwrap()
    });
    let output_schema = match kind {
        JoinKind::LeftSemi | JoinKind::LeftAnti => left.clone(),
        JoinKind::RightSemi | JoinKind::RightAnti => right.clone(),
        _ => joined.clone(),
    };
    JoinSpec {
        kind,
        left_keys: keys.iter().map(|&i| column(left, i)).collect(),
        right_keys: keys.iter().map(|&i| column(right, i)).collect(),
        filter,
        left_schema: left.clone(),
        right_schema: right.clone(),
        joined_schema: joined,
        output_schema,
    }
}

fn interval_spec(kind: JoinKind, lower: i64, upper: i64) -> IntervalJoin {
    IntervalJoin {
        join: join_spec(kind, &schema(), &right_schema(), &[0], Some((lower, upper))),
        left_time: 1,
        right_time: 1,
        expiry: Expiry::Interval { lower, upper },
        left_route: vec![0],
        right_route: vec![0],
    }
}

pub(crate) fn right_batches(rows: &[Row], batch_rows: usize) -> Arc<Vec<RecordBatch>> {
    Arc::new(
        rows.chunks(batch_rows)
            .map(|rows| {
                let batch = batch_of(rows);
                RecordBatch::try_new(right_schema(), batch.columns().to_vec()).unwrap()
            })
            .collect(),
    )
}

pub(crate) fn join_kinds() -> impl Strategy<Value = JoinKind> {
    prop::sample::select(vec![
        JoinKind::Inner,
        JoinKind::Left,
        JoinKind::Right,
        JoinKind::Full,
        JoinKind::LeftSemi,
        JoinKind::LeftAnti,
        JoinKind::RightSemi,
        JoinKind::RightAnti,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Both sides' kept rows, their matched flags (which outer, semi and
    /// anti joins emit by when the rows leave) and their capabilities
    /// survive the crashes.
    #[test]
    fn an_interval_join_resumed_from_a_checkpoint_equals_one_never_killed(
        left in prop::collection::vec((0i64..4, 0i64..600, -100i64..100), 1..100),
        right in prop::collection::vec((0i64..4, 0i64..600, -100i64..100), 1..100),
        kind in join_kinds(),
        lower in -40i64..10,
        width in 0i64..50,
        batch_rows in 1usize..12,
        run in runs(),
    ) {
        let job = Job::IntervalJoin(Arc::new(interval_spec(kind, lower, lower + width)));
        let inputs = [
            batches(&in_time_order(left), batch_rows),
            right_batches(&in_time_order(right), batch_rows),
        ];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }

    /// Wide intervals keep chunks for long, so checkpoints give deltas:
    /// the chunks arrived since, the flags set since on older ones, and
    /// the older ones gone since.
    #[test]
    fn an_interval_join_resumed_from_deltas_equals_one_never_killed(
        left in prop::collection::vec((0i64..3, 0i64..1500, -100i64..100), 1..150),
        right in prop::collection::vec((0i64..3, 0i64..1500, -100i64..100), 1..150),
        kind in join_kinds(),
        lower in -400i64..0,
        width in 200i64..800,
        batch_rows in 1usize..4,
        run in runs(),
    ) {
        let job = Job::IntervalJoin(Arc::new(interval_spec(kind, lower, lower + width)));
        let inputs = [
            batches(&in_time_order(left), batch_rows),
            right_batches(&in_time_order(right), batch_rows),
        ];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }
}

/// The test above takes deltas, not only whole states.
#[test]
fn an_interval_join_with_a_wide_interval_checkpoints_deltas() {
    let left: Vec<Row> = (0..600).map(|i| (i % 5, i * 2, i % 7)).collect();
    let right: Vec<Row> = left.iter().map(|&(k, ts, v)| (k, ts + 1, v)).collect();
    let job = Job::IntervalJoin(Arc::new(interval_spec(JoinKind::Full, -300, 300)));
    let inputs = [batches(&left, 2), right_batches(&right, 2)];
    let checkpointing = Checkpointing {
        storage: Arc::new(MemoryStorage::default()),
        interval: Duration::ZERO,
    };
    run_job(&job, &inputs, 1, 0, Some(&checkpointing), PACED).unwrap();
    assert!(holds_a_delta(&checkpointing.storage));
}

// ---------------------------------------------------- append-only join

/// A regular inner join on `k = rk` of two append-only inputs without a
/// TTL, which keeps every row; with `between`, also `rts - ts BETWEEN
/// lower AND upper`, a condition that bounds no state, as Nexmark q4's and
/// q9's `B.dateTime BETWEEN A.dateTime AND A.expires`.
fn append_spec(between: Option<(i64, i64)>) -> IntervalJoin {
    IntervalJoin {
        join: join_spec(JoinKind::Inner, &schema(), &right_schema(), &[0], between),
        left_time: 1,
        right_time: 1,
        expiry: Expiry::Never,
        left_route: vec![0],
        right_route: vec![0],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Both sides' kept batches survive the crashes, so rows arriving
    /// after a restore still meet every row before it, once.
    #[test]
    fn an_append_join_resumed_from_a_checkpoint_equals_one_never_killed(
        left in prop::collection::vec((0i64..6, 0i64..1000, -100i64..100), 1..100),
        right in prop::collection::vec((0i64..6, 0i64..1000, -100i64..100), 1..100),
        between in prop::option::of((-300i64..0, 0i64..300)),
        batch_rows in 1usize..12,
        run in runs(),
    ) {
        let job = Job::AppendJoin(Arc::new(append_spec(between)));
        let inputs = [
            batches(&in_time_order(left), batch_rows),
            right_batches(&in_time_order(right), batch_rows),
        ];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }
}

// ------------------------------------------------ deduplication and top-N

fn ranked_schema(changelog: bool) -> SchemaRef {
    let mut fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("rn", DataType::UInt64, false));
    if changelog {
        fields.push(op_field());
    }
    Arc::new(Schema::new(fields))
}

fn dedup_spec(keyed: bool) -> Deduplicate {
    Deduplicate {
        key_columns: if keyed { vec![0] } else { Vec::new() },
        time: 1,
        output_schema: ranked_schema(false),
    }
}

/// `ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) <= limit`.
fn top_n_spec(keyed: bool, limit: usize) -> TopN {
    TopN {
        partition: if keyed { vec![0] } else { Vec::new() },
        order: vec![(
            v(),
            SortOptions {
                descending: true,
                nulls_first: false,
            },
        )],
        limit: Some(limit),
        input_schema: schema(),
        output_schema: ranked_schema(true),
        ttl: None,
    }
}

/// Rows of distinct times: two rows of one key at one time from two
/// workers would be kept first by arrival, which no run repeats.
pub(crate) fn distinct_times(rows: Vec<Row>) -> Vec<Row> {
    let mut rows = in_time_order(rows);
    rows.dedup_by_key(|r| r.1);
    rows
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The keys already emitted, the pending first rows and the
    /// capability held for them survive the crashes.
    #[test]
    fn a_deduplication_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..20, 0i64..3000, -100i64..100), 1..160),
        batch_rows in 1usize..20,
        keyed in prop::bool::weighted(0.8),
        run in runs(),
    ) {
        let rows = distinct_times(rows);
        let keys: std::collections::BTreeSet<i64> =
            rows.iter().map(|r| if keyed { r.0 } else { 0 }).collect();
        let job = Job::Deduplicate(Arc::new(dedup_spec(keyed)));
        let inputs = [batches(&rows, batch_rows), no_input()];
        let firsts = resumed_equals_uninterrupted(&job, inputs, &run)?;
        prop_assert_eq!(firsts.len(), keys.len(), "a first row per key");
    }

    /// Each partition's kept rows survive the crashes, so rows entering
    /// after a restore retract and renumber the ones published before it.
    #[test]
    fn a_top_n_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..5, 0i64..2000, -30i64..30), 1..160),
        batch_rows in 1usize..20,
        keyed in prop::bool::weighted(0.8),
        limit in 1usize..5,
        run in runs(),
    ) {
        let job = Job::TopN(Arc::new(top_n_spec(keyed, limit)));
        let inputs = [batches(&in_time_order(rows), batch_rows), no_input()];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }

    /// Many partitions, then a few hot ones: checkpoints hold only the
    /// partitions that changed, and a restore replaces each from the
    /// deltas in order.
    #[test]
    fn a_top_n_resumed_from_deltas_equals_one_never_killed(
        hot in prop::collection::vec((0i64..4, 0i64..400, -30i64..30), 1..150),
        batch_rows in 1usize..6,
        limit in 1usize..4,
        run in runs(),
    ) {
        let job = Job::TopN(Arc::new(top_n_spec(true, limit)));
        let inputs = [batches(&hot_after_cold(60, &hot), batch_rows), no_input()];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }
}

/// The test above takes deltas, not only whole states.
#[test]
fn a_top_n_over_many_partitions_checkpoints_deltas() {
    let hot: Vec<(i64, i64, i64)> = (0..300).map(|i| (i % 3, i, i % 11)).collect();
    let inputs = [batches(&hot_after_cold(200, &hot), 2), no_input()];
    let job = Job::TopN(Arc::new(top_n_spec(true, 2)));
    let checkpointing = Checkpointing {
        storage: Arc::new(MemoryStorage::default()),
        interval: Duration::ZERO,
    };
    run_job(&job, &inputs, 1, 0, Some(&checkpointing), PACED).unwrap();
    assert!(holds_a_delta(&checkpointing.storage));
}

// ------------------------------------------------ per-closed-time functions

/// The first `n` rows of each window (columns 0 and 1) in the order of
/// all columns: a window top-N that does not depend on arrival order.
fn first_per_window(batches: &[RecordBatch], n: usize) -> Result<Option<RecordBatch>, EngineError> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let all = concat_batches(&first.schema(), batches)?;
    let columns: Vec<SortColumn> = all
        .columns()
        .iter()
        .map(|values| SortColumn {
            values: values.clone(),
            options: None,
        })
        .collect();
    let order = lexsort_to_indices(&columns, None)?;
    let windows = datafusion::arrow::compute::cast(all.column(0), &DataType::Int64)?;
    let windows = windows.as_any().downcast_ref::<Int64Array>().unwrap();
    let mut kept = Vec::new();
    let mut run = (None, 0);
    for i in order.values().iter().copied() {
        let window = windows.value(i as usize);
        run = if run.0 == Some(window) {
            (run.0, run.1 + 1)
        } else {
            (Some(window), 1)
        };
        if run.1 <= n {
            kept.push(i);
        }
    }
    let kept = UInt32Array::from(kept);
    Ok(Some(datafusion::arrow::compute::take_record_batch(
        &all, &kept,
    )?))
}

fn window_kinds() -> impl Strategy<Value = WindowKind> {
    prop_oneof![
        (1i64..200).prop_map(|size| WindowKind::tumble(size).unwrap()),
        (1i64..60, 1i64..5).prop_map(|(slide, n)| WindowKind::hop(slide, slide * n).unwrap()),
    ]
}

fn window_join(window: WindowKind, kind: JoinKind) -> Job {
    let window = Arc::new(spec(window));
    let output = window.output_schema().unwrap();
    let join = join_spec(kind, &output, &output, &[0, 1, 2], None);
    Job::WindowJoin(window, Arc::new(join))
}

fn per_time_pair(kind: JoinKind) -> Job {
    Job::PerTimePair(Arc::new(join_spec(
        kind,
        &schema(),
        &right_schema(),
        &[0],
        None,
    )))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The rows a per-time function holds for times the watermark has not
    /// passed, and a capability at each, survive the crashes.
    #[test]
    fn a_per_time_function_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..6, 0i64..2000, -100i64..100), 1..160),
        n in 1usize..4,
        batch_rows in 1usize..20,
        run in runs(),
    ) {
        let inputs = [batches(&in_time_order(rows), batch_rows), no_input()];
        resumed_equals_uninterrupted(&Job::PerTime(n), inputs, &run)?;
    }

    /// Both inputs' rows a per-time pair function holds survive the crashes.
    #[test]
    fn a_per_time_pair_function_resumed_from_a_checkpoint_equals_one_never_killed(
        left in prop::collection::vec((0i64..4, 0i64..1000, -100i64..100), 1..100),
        right in prop::collection::vec((0i64..4, 0i64..1000, -100i64..100), 1..100),
        kind in join_kinds(),
        batch_rows in 1usize..12,
        run in runs(),
    ) {
        let inputs = [
            batches(&in_time_order(left), batch_rows),
            right_batches(&in_time_order(right), batch_rows),
        ];
        resumed_equals_uninterrupted(&per_time_pair(kind), inputs, &run)?;
    }

    /// A window top-N as planned, after a window aggregation. Its input's
    /// frontier passes a window's time right after the window fires, so
    /// checkpoints seldom find rows held here; the per-time tests above
    /// are the ones that restore held rows.
    #[test]
    fn a_window_top_n_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..6, 0i64..2000, -100i64..100), 1..160),
        kind in window_kinds(),
        n in 1usize..4,
        batch_rows in 1usize..20,
        run in runs(),
    ) {
        let job = Job::WindowTopN(Arc::new(spec(kind)), n);
        let inputs = [batches(&in_time_order(rows), batch_rows), no_input()];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }

    /// A window join as planned, after two window aggregations (held rows:
    /// as for the window top-N).
    #[test]
    fn a_window_join_resumed_from_a_checkpoint_equals_one_never_killed(
        left in prop::collection::vec((0i64..4, 0i64..1000, -100i64..100), 1..100),
        right in prop::collection::vec((0i64..4, 0i64..1000, -100i64..100), 1..100),
        window in window_kinds(),
        kind in prop::sample::select(vec![
            JoinKind::Inner, JoinKind::Left, JoinKind::Full, JoinKind::LeftSemi, JoinKind::RightAnti,
        ]),
        batch_rows in 1usize..12,
        run in runs(),
    ) {
        let inputs = [
            batches(&in_time_order(left), batch_rows),
            batches(&in_time_order(right), batch_rows),
        ];
        resumed_equals_uninterrupted(&window_join(window, kind), inputs, &run)?;
    }
}

// ------------------------------------------------------- session windows

/// Rows out of time order by up to `bound` ms, none of them late: sorted
/// by their time plus a share of `bound` (`jitter`), each row's time is at
/// least the greatest before it less `bound`, and so is not below the
/// watermark it travels at.
pub(crate) fn within_bound(rows: Vec<Row>, jitter: &[f64], bound: i64) -> Vec<Row> {
    let mut keyed: Vec<(i64, Row)> = rows
        .into_iter()
        .zip(jitter.iter().cycle())
        .map(|(row, share)| {
            let delay = ((share * (bound + 1) as f64) as i64).min(bound);
            (row.1 + delay, row)
        })
        .collect();
    keyed.sort_by_key(|(at, _)| *at);
    keyed.into_iter().map(|(_, row)| row).collect()
}

/// `support::spec`'s aggregates over SESSION windows, with DataFusion's
/// accumulators for a filtered COUNT DISTINCT of strings and a MAX of
/// floats besides; keyed by `k` or not at all.
fn session_spec(gap: i64, keyed: bool) -> WindowAggregate {
    let mut spec = spec(WindowKind::session(gap).unwrap());
    let input = spec.input_schema.clone();
    let text = as_type(v(), DataType::Utf8);
    let positive = binary(v(), Operator::Gt, lit(0i64), &schema()).unwrap();
    spec.aggregates.push(aggregate(
        count_udaf(),
        text,
        "positive_texts",
        true,
        &input,
    ));
    spec.filters.push(Some(positive));
    let float = as_type(v(), DataType::Float64);
    spec.aggregates
        .push(aggregate(max_udaf(), float, "hi_float", false, &input));
    spec.filters.push(None);
    if !keyed {
        spec.keys.clear();
    }
    spec
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The open sessions of every key, their bounds and accumulators, and
    /// the capability at the earliest one's end survive the crashes; rows
    /// after a restore extend restored sessions and merge them.
    #[test]
    fn a_session_aggregation_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..4, 0i64..2000, -100i64..100), 1..160),
        jitter in prop::collection::vec(0.0f64..1.0, 1..160),
        gap in 1i64..120,
        keyed in prop::bool::weighted(0.8),
        batch_rows in 1usize..20,
        run in runs(),
    ) {
        let rows = within_bound(rows, &jitter, run.bound);
        let job = Job::Session(Arc::new(session_spec(gap, keyed)));
        let inputs = [batches(&rows, batch_rows), no_input()];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }
}

/// A crash after every row was read and checkpointed while sessions are
/// still open: the resumed job reads nothing more, so only the restored
/// capability lets those sessions fire at the end of the input.
#[test]
fn sessions_restored_after_the_last_row_still_fire() {
    let rows: Vec<Row> = (0..300).map(|i| (i % 5, i * 7, i % 13)).collect();
    let job = Job::Session(Arc::new(session_spec(40, true)));
    let inputs = [batches(&rows, 8), no_input()];
    for workers in 1..=3 {
        let uninterrupted = run_job(&job, &inputs, workers, 0, None, None).unwrap();
        let checkpointing = Checkpointing {
            storage: Arc::new(MemoryStorage::default()),
            interval: Duration::from_millis(1),
        };
        let crash = Crash::AfterIdling(Duration::from_millis(100));
        let result = run_job(&job, &inputs, workers, 0, Some(&checkpointing), Some(crash));
        assert!(result.is_err_and(|e| e.to_string().contains("killed")));
        let checkpoint = checkpointing.storage.latest().unwrap().unwrap();
        let empty = empty_state(&job, workers);
        let states = states_of(&checkpoint, job.state_id());
        assert!(
            states.iter().any(|s| s.len() > empty.len()),
            "no session held"
        );
        run_job(&job, &inputs, workers, 0, Some(&checkpointing), None).unwrap();
        assert_eq!(
            apply_changes(&published(&checkpointing.storage)),
            apply_changes(&uninterrupted),
            "{workers} workers"
        );
    }
}

// ------------------------------------------------------------ corrupt state

/// The out-of-orderness of the corrupt-state tests' sources: rows wait
/// for the watermark, so a checkpoint midway finds some held.
const BOUND: i64 = 100;

/// The latest checkpoint of a run of `job` that dies midway.
fn checkpoint_midway(
    job: &Job,
    inputs: &[Arc<Vec<RecordBatch>>; 2],
    workers: usize,
    crash_after: usize,
) -> StoredCheckpoint {
    let checkpointing = Checkpointing {
        storage: Arc::new(MemoryStorage::default()),
        interval: Duration::ZERO,
    };
    let result = run_job(
        job,
        inputs,
        workers,
        BOUND,
        Some(&checkpointing),
        Some(Crash::AtPoll(crash_after)),
    );
    assert!(result.is_err(), "the crashing run fails");
    let storage = checkpointing.storage;
    let latest = storage
        .latest()
        .unwrap()
        .expect("a checkpoint before the crash");
    // Deltas resolved, so that it restores from a storage of its own.
    standalone(storage.as_ref(), &latest).unwrap()
}

/// The largest piece of `id`'s state on each worker (a standalone
/// checkpoint's state is a whole one and the deltas after it).
fn states_of(checkpoint: &StoredCheckpoint, id: &str) -> Vec<Vec<u8>> {
    decode_checkpoint(&checkpoint.state)
        .unwrap()
        .workers
        .iter()
        .filter_map(|worker| {
            let (_, entry) = worker.iter().find(|(i, _)| i == id)?;
            entry.pieces.iter().max_by_key(|p| p.len()).cloned()
        })
        .collect()
}

/// `checkpoint` with the largest piece of `id`'s state on every worker
/// replaced by `corrupt`.
fn with_state(checkpoint: &StoredCheckpoint, id: &str, corrupt: &[u8]) -> StoredCheckpoint {
    let Decoded {
        needs_from,
        mut workers,
    } = decode_checkpoint(&checkpoint.state).unwrap();
    for worker in &mut workers {
        for (i, entry) in worker.iter_mut() {
            if i == id {
                let pieces = &mut entry.pieces;
                let largest = (0..pieces.len()).max_by_key(|&p| pieces[p].len());
                match largest {
                    Some(at) => pieces[at] = corrupt.to_vec(),
                    None => *entry = Entry::full(corrupt.to_vec()),
                }
            }
        }
    }
    StoredCheckpoint {
        state: encode_checkpoint(&Decoded {
            needs_from,
            workers,
        }),
        ..checkpoint.clone()
    }
}

/// Cut short, lengthened, flipped anywhere and replaced.
fn corruptions(state: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let len = state.len();
    for cut in [0, 1, 3, 4, 7, 12, len / 3, len / 2, len - 1] {
        if cut < len {
            out.push(state[..cut].to_vec());
        }
    }
    out.push([state, &[0u8; 5][..]].concat());
    out.push(vec![0xAB; len.max(16)]);
    for at in [
        0,
        4,
        8,
        12,
        16,
        len / 4,
        len / 2,
        3 * len / 4,
        len - 5,
        len - 1,
    ] {
        if at < len {
            let mut flipped = state.to_vec();
            flipped[at] ^= 0x5A;
            out.push(flipped);
        }
    }
    out
}

pub(crate) fn corrupt_state_is_an_error(job: &Job, inputs: [Arc<Vec<RecordBatch>>; 2]) {
    let workers = 2;
    let id = job.state_id();
    let checkpoint = checkpoint_midway(job, &inputs, workers, 60);
    let states = states_of(&checkpoint, id);
    let state = states
        .iter()
        .max_by_key(|s| s.len())
        .unwrap_or_else(|| panic!("no state {id} in the checkpoint"));
    let empty = empty_state(job, workers);
    assert!(state.len() > empty.len(), "{id} holds nothing midway");
    for corrupt in corruptions(state) {
        let storage = Arc::new(MemoryStorage::default());
        storage
            .commit(&with_state(&checkpoint, id, &corrupt), Vec::new(), 1)
            .unwrap();
        let checkpointing = Checkpointing {
            storage,
            interval: Duration::from_millis(1),
        };
        let result = run_job(job, &inputs, workers, BOUND, Some(&checkpointing), None);
        if let Err(EngineError::Panic(message)) = &result {
            panic!(
                "{id}: restoring {} corrupt bytes panicked: {message}",
                corrupt.len()
            );
        }
        let error = result.expect_err("corrupt state was restored").to_string();
        assert!(error.contains("corrupt"), "{id}: {error}");
    }
}

/// The state `job` has after reading nothing.
fn empty_state(job: &Job, workers: usize) -> Vec<u8> {
    let checkpointing = Checkpointing {
        storage: Arc::new(MemoryStorage::default()),
        interval: Duration::from_millis(1),
    };
    let inputs = [no_input(), no_input()];
    run_job(job, &inputs, workers, BOUND, Some(&checkpointing), None).unwrap();
    let checkpoint = checkpointing.storage.latest().unwrap().unwrap();
    let checkpoint = standalone(checkpointing.storage.as_ref(), &checkpoint).unwrap();
    states_of(&checkpoint, job.state_id()).swap_remove(0)
}

/// Rows enough that worker 0 crashes after its 60th poll, midway.
pub(crate) fn some_rows() -> Vec<Row> {
    (0..2000)
        .map(|i| (i % 7, i * 3, (i * 37) % 41 - 20))
        .collect()
}

#[test]
fn a_corrupt_group_by_state_is_an_error() {
    let job = Job::GroupBy(Arc::new(group_by(true, false)));
    corrupt_state_is_an_error(&job, [batches(&some_rows(), 8), no_input()]);
    let job = Job::GroupBy(Arc::new(group_by_with(true, true, false)));
    let rows: Vec<(i64, i64, Option<usize>)> = some_rows()
        .into_iter()
        .map(|(k, ts, v)| (k, v, (ts % 4 == 0).then_some(3)))
        .collect();
    corrupt_state_is_an_error(&job, [changelog(&rows, 8, 2), no_input()]);
}

#[test]
fn a_corrupt_interval_join_state_is_an_error() {
    let job = Job::IntervalJoin(Arc::new(interval_spec(JoinKind::Full, -30, 30)));
    let right: Vec<Row> = some_rows()
        .into_iter()
        .map(|(k, ts, v)| (k, ts + 1, v))
        .collect();
    let inputs = [batches(&some_rows(), 8), right_batches(&right, 8)];
    corrupt_state_is_an_error(&job, inputs);
}

#[test]
fn a_corrupt_deduplication_or_top_n_state_is_an_error() {
    let inputs = [batches(&some_rows(), 8), no_input()];
    corrupt_state_is_an_error(
        &Job::Deduplicate(Arc::new(dedup_spec(true))),
        inputs.clone(),
    );
    corrupt_state_is_an_error(&Job::TopN(Arc::new(top_n_spec(true, 3))), inputs);
}

#[test]
fn a_corrupt_per_closed_time_state_is_an_error() {
    let inputs = [batches(&some_rows(), 8), right_batches(&some_rows(), 8)];
    corrupt_state_is_an_error(&Job::PerTime(2), inputs.clone());
    corrupt_state_is_an_error(&per_time_pair(JoinKind::Full), inputs);
}

#[test]
fn a_corrupt_append_join_state_is_an_error() {
    // Many keys, so that the pairs stay few while both sides keep all.
    let rows = |shift: i64| -> Vec<Row> {
        (0..2000)
            .map(|i| (i % 400, i * 3 + shift, (i * 37) % 41 - 20))
            .collect()
    };
    let job = Job::AppendJoin(Arc::new(append_spec(Some((-30, 30)))));
    let inputs = [batches(&rows(0), 8), right_batches(&rows(1), 8)];
    corrupt_state_is_an_error(&job, inputs);
}

#[test]
fn a_corrupt_session_state_is_an_error() {
    let job = Job::Session(Arc::new(session_spec(30, true)));
    corrupt_state_is_an_error(&job, [batches(&some_rows(), 8), no_input()]);
}

/// A job whose state a checkpoint cannot hold faithfully is refused when
/// it is built, not at its first checkpoint.
#[test]
fn a_distinct_count_of_floats_over_a_changelog_is_refused() {
    let mut spec = group_by(true, true);
    let float = as_type(v(), DataType::Float64);
    let input = spec.input_schema.clone();
    spec.aggregates = vec![aggregate(count_udaf(), float, "floats", true, &input)];
    spec.filters = vec![None];
    let fields = vec![
        Field::new("k", DataType::Int64, true),
        spec.aggregates[0].field().as_ref().clone(),
    ];
    spec.output_schema = with_op(&Schema::new(fields));
    let job = Job::GroupBy(Arc::new(spec));
    let rows: Vec<(i64, i64, Option<usize>)> = (0..20).map(|i| (i % 3, i, None)).collect();
    let inputs = [changelog(&rows, 4, 1), no_input()];
    let checkpointing = Checkpointing {
        storage: Arc::new(MemoryStorage::default()),
        interval: Duration::from_millis(1),
    };
    let error = run_job(&job, &inputs, 1, 0, Some(&checkpointing), None).unwrap_err();
    assert!(error.to_string().contains("do not cover"), "{error}");
    run_job(&job, &inputs, 1, 0, None, None).unwrap();
}
