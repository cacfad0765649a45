//! Checkpoints of MATCH_RECOGNIZE and the event-time temporal join, run
//! by `checkpoint_operators`' harness: killed at random moments and
//! resumed from the last checkpoint, each publishes what an uninterrupted
//! run does; corrupt state is an error on restore, never a panic.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::{binary, col, lit};
use proptest::prelude::*;
use runnel_engine::EngineError;
use runnel_engine::batch::Batch;
use runnel_engine::context::JobContext;
use runnel_engine::join::kernel::JoinKind;
use runnel_engine::join::temporal::{TemporalJoin, temporal_join};
use runnel_engine::pattern::{
    Element, Expression, MatchRecognize, Reference, Skip, match_recognize,
};
use runnel_engine::time::Watermark;
use timely::dataflow::Stream;

use crate::checkpoint_operators::{
    CustomJob, Job, batches, corrupt_state_is_an_error, distinct_times, in_time_order, join_spec,
    no_input, resumed_equals_uninterrupted, right_batches, right_schema, run_job, runs, some_rows,
};
use crate::support::{Row, schema};

// -------------------------------------------------------- MATCH_RECOGNIZE

struct Pattern(Arc<MatchRecognize>);

impl CustomJob for Pattern {
    fn state_id(&self) -> &'static str {
        "MatchRecognize#0"
    }

    fn build<'scope>(
        &self,
        first: Stream<'scope, Watermark, Batch>,
        _second: Stream<'scope, Watermark, Batch>,
        context: Arc<JobContext>,
    ) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
        Ok(match_recognize(first, self.0.clone(), context))
    }
}

/// An expression over `references`, all `BIGINT`, that `expr` builds from
/// their columns `c0`, `c1`, ...
fn expression(
    references: Vec<Reference>,
    expr: impl FnOnce(&[Arc<dyn PhysicalExpr>], &SchemaRef) -> Arc<dyn PhysicalExpr>,
) -> Expression {
    let fields: Vec<Field> = (0..references.len())
        .map(|i| Field::new(format!("c{i}"), DataType::Int64, true))
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let columns: Vec<Arc<dyn PhysicalExpr>> = (0..references.len())
        .map(|i| col(&format!("c{i}"), &schema).unwrap())
        .collect();
    let expr = expr(&columns, &schema);
    Expression {
        references,
        schema,
        expr,
    }
}

fn last(variable: Option<usize>, column: usize, offset: usize) -> Reference {
    Reference::Last {
        variable,
        column,
        offset,
    }
}

/// `PARTITION BY k ORDER BY ts MEASURES A.ts, C.ts, SUM(B.v), LAST(B.v)
/// PATTERN (A B{1,max} C) DEFINE A AS v < 5, B AS v > PREV(v), C AS
/// v < A.v`: B's condition looks back at the row before it (evaluated a
/// firing at a time), C's at the match's first row (per partial match),
/// and SUM reads each B row's aggregate argument. With `c_by_sum`, C is
/// `SUM(B.v) > 10` instead: a match that started later may then complete
/// while an earlier one goes on (reluctant B), and is held back behind it.
fn pattern_spec(
    max: Option<u32>,
    greedy: bool,
    skip: Skip,
    within: Option<i64>,
    c_by_sum: bool,
) -> MatchRecognize {
    let (v, ts) = (2, 1);
    let a = expression(vec![last(None, v, 0)], |c, s| {
        binary(c[0].clone(), Operator::Lt, lit(5i64), s).unwrap()
    });
    let b = expression(vec![last(None, v, 0), last(None, v, 1)], |c, s| {
        binary(c[0].clone(), Operator::Gt, c[1].clone(), s).unwrap()
    });
    let c = match c_by_sum {
        false => expression(vec![last(None, v, 0), last(Some(0), v, 0)], |c, s| {
            binary(c[0].clone(), Operator::Lt, c[1].clone(), s).unwrap()
        }),
        true => expression(
            vec![Reference::Aggregate {
                variable: Some(1),
                aggregate: 0,
            }],
            |c, s| binary(c[0].clone(), Operator::Gt, lit(10i64), s).unwrap(),
        ),
    };
    let plain = |references: Vec<Reference>| expression(references, |c, _| c[0].clone());
    let measures = vec![
        plain(vec![last(Some(0), ts, 0)]),
        plain(vec![last(Some(2), ts, 0)]),
        plain(vec![Reference::Aggregate {
            variable: Some(1),
            aggregate: 0,
        }]),
        plain(vec![last(Some(1), v, 0)]),
    ];
    let sum = AggregateExprBuilder::new(sum_udaf(), vec![col("v", &schema()).unwrap()])
        .schema(schema())
        .alias("sum_v")
        .build()
        .unwrap();
    let output = Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("a_ts", DataType::Int64, true),
        Field::new("c_ts", DataType::Int64, true),
        Field::new("b_sum", DataType::Int64, true),
        Field::new("b_last", DataType::Int64, true),
    ]);
    let single = |variable| Element {
        variable,
        min: 1,
        max: Some(1),
        greedy: false,
    };
    MatchRecognize {
        partition: vec![0],
        time_column: 1,
        then_by: Vec::new(),
        variables: vec!["A".into(), "B".into(), "C".into()],
        pattern: vec![
            single(0),
            Element {
                variable: 1,
                min: 1,
                max,
                greedy,
            },
            single(2),
        ],
        skip,
        within,
        conditions: vec![Some(a), Some(b), Some(c)],
        measures,
        aggregates: vec![Arc::new(sum)],
        input_schema: schema(),
        output_schema: Arc::new(output),
    }
}

