//! Checkpoints of the differential operators: the updating GROUP BY,
//! top-N and regular join over changelogs. Their checkpoints hold what
//! went into differential and what came out of it; a restore replays the
//! input and cancels the output already published, so that the changelog
//! a crashed and resumed job publishes applies to what an uninterrupted
//! run's does.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::datatypes::{Int8Type, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::physical_expr::expressions::col;
use proptest::prelude::*;
use runnel_engine::EngineError;
use runnel_engine::batch::Batch;
use runnel_engine::changelog::{op_field, with_op};
use runnel_engine::checkpoint::MemoryStorage;
use runnel_engine::context::JobContext;
use runnel_engine::time::Watermark;
use runnel_engine::updating::group_aggregate::{GroupAggregate, group_aggregate};
use runnel_engine::updating::join::{RegularJoin, RegularJoinKind, regular_join};
use runnel_engine::updating::top_n::{TopN, top_n};
use timely::dataflow::Stream;

use crate::checkpoint_operators::{
    Checkpointing, CustomJob, Job, PACED, aggregate, changelog, corrupt_state_is_an_error,
    group_by_with, holds_a_delta, nullable, resumed_equals_uninterrupted, right_schema, run_job,
    runs, v,
};
use crate::support::schema;

enum Differential {
    GroupBy(Arc<GroupAggregate>),
    TopN(Arc<TopN>),
    Join(Arc<RegularJoin>),
}

/// A differential operator, and which of its two states a corrupt-state
/// test spoils.
struct DifferentialJob {
    operator: Differential,
    state: &'static str,
}

impl CustomJob for DifferentialJob {
    fn state_id(&self) -> &'static str {
        self.state
    }

    fn build<'scope>(
        &self,
        first: Stream<'scope, Watermark, Batch>,
        second: Stream<'scope, Watermark, Batch>,
        context: Arc<JobContext>,
    ) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
        match &self.operator {
            Differential::GroupBy(spec) => group_aggregate(first, spec.clone(), context),
            Differential::TopN(spec) => top_n(first, spec.clone(), context),
            Differential::Join(spec) => regular_join(first, second, spec.clone(), context),
        }
    }
}

fn job(operator: Differential) -> Job {
    job_spoiling(operator, "DifferentialOutput#0")
}

fn job_spoiling(operator: Differential, state: &'static str) -> Job {
    Job::Custom(Arc::new(DifferentialJob { operator, state }))
}

/// MIN and MAX over a changelog, which only differential answers, beside
/// COUNT, SUM, AVG, COUNT DISTINCT and an exact SUM of decimals.
fn group_by(keyed: bool) -> GroupAggregate {
    let mut spec = group_by_with(keyed, true, true);
    let input = spec.input_schema.clone();
    spec.aggregates.extend([
        aggregate(min_udaf(), v(), "lo", false, &input),
        aggregate(max_udaf(), v(), "hi", false, &input),
    ]);
    spec.filters.extend([None, None]);
    let mut fields: Vec<Field> = spec.output_schema.fields()
        [..spec.output_schema.fields().len() - 1]
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(
        spec.aggregates[spec.aggregates.len() - 2..]
            .iter()
            .map(|a| a.field().as_ref().clone()),
    );
    spec.output_schema = with_op(&Schema::new(fields));
    spec
}

/// `ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) <= limit` over a
/// changelog.
fn top_n_spec(keyed: bool, limit: usize) -> TopN {
    let mut fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("rn", DataType::UInt64, false));
    fields.push(op_field());
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
        input_schema: with_op(&schema()),
        output_schema: Arc::new(Schema::new(fields)),
        ttl: None,
    }
}

fn join_spec(kind: RegularJoinKind) -> RegularJoin {
    let (left, right) = (with_op(&schema()), with_op(&right_schema()));
    let joined = nullable(&[&schema(), &right_schema()]);
    let output = match kind {
        RegularJoinKind::Semi | RegularJoinKind::Anti => with_op(&nullable(&[&schema()])),
        _ => with_op(&joined),
    };
    RegularJoin {
        kind,
        left_keys: vec![col("k", &left).unwrap()],
        right_keys: vec![col("rk", &right).unwrap()],
        filter: None,
        left_schema: left,
        right_schema: right,
        joined_schema: joined,
        output_schema: output,
        ttl: None,
    }
}

/// `changelog`'s batches as the right side's columns.
fn as_right(batches: Arc<Vec<RecordBatch>>) -> Arc<Vec<RecordBatch>> {
    let schema: SchemaRef = with_op(&right_schema());
    Arc::new(
        batches
            .iter()
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()).unwrap())
            .collect(),
    )
}

fn join_kinds() -> impl Strategy<Value = RegularJoinKind> {
    prop_oneof![
        Just(RegularJoinKind::Inner),
        Just(RegularJoinKind::Left),
        Just(RegularJoinKind::Full),
        Just(RegularJoinKind::Semi),
        Just(RegularJoinKind::Anti),
    ]
}

