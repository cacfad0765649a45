//! The planned dataflow: one node per operator, each carrying what the
//! builder needs and, where there is more than one way to run it, the
//! physical operator the planner chose.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use runnel_engine::connector::SourceProvider;
use runnel_engine::join::interval::IntervalJoin;
use runnel_engine::join::kernel::JoinSpec;
use runnel_engine::rank::dedup::Deduplicate;
use runnel_engine::source::EventTime;
use runnel_engine::stateless::BatchFn;
use runnel_engine::window::assign::WindowAssign;
use runnel_engine::window::state::WindowAggregate;

use crate::front::ddl::TableDef;
use runnel_engine::changelog::is_changelog;

/// Which operator runs a top-N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopNOperator {
    /// Over an append-only input with a limit: each partition keeps only
    /// its N best rows, since none can ever be taken back
    /// (`rank::top_n`).
    AppendOnly,
    /// Every row of a partition kept in a differential arrangement, so
    /// that a retracted row lets the next one in (`updating::top_n`).
    Differential,
}

/// Which operator runs an unwindowed GROUP BY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOperator {
    /// Aggregates kept per group in vectors (`grouped`): an append-only
    /// input, or an operator's changelog when every aggregate can take any
    /// row back (COUNT, SUM, AVG, COUNT DISTINCT).
    Grouped,
    /// Each group's rows in a differential arrangement, recomputed when
    /// they change (`updating::group_aggregate`): MIN and MAX over
    /// retractions, and any changelog source, whose delete may come first.
    Differential,
}

impl TopNOperator {
    /// An append-only input never takes a row back, so only the N best of
    /// each partition need be kept; a limit past this keeps too much to
    /// gain over the arrangement.
    pub fn for_input(input_is_changelog: bool, limit: Option<usize>) -> Self {
        if !input_is_changelog && limit.is_some_and(|n| n <= 10_000) {
            TopNOperator::AppendOnly
        } else {
            TopNOperator::Differential
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TopNOperator::AppendOnly => "append-only",
            TopNOperator::Differential => "differential",
        }
    }
}

impl GroupOperator {
    pub fn for_input(
        spec: &runnel_engine::updating::group_aggregate::GroupAggregate,
        input: &Node,
    ) -> Self {
        let changelog = is_changelog(&spec.input_schema);
        if changelog
            && (input.reads_changelog_source() || !runnel_engine::grouped::operator::retracts(spec))
        {
            GroupOperator::Differential
        } else {
            GroupOperator::Grouped
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GroupOperator::Grouped => "grouped",
            GroupOperator::Differential => "differential",
        }
    }
}