fn pattern_job(
    max: Option<u32>,
    greedy: bool,
    skip: Skip,
    within: Option<i64>,
    c_by_sum: bool,
) -> Job {
    let spec = pattern_spec(max, greedy, skip, within, c_by_sum);
    Job::Custom(Arc::new(Pattern(Arc::new(spec))))
}

fn skips() -> impl Strategy<Value = Skip> {
    prop::sample::select(vec![
        Skip::PastLastRow,
        Skip::ToNextRow,
        Skip::ToLast(1),
        Skip::ToFirst(2),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Each partition's partial and held-back matches, the rows they and
    /// `PREV` read, the rows waiting for the watermark and the WITHIN
    /// clock survive the crashes.
    #[test]
    fn a_match_recognize_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..3, 0i64..4000, -20i64..20), 20..400),
        batch_rows in 1usize..6,
        max in prop::option::of(2u32..5),
        greedy in any::<bool>(),
        skip in skips(),
        within in prop::option::of(20i64..400),
        c_by_sum in any::<bool>(),
        run in runs(),
    ) {
        let job = pattern_job(max, greedy, skip, within, c_by_sum);
        let inputs = [batches(&distinct_times(rows), batch_rows), no_input()];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }
}

/// The pattern matches rows of the corrupt-state tests' input, so that
/// their checkpoints hold partial matches.
#[test]
fn the_pattern_matches_some_rows() {
    let job = pattern_job(Some(3), true, Skip::ToNextRow, None, false);
    let inputs = [batches(&some_rows(), 8), no_input()];
    let out = run_job(&job, &inputs, 2, 0, None, None).unwrap();
    assert!(out.len() > 10, "{} matches", out.len());
}

#[test]
fn a_corrupt_match_recognize_state_is_an_error() {
    for (within, c_by_sum) in [(None, false), (Some(200), true)] {
        let job = pattern_job(Some(3), false, Skip::ToNextRow, within, c_by_sum);
        corrupt_state_is_an_error(&job, [batches(&some_rows(), 8), no_input()]);
    }
}

// ------------------------------------------------ event-time temporal join

struct Temporal(Arc<TemporalJoin>);

impl CustomJob for Temporal {
    fn state_id(&self) -> &'static str {
        "TemporalJoin#0"
    }

    fn build<'scope>(
        &self,
        first: Stream<'scope, Watermark, Batch>,
        second: Stream<'scope, Watermark, Batch>,
        context: Arc<JobContext>,
    ) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
        Ok(temporal_join(first, second, self.0.clone(), context))
    }
}

/// `JOIN r FOR SYSTEM_TIME AS OF ts ON k = rk`, with a condition on the
/// version found (`rv > -10`) and one rows must meet to be versions at
/// all (`rv <> 0`), each if asked.
fn temporal_job(kind: JoinKind, version_filter: bool, before_versions: bool) -> Job {
    temporal_job_over(right_schema(), kind, version_filter, before_versions)
}

