//! Checkpoints of the operators that read rows in event-time order: OVER
//! aggregations and ORDER BY on a time attribute. Each runs in a job
//! killed at random moments and resumed from its last checkpoint (the
//! harness of `checkpoint_operators`); what its exactly-once sink
//! published is what an uninterrupted run gives. Rows have distinct
//! times: rows of one time from two workers would be taken in arrival
//! order, which no run repeats.

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use proptest::prelude::*;
use runnel_engine::EngineError;
use runnel_engine::batch::Batch;
use runnel_engine::context::JobContext;
use runnel_engine::over::{Frame, OverAggregate, over_aggregate};
use runnel_engine::rank::temporal_sort::{SortSpec, temporal_sort};
use runnel_engine::time::Watermark;
use timely::dataflow::Stream;

use crate::checkpoint_operators::{
    CustomJob, Job, Run, batches, corrupt_state_is_an_error, distinct_times, no_input,
    resumed_equals_uninterrupted, runs, some_rows, v,
};
use crate::support::{Row, schema};

// ------------------------------------------------------------------- OVER

struct Over(Arc<OverAggregate>);

impl CustomJob for Over {
    fn state_id(&self) -> &'static str {
        "OverAggregate#0"
    }

    fn build<'scope>(
        &self,
        first: Stream<'scope, Watermark, Batch>,
        _second: Stream<'scope, Watermark, Batch>,
        context: Arc<JobContext>,
    ) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
        Ok(over_aggregate(first, self.0.clone(), context))
    }
}

fn aggregate(fun: Arc<AggregateUDF>, name: &str, distinct: bool) -> Arc<AggregateFunctionExpr> {
    Arc::new(
        AggregateExprBuilder::new(fun, vec![v()])
            .schema(schema())
            .alias(name)
            .with_distinct(distinct)
            .build()
            .unwrap(),
    )
}

/// `SUM(v), COUNT(v), MIN(v), MAX(v), COUNT(DISTINCT v) OVER (PARTITION
/// BY k ORDER BY ts <frame>)`: sliding accumulators over a bounded frame,
/// COUNT DISTINCT recomputed over its rows; over an unbounded one, plain
/// accumulators whose intermediate states a checkpoint holds.
fn over_spec(keyed: bool, frame: Frame) -> OverAggregate {
    let aggregates = vec![
        aggregate(sum_udaf(), "sum_v", false),
        aggregate(count_udaf(), "count_v", false),
        aggregate(min_udaf(), "min_v", false),
        aggregate(max_udaf(), "max_v", false),
        aggregate(count_udaf(), "distinct_v", true),
    ];
    let mut fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(aggregates.iter().map(|a| a.field().as_ref().clone()));
    OverAggregate {
        partition: if keyed { vec![0] } else { Vec::new() },
        time_column: 1,
        frame,
        aggregates,
        output_schema: Arc::new(Schema::new(fields)) as SchemaRef,
        ttl: None,
    }
}

fn over(keyed: bool, frame: Frame) -> Job {
    Job::Custom(Arc::new(Over(Arc::new(over_spec(keyed, frame)))))
}

fn frames() -> impl Strategy<Value = Frame> {
    prop_oneof![
        Just(Frame::Rows { preceding: None }),
        (0u64..5).prop_map(|n| Frame::Rows { preceding: Some(n) }),
        Just(Frame::Range { preceding: None }),
        (1i64..300).prop_map(|ms| Frame::Range {
            preceding: Some(ms)
        }),
    ]
}

// --------------------------------------------------------- ORDER BY time

struct Sort(Arc<SortSpec>);

impl CustomJob for Sort {
    fn state_id(&self) -> &'static str {
        "TemporalSort#0"
    }

    fn build<'scope>(
        &self,
        first: Stream<'scope, Watermark, Batch>,
        _second: Stream<'scope, Watermark, Batch>,
        context: Arc<JobContext>,
    ) -> Result<Stream<'scope, Watermark, Batch>, EngineError> {
        Ok(temporal_sort(first, self.0.clone(), context))
    }
}