/// A dataflow to build on every worker.
pub enum Node {
    Source {
        table: Arc<TableDef>,
        provider: Arc<dyn SourceProvider>,
        event_time: Option<EventTime>,
        late_rows: Option<crate::plan::source_options::LateRowsSink>,
    },
    Map {
        input: Box<Node>,
        name: String,
        f: BatchFn,
    },
    WindowAggregate {
        input: Box<Node>,
        spec: Arc<WindowAggregate>,
        describe: String,
    },
    Union {
        inputs: Vec<Node>,
    },
    /// Window table function rows with their window columns, re-timed to
    /// `window_end - 1`.
    WindowAssign {
        input: Box<Node>,
        spec: Arc<WindowAssign>,
    },
    /// Both sides' rows of each window, joined once the window closes.
    WindowJoin {
        left: Box<Node>,
        right: Box<Node>,
        spec: Arc<JoinSpec>,
        routes: (Vec<usize>, Vec<usize>),
        describe: String,
    },
    IntervalJoin {
        left: Box<Node>,
        right: Box<Node>,
        spec: Arc<IntervalJoin>,
        describe: String,
    },
    /// `ROW_NUMBER()` over a whole stream; a changelog out.
    TopN {
        input: Box<Node>,
        spec: Arc<runnel_engine::updating::top_n::TopN>,
        operator: TopNOperator,
        describe: String,
    },
    /// An unwindowed GROUP BY; a changelog out.
    GroupAggregate {
        input: Box<Node>,
        spec: Arc<runnel_engine::updating::group_aggregate::GroupAggregate>,
        operator: GroupOperator,
        describe: String,
    },
    /// A regular inner join; a changelog out.
    RegularJoin {
        left: Box<Node>,
        right: Box<Node>,
        spec: Arc<runnel_engine::updating::join::RegularJoin>,
        describe: String,
    },
    Deduplicate {
        input: Box<Node>,
        spec: Arc<Deduplicate>,
        input_schema: SchemaRef,
        describe: String,
    },
    /// A function over all rows of one time, keyed: window top-N.
    PerClosedTime {
        input: Box<Node>,
        name: String,
        key_columns: Vec<usize>,
        f: runnel_engine::rank::closed_time::ClosedTimeFn,
    },
    /// `ORDER BY` an event-time attribute: rows in time order as the
    /// watermark passes them, on one worker.
    TemporalSort {
        input: Box<Node>,
        spec: Arc<runnel_engine::rank::temporal_sort::SortSpec>,
        describe: String,
    },
    /// `agg(...) OVER (PARTITION BY ... ORDER BY <time> <frame>)`: every
    /// row with its aggregates, once the watermark passes it.
    OverAggregate {
        input: Box<Node>,
        spec: Arc<runnel_engine::over::OverAggregate>,
        describe: String,
    },
    /// `JOIN versioned FOR SYSTEM_TIME AS OF probe.time`: each probe row
    /// with its key's version at its time.
    TemporalJoin {
        left: Box<Node>,
        right: Box<Node>,
        spec: Arc<runnel_engine::join::temporal::TemporalJoin>,
        describe: String,
    },
    /// `JOIN dim FOR SYSTEM_TIME AS OF probe.proc_time`: each probe row
    /// with the external table's rows for its key as they are then.
    LookupJoin {
        input: Box<Node>,
        spec: Arc<runnel_engine::join::lookup::LookupJoin>,
        describe: String,
    },
    /// `MATCH_RECOGNIZE`: one row per match of a pattern over each
    /// partition's rows in time order, once the watermark passes them.
    MatchRecognize {
        input: Box<Node>,
        spec: Arc<runnel_engine::pattern::MatchRecognize>,
        describe: String,
    },
    /// A subtree the plan reads more than once, built once per worker.
    Shared {
        id: usize,
        input: Arc<Node>,
    },
}

impl Node {
    /// The nodes this one reads.
    pub fn inputs(&self) -> Vec<&Node> {
        match self {
            Node::Source { .. } => Vec::new(),
            Node::Union { inputs } => inputs.iter().collect(),
            Node::WindowJoin { left, right, .. }
            | Node::IntervalJoin { left, right, .. }
            | Node::RegularJoin { left, right, .. }
            | Node::TemporalJoin { left, right, .. } => vec![left, right],
            Node::Map { input, .. }
            | Node::WindowAggregate { input, .. }
            | Node::WindowAssign { input, .. }
            | Node::TopN { input, .. }
            | Node::GroupAggregate { input, .. }
            | Node::Deduplicate { input, .. }
            | Node::PerClosedTime { input, .. }
            | Node::TemporalSort { input, .. }
            | Node::OverAggregate { input, .. }
            | Node::MatchRecognize { input, .. }
            | Node::LookupJoin { input, .. } => vec![input],
            Node::Shared { input, .. } => vec![input],
        }
    }

    /// Whether a changelog source feeds this node. Such a source's rows
    /// may come in any order (a delete before its insert, from another
    /// worker's share of a file); operators' own changelogs keep each
    /// row's insert before its retraction.
    pub fn reads_changelog_source(&self) -> bool {
        match self {
            Node::Source { provider, .. } => provider.produces_changelog(),
            _ => self.inputs().iter().any(|n| n.reads_changelog_source()),
        }
    }
}