/// The same over a versioned side of `right`'s columns.
fn temporal_job_over(
    right: SchemaRef,
    kind: JoinKind,
    version_filter: bool,
    before_versions: bool,
) -> Job {
    let rv = || col("rv", &right).unwrap();
    let spec = TemporalJoin {
        join: join_spec(kind, &schema(), &right, &[0], None),
        left_time: 1,
        right_time: 1,
        version_filter: version_filter
            .then(|| binary(rv(), Operator::Gt, lit(-10i64), &right).unwrap()),
        before_versions: before_versions
            .then(|| binary(rv(), Operator::NotEq, lit(0i64), &right).unwrap()),
        left_route: vec![0],
        right_route: vec![0],
    };
    Job::Custom(Arc::new(Temporal(Arc::new(spec))))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Each key's versions still needed and the probe rows waiting for
    /// both watermarks survive the crashes. Versions have distinct times:
    /// of two of one key and time, the later to arrive wins, which no
    /// run repeats.
    #[test]
    fn a_temporal_join_resumed_from_a_checkpoint_equals_one_never_killed(
        left in prop::collection::vec((0i64..5, 0i64..1500, -100i64..100), 1..120),
        right in prop::collection::vec((0i64..5, 0i64..1500, -20i64..20), 1..120),
        left_join in any::<bool>(),
        version_filter in any::<bool>(),
        before_versions in any::<bool>(),
        batch_rows in 1usize..12,
        run in runs(),
    ) {
        let kind = if left_join { JoinKind::Left } else { JoinKind::Inner };
        let job = temporal_job(kind, version_filter, before_versions);
        let inputs = [
            batches(&in_time_order(left), batch_rows),
            right_batches(&distinct_times(right), batch_rows),
        ];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }
}

#[test]
fn a_corrupt_temporal_join_state_is_an_error() {
    let right: Vec<Row> = some_rows()
        .into_iter()
        .map(|(k, ts, v)| (k, ts + 1, v))
        .collect();
    let job = temporal_job(JoinKind::Left, true, false);
    corrupt_state_is_an_error(&job, [batches(&some_rows(), 8), right_batches(&right, 8)]);
}

/// The versioned side as a changelog: `rv` mod 5 decides each row's kind
/// (0 a delete, 1 an update's before image, which is skipped, the rest
/// versions), so every run reads the same changelog.
fn changelog_kind(v: i64) -> runnel_engine::changelog::RowKind {
    use runnel_engine::changelog::RowKind;
    match v.rem_euclid(5) {
        0 => RowKind::Delete,
        1 => RowKind::UpdateBefore,
        _ => RowKind::Insert,
    }
}

fn changelog_batches(rows: &[Row], batch_rows: usize) -> Arc<Vec<RecordBatch>> {
    let schema = runnel_engine::changelog::with_op(&right_schema());
    Arc::new(
        rows.chunks(batch_rows)
            .map(|rows| {
                let mut columns = crate::support::batch_of(rows).columns().to_vec();
                let kinds: Vec<_> = rows.iter().map(|r| changelog_kind(r.2)).collect();
                columns.push(runnel_engine::changelog::op_array(&kinds));
                RecordBatch::try_new(schema.clone(), columns).unwrap()
            })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Against a changelog the deletes kept as ends of versions survive
    /// the crashes too: restored, they still hide the version they end.
    #[test]
    fn a_temporal_join_of_a_changelog_resumed_from_a_checkpoint_equals_one_never_killed(
        left in prop::collection::vec((0i64..4, 0i64..1500, -100i64..100), 1..120),
        right in prop::collection::vec((0i64..4, 0i64..1500, -20i64..20), 1..120),
        left_join in any::<bool>(),
        batch_rows in 1usize..12,
        run in runs(),
    ) {
        let kind = if left_join { JoinKind::Left } else { JoinKind::Inner };
        let versioned = runnel_engine::changelog::with_op(&right_schema());
        let job = temporal_job_over(versioned, kind, false, false);
        let inputs = [
            batches(&in_time_order(left), batch_rows),
            changelog_batches(&distinct_times(right), batch_rows),
        ];
        resumed_equals_uninterrupted(&job, inputs, &run)?;
    }
}