/// `ORDER BY ts, v DESC [LIMIT limit]`.
fn sort(limit: Option<usize>) -> Job {
    let descending = SortOptions {
        descending: true,
        nulls_first: false,
    };
    Job::Custom(Arc::new(Sort(Arc::new(SortSpec {
        time_column: 1,
        then_by: vec![(2, descending)],
        limit,
    }))))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The rows waiting for the watermark and each partition's frame (its
    /// rows, or its accumulators' states) survive the crashes, so rows
    /// after a restore aggregate over the rows before it.
    #[test]
    fn an_over_aggregation_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..6, 0i64..3000, -100i64..100), 1..160),
        batch_rows in 1usize..20,
        keyed in prop::bool::weighted(0.8),
        frame in frames(),
        run in runs(),
    ) {
        let rows: Vec<Row> = distinct_times(rows);
        let job = over(keyed, frame);
        let inputs = [batches(&rows, batch_rows), no_input()];
        let out = resumed_equals_uninterrupted(&job, inputs, &run)?;
        prop_assert_eq!(out.len(), rows.len(), "a result per row");
    }

    /// The stash, the rows carried over to a later watermark and how many
    /// rows a LIMIT gave survive the crashes.
    #[test]
    fn an_order_by_time_resumed_from_a_checkpoint_equals_one_never_killed(
        rows in prop::collection::vec((0i64..6, 0i64..3000, -100i64..100), 1..160),
        batch_rows in 1usize..20,
        limit in prop::option::weighted(0.7, 1usize..40),
        run in runs(),
    ) {
        let rows: Vec<Row> = distinct_times(rows);
        let inputs = [batches(&rows, batch_rows), no_input()];
        let out = resumed_equals_uninterrupted(&sort(limit), inputs, &run)?;
        prop_assert_eq!(out.len(), limit.map_or(rows.len(), |l| l.min(rows.len())));
    }
}

/// Many rows, read over many activations, so that checkpoints find rows
/// waiting for the watermark and frames full.
#[test]
fn an_over_aggregation_resumed_midway_equals_one_never_killed() {
    let frames = [
        Frame::Rows { preceding: None },
        Frame::Rows { preceding: Some(3) },
        Frame::Range { preceding: None },
        Frame::Range {
            preceding: Some(50),
        },
    ];
    for (i, frame) in frames.into_iter().enumerate() {
        let run = Run {
            workers: 1 + 2 * (i % 2),
            bound: 30,
            interval_ms: 0,
            crashes: vec![0.2, 0.5, 0.8],
        };
        let inputs = [batches(&some_rows(), 4), no_input()];
        let out = resumed_equals_uninterrupted(&over(i < 3, frame), inputs, &run).unwrap();
        assert_eq!(out.len(), some_rows().len());
    }
}

/// Checkpoints taken after a LIMIT was reached, and crashes after them:
/// a resumed sort gives nothing more.
#[test]
fn an_order_by_time_resumed_after_its_limit_gives_no_more() {
    let run = Run {
        workers: 2,
        bound: 10,
        interval_ms: 1,
        crashes: vec![0.3, 0.6, 0.9],
    };
    let inputs = [batches(&some_rows(), 8), no_input()];
    let out = resumed_equals_uninterrupted(&sort(Some(5)), inputs, &run).unwrap();
    assert_eq!(out.len(), 5);
}

/// Many rows, read over many activations, so that checkpoints find rows
/// in the stash and carried over to a later watermark.
#[test]
fn an_order_by_time_resumed_midway_equals_one_never_killed() {
    for workers in [1, 3] {
        let run = Run {
            workers,
            bound: 30,
            interval_ms: 0,
            crashes: vec![0.2, 0.5, 0.8],
        };
        let inputs = [batches(&some_rows(), 4), no_input()];
        let out = resumed_equals_uninterrupted(&sort(None), inputs, &run).unwrap();
        assert_eq!(out.len(), some_rows().len());
    }
}

#[test]
fn a_corrupt_over_aggregation_state_is_an_error() {
    let inputs = [batches(&some_rows(), 8), no_input()];
    for frame in [
        Frame::Rows { preceding: Some(3) },
        Frame::Range { preceding: None },
    ] {
        corrupt_state_is_an_error(&over(true, frame), inputs.clone());
    }
}

#[test]
fn a_corrupt_order_by_time_state_is_an_error() {
    let inputs = [batches(&some_rows(), 8), no_input()];
    corrupt_state_is_an_error(&sort(None), inputs);
}