/// `changelog`, with each retraction at its insert's `ts`: a join's
/// output rows hold the whole input row, so a retraction must repeat it.
fn whole_row_changelog(
    rows: &[(i64, i64, Option<usize>)],
    batch_rows: usize,
    workers: usize,
) -> Arc<Vec<RecordBatch>> {
    let batches = changelog(rows, batch_rows, workers);
    let mut inserted: std::collections::HashMap<(i64, i64), Vec<i64>> = Default::default();
    Arc::new(
        batches
            .iter()
            .map(|batch| {
                let column = |i: usize| batch.column(i).as_primitive::<Int64Type>().clone();
                let (k, ts, v) = (column(0), column(1), column(2));
                let ops = batch.column(3).as_primitive::<Int8Type>();
                let times: Int64Array = (0..batch.num_rows())
                    .map(|i| {
                        let key = (k.value(i), v.value(i));
                        let times = inserted.entry(key).or_default();
                        // +I and +U add a row, -U and -D take one away.
                        if ops.value(i) % 2 == 0 {
                            times.push(ts.value(i));
                            Some(ts.value(i))
                        } else {
                            Some(times.pop().unwrap_or(ts.value(i)))
                        }
                    })
                    .collect();
                let mut columns = batch.columns().to_vec();
                columns[1] = Arc::new(times);
                RecordBatch::try_new(batch.schema(), columns).unwrap()
            })
            .collect(),
    )
}

/// Inserts of `(k, v)`, each retracted some rows later or never.
fn changes() -> impl Strategy<Value = Vec<(i64, i64, Option<usize>)>> {
    prop::collection::vec((0i64..6, -20i64..20, prop::option::of(0usize..12)), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The replayed input derives every group's aggregates again; what was
    /// published before the crash cancels it, so -U/+U pairs continue
    /// from it.
    #[test]
    fn a_differential_group_by_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in changes(),
        batch_rows in 1usize..12,
        keyed in prop::bool::weighted(0.8),
        run in runs(),
    ) {
        let job = job(Differential::GroupBy(Arc::new(group_by(keyed))));
        let inputs = [changelog(&rows, batch_rows, run.workers), no_rows()];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }

    #[test]
    fn a_differential_top_n_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in changes(),
        batch_rows in 1usize..12,
        keyed in prop::bool::weighted(0.8),
        limit in 1usize..4,
        run in runs(),
    ) {
        let job = job(Differential::TopN(Arc::new(top_n_spec(keyed, limit))));
        let inputs = [changelog(&rows, batch_rows, run.workers), no_rows()];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }

    #[test]
    fn a_regular_join_of_changelogs_resumed_from_a_checkpoint_equals_one_never_killed(
        lefts in changes(),
        rights in changes(),
        batch_rows in 1usize..12,
        kind in join_kinds(),
        run in runs(),
    ) {
        let job = job(Differential::Join(Arc::new(join_spec(kind))));
        let inputs = [
            whole_row_changelog(&lefts, batch_rows, run.workers),
            as_right(whole_row_changelog(&rights, batch_rows, run.workers)),
        ];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }
}

fn no_rows() -> Arc<Vec<RecordBatch>> {
    crate::checkpoint_operators::no_input()
}

/// After a whole state, checkpoints hold only what changed.
#[test]
fn a_differential_group_by_over_many_keys_checkpoints_deltas() {
    let mut rows: Vec<(i64, i64, Option<usize>)> = (0..400).map(|i| (i, i % 7, None)).collect();
    rows.extend((0..400).map(|i| (i % 3, i % 5, Some(2))));
    let spec = group_by_with(true, true, false);
    let job = job(Differential::GroupBy(Arc::new(spec)));
    let inputs = [changelog(&rows, 2, 1), no_rows()];
    let checkpointing = Checkpointing {
        storage: Arc::new(MemoryStorage::default()),
        interval: Duration::ZERO,
    };
    run_job(&job, &inputs, 1, 0, Some(&checkpointing), PACED).unwrap();
    assert!(holds_a_delta(&checkpointing.storage));
}

#[test]
fn a_corrupt_differential_state_is_an_error() {
    let rows: Vec<(i64, i64, Option<usize>)> = (0..2000)
        .map(|i| (i % 50, i % 13, (i % 4 == 0).then_some(3)))
        .collect();
    for state in ["DifferentialInput#0", "DifferentialOutput#0"] {
        let job = job_spoiling(Differential::GroupBy(Arc::new(group_by(true))), state);
        corrupt_state_is_an_error(&job, [changelog(&rows, 8, 2), no_rows()]);
    }
}

/// A TTL expires keys by the clock, which a checkpoint does not hold.
#[test]
fn a_differential_operator_with_a_state_ttl_is_refused_when_checkpointed() {
    let mut spec = group_by(true);
    spec.ttl = Some(Duration::from_secs(60));
    let job = job(Differential::GroupBy(Arc::new(spec)));
    let rows: Vec<(i64, i64, Option<usize>)> = (0..20).map(|i| (i % 3, i, None)).collect();
    let inputs = [changelog(&rows, 4, 1), no_rows()];
    let checkpointing = Checkpointing {
        storage: Arc::new(MemoryStorage::default()),
        interval: Duration::from_millis(1),
    };
    let error = run_job(&job, &inputs, 1, 0, Some(&checkpointing), None).unwrap_err();
    assert!(
        error.to_string().contains("table.exec.state.ttl"),
        "{error}"
    );
    run_job(&job, &inputs, 1, 0, None, None).unwrap();
}
