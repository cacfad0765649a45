//! Sub-plan reuse, as Flink's planner does by default
//! (`table.optimizer.reuse-sub-plan-enabled`): a subtree a query reads more
//! than once, such as Nexmark q5's HOP count under both sides of its join,
//! is planned once and its stream read by every parent, so its source is
//! decoded once and its state kept once. A table scanned more than once
//! with different filters (Nexmark's `auction` and `bid` views of one
//! stream) is read by one source, which keeps the rows any scan wants.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::plan::field_use::FieldUse;
use crate::plan::{Node, Planned, Windowing};

/// The repeated subtrees of one statement and those already planned.
#[derive(Default)]
pub(crate) struct SharedPlans {
    repeated: HashSet<LogicalPlan>,
    planned: HashMap<LogicalPlan, SharedPlan>,
    /// The pushed-down filters of each scan, by table, for tables scanned
    /// more than once.
    scans: HashMap<String, Vec<Vec<Expr>>>,
    sources: HashMap<String, (usize, Arc<Node>)>,
    next_id: usize,
    fields: FieldUse,
}

/// What a walk over the whole statement found before planning it.
pub(crate) struct Census {
    /// The pushed-down filters of each scan, by table.
    pub(crate) scans: HashMap<String, Vec<Vec<Expr>>>,
    pub(crate) fields: FieldUse,
}

/// A planned subtree and what its parents need to know of it.
struct SharedPlan {
    id: usize,
    node: Arc<Node>,
    schema: SchemaRef,
    windowing: Option<Windowing>,
    rank: Option<usize>,
    window_output: Option<[usize; 2]>,
}

impl SharedPlan {
    fn occurrence(&self) -> Planned {
        Planned {
            node: Node::Shared {
                id: self.id,
                input: self.node.clone(),
            },
            schema: self.schema.clone(),
            windowing: self.windowing.clone(),
            rank: self.rank,
            window_output: self.window_output,
        }
    }
}

impl SharedPlans {
    /// The largest subtrees of `plan` that occur more than once. A subtree
    /// with a window function is left out: what its `ROW_NUMBER()` keeps
    /// depends on the filter above each occurrence.
    pub(crate) fn of(plan: &LogicalPlan, census: Census) -> Self {
        let Census { mut scans, fields } = census;
        let mut counts: HashMap<&LogicalPlan, usize> = HashMap::new();
        count(plan, &mut counts);
        let mut repeated = HashSet::new();
        largest_repeated(plan, &counts, &mut repeated);
        scans.retain(|_, filters| filters.len() > 1);
        SharedPlans {
            repeated,
            scans,
            fields,
            ..Default::default()
        }
    }

    /// The nested fields the statement reads.
    pub(crate) fn fields(&self) -> &FieldUse {
        &self.fields
    }

    /// The filters of every scan of `table`, if it is scanned more than once.
    pub(crate) fn scans_of(&self, table: &str) -> Option<&[Vec<Expr>]> {
        self.scans.get(table).map(Vec::as_slice)
    }

    /// The source of `table` if another scan already built it.
    pub(crate) fn source(&self, table: &str) -> Option<Node> {
        self.sources.get(table).map(|(id, node)| Node::Shared {
            id: *id,
            input: node.clone(),
        })
    }

    /// Records the source of `table` for its other scans, and gives the
    /// node to use for this one.
    pub(crate) fn record_source(&mut self, table: &str, source: Node) -> Node {
        if !self.scans.contains_key(table) {
            return source;
        }
        let id = self.take_id();
        let source = Arc::new(source);
        self.sources.insert(table.to_string(), (id, source.clone()));
        Node::Shared { id, input: source }
    }

    fn take_id(&mut self) -> usize {
        self.next_id += 1;
        self.next_id - 1
    }

    /// What an earlier occurrence of `plan` was planned into.
    pub(crate) fn get(&self, plan: &LogicalPlan) -> Option<Planned> {
        self.planned.get(plan).map(SharedPlan::occurrence)
    }

    /// Records how `plan` was planned if it occurs again, and gives the
    /// node to use for this occurrence.
    pub(crate) fn record(&mut self, plan: &LogicalPlan, planned: Planned) -> Planned {
        if !self.repeated.contains(plan) {
            return planned;
        }
        let shared = SharedPlan {
            id: self.take_id(),
            node: Arc::new(planned.node),
            schema: planned.schema,
            windowing: planned.windowing,
            rank: planned.rank,
            window_output: planned.window_output,
        };
        let first = shared.occurrence();
        self.planned.insert(plan.clone(), shared);
        first
    }
}

fn count<'a>(plan: &'a LogicalPlan, counts: &mut HashMap<&'a LogicalPlan, usize>) {
    *counts.entry(plan).or_default() += 1;
    for input in plan.inputs() {
        count(input, counts);
    }
}

fn largest_repeated(
    plan: &LogicalPlan,
    counts: &HashMap<&LogicalPlan, usize>,
    out: &mut HashSet<LogicalPlan>,
) {
    if counts.get(plan).is_some_and(|&n| n > 1) && !has_window_function(plan) {
        out.insert(plan.clone());
        return;
    }
    for input in plan.inputs() {
        largest_repeated(input, counts, out);
    }
}

fn has_window_function(plan: &LogicalPlan) -> bool {
    let mut found = false;
    // The closure never fails; a traversal error would only hide a window.
    let _ = plan.apply(|node| {
        found = matches!(node, LogicalPlan::Window(_));
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}
