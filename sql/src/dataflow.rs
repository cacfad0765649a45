//! A planned job made into a timely dataflow on every worker and run:
//! each node becomes its engine operator, each pipeline ends in its sink.
use crate::plan::{GroupOperator, TopNOperator};
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use runnel_engine::connector::SinkProvider;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::{Cluster, run};
use runnel_engine::sink::sink;
use runnel_engine::source::source;
use runnel_engine::stateless::map_batches;
use runnel_engine::time::Watermark;
use runnel_engine::window::operator::window_aggregate;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use crate::error::SqlError;
use crate::plan::Node;

/// Where a pipeline's rows go.
pub enum Output {
    Table {
        name: String,
        provider: Arc<dyn SinkProvider>,
    },
    /// A bare SELECT: printed, or collected by whoever runs the job.
    Results,
}

pub struct Pipeline {
    pub node: Node,
    pub schema: SchemaRef,
    pub output: Output,
}

/// Everything a script asked to run, as one dataflow.
#[derive(Default)]
pub struct Job {
    pub pipelines: Vec<Pipeline>,
}

impl Job {
    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }

    /// Runs every pipeline as one dataflow until all sources end. Bare
    /// SELECT results go to `results`.
    pub fn run(
        self,
        cluster: &Cluster,
        context: Arc<JobContext>,
        results: Arc<dyn SinkProvider>,
    ) -> Result<(), SqlError> {
        let job = Arc::new(self);
        run(cluster, context, move |worker, context| {
            let (index, peers) = (worker.index(), worker.peers());
            let job = job.clone();
            let results = results.clone();
            worker.dataflow::<Watermark, _, _>(move |scope| {
                let probe = ProbeHandle::new();
                for (i, pipeline) in job.pipelines.iter().enumerate() {
                    let (name, provider) = match &pipeline.output {
                        Output::Table { name, provider } => (name.as_str(), provider),
                        Output::Results => ("results", &results),
                    };
                    let mut built = Built {
                        streams: HashMap::new(),
                        pipeline: name.to_string(),
                    };
                    let stream = build(&pipeline.node, scope, &context, index, peers, &mut built)?;
                    let writer = provider.sink(index, peers)?;
                    sink(
                        stream,
                        &format!("Sink({i}: {name})"),
                        writer,
                        context.clone(),
                        &probe,
                    );
                }
                Ok(probe)
            })
        })
        .map_err(SqlError::from)
    }
}

static PLANNER_NUMBERING: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?P<name>__runnel_[a-z_]+?)[0-9]+").expect("a valid pattern")
});

/// A pipeline's streams built so far, and the pipeline's sink.
struct Built<'scope> {
    streams: HashMap<usize, Stream<'scope, Watermark, runnel_engine::batch::Batch>>,
    pipeline: String,
}

/// What a checkpointed node's states are filed under: its pipeline's sink
/// and a hash of the node and everything under it as EXPLAIN shows them
/// (operators, keys, aggregates, tables), so that a savepoint restored
/// into changed SQL gives each state only to the operator that made it,
/// whatever order the statements come in. FNV-1a, which no Rust release
/// changes, since checkpoints outlive the binary that wrote them.
fn state_scope(pipeline: &str, node: &Node) -> String {
    let explained = crate::explain::explain(node, 0);
    // Names the planner numbers in the order it meets them (a window's
    // input, a source's alias) would tie the hash to the statements
    // before this one.
    let explained = PLANNER_NUMBERING.replace_all(&explained, "$name");
    let hash = explained
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{pipeline}:{hash:016x}")
}

fn build<'scope>(
    node: &Node,
    scope: Scope<'scope, Watermark>,
    context: &Arc<JobContext>,
    index: usize,
    peers: usize,
    memo: &mut Built<'scope>,
) -> Result<Stream<'scope, Watermark, runnel_engine::batch::Batch>, runnel_engine::EngineError> {
    let _states = runnel_engine::checkpoint::worker::mode().map(|_| {
        runnel_engine::checkpoint::worker::StateScope::enter(state_scope(&memo.pipeline, node))
    });
    build_node(node, scope, context, index, peers, memo)
}

fn build_node<'scope>(
    node: &Node,
    scope: Scope<'scope, Watermark>,
    context: &Arc<JobContext>,
    index: usize,
    peers: usize,
    memo: &mut Built<'scope>,
) -> Result<Stream<'scope, Watermark, runnel_engine::batch::Batch>, runnel_engine::EngineError> {
    Ok(match node {
        Node::Shared { id, input } => match memo.streams.get(id) {
            Some(stream) => stream.clone(),
            None => {
                let stream = build(input, scope, context, index, peers, memo)?;
                memo.streams.insert(*id, stream.clone());
                stream
            }
        },
        Node::Source {
            table,
            provider,
            event_time,
            late_rows,
        } => {
            let reader = provider.reader(index, peers)?;
            let late_rows = match late_rows {
                Some(late) => Some(late.sink(index, peers)?),
                None => None,
            };
            source(
                scope,
                &format!("Source({})", table.name),
                reader,
                event_time.clone(),
                late_rows,
                context.clone(),
            )
        }
        Node::Map { input, name, f } => map_batches(
            build(input, scope, context, index, peers, memo)?,
            name,
            f.clone(),
            context.clone(),
        ),
        Node::WindowAggregate { input, spec, .. } => window_aggregate(
            build(input, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        )?,
        Node::PerClosedTime {
            input,
            name,
            key_columns,
            f,
        } => runnel_engine::rank::closed_time::per_closed_time(
            build(input, scope, context, index, peers, memo)?,
            name,
            key_columns.clone(),
            f.clone(),
            context.clone(),
        ),
        Node::TemporalSort { input, spec, .. } => {
            runnel_engine::rank::temporal_sort::temporal_sort(
                build(input, scope, context, index, peers, memo)?,
                spec.clone(),
                context.clone(),
            )
        }
        Node::OverAggregate { input, spec, .. } => runnel_engine::over::over_aggregate(
            build(input, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        ),
        Node::TemporalJoin {
            left, right, spec, ..
        } => runnel_engine::join::temporal::temporal_join(
            build(left, scope, context, index, peers, memo)?,
            build(right, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        ),
        Node::LookupJoin { input, spec, .. } => runnel_engine::join::lookup::lookup_join(
            build(input, scope, context, index, peers, memo)?,
            spec.clone(),
            index,
            context.clone(),
        ),
        Node::MatchRecognize { input, spec, .. } => runnel_engine::pattern::match_recognize(
            build(input, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        ),
        Node::WindowAssign { input, spec } => runnel_engine::window::assign::assign_windows(
            build(input, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        ),
        Node::WindowJoin {
            left,
            right,
            spec,
            routes,
            ..
        } => {
            let join = spec.clone();
            let f: runnel_engine::rank::closed_time::ClosedTimePairFn =
                Arc::new(move |lefts, rights| join.join_all(&lefts, &rights));
            runnel_engine::rank::closed_time::per_closed_time_pair(
                build(left, scope, context, index, peers, memo)?,
                build(right, scope, context, index, peers, memo)?,
                "WindowJoin",
                routes.clone(),
                f,
                context.clone(),
            )
        }
        Node::IntervalJoin {
            left, right, spec, ..
        } => runnel_engine::join::interval::interval_join(
            build(left, scope, context, index, peers, memo)?,
            build(right, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        )?,
        Node::TopN {
            input,
            spec,
            operator,
            ..
        } => {
            let input = build(input, scope, context, index, peers, memo)?;
            match operator {
                TopNOperator::AppendOnly => {
                    runnel_engine::rank::top_n::append_top_n(input, spec.clone(), context.clone())?
                }
                TopNOperator::Differential => {
                    runnel_engine::updating::top_n::top_n(input, spec.clone(), context.clone())?
                }
            }
        }
        Node::GroupAggregate {
            input,
            spec,
            operator,
            ..
        } => {
            let input = build(input, scope, context, index, peers, memo)?;
            match operator {
                GroupOperator::Differential => {
                    runnel_engine::updating::group_aggregate::group_aggregate(
                        input,
                        spec.clone(),
                        context.clone(),
                    )?
                }
                GroupOperator::Grouped => runnel_engine::grouped::operator::append_aggregate(
                    input,
                    spec.clone(),
                    context.clone(),
                )?,
            }
        }
        Node::RegularJoin {
            left, right, spec, ..
        } => runnel_engine::updating::join::regular_join(
            build(left, scope, context, index, peers, memo)?,
            build(right, scope, context, index, peers, memo)?,
            spec.clone(),
            context.clone(),
        )?,
        Node::Deduplicate {
            input,
            spec,
            input_schema,
            ..
        } => runnel_engine::rank::dedup::deduplicate(
            build(input, scope, context, index, peers, memo)?,
            spec.clone(),
            input_schema.clone(),
            context.clone(),
        )?,
        Node::Union { inputs } => {
            let streams = inputs
                .iter()
                .map(|n| build(n, scope, context, index, peers, memo))
                .collect::<Result<Vec<_>, _>>()?;
            scope.concatenate(streams)
        }
    })
}
