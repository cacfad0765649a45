//! Which jobs checkpoints cover. A checkpoint must hold every operator's
//! state, or a restored job would answer differently from one that never
//! failed; so a checkpointed job with an operator, source or sink whose
//! state is not yet taken is refused at submit, by name.

use std::collections::HashSet;

use crate::dataflow::{Job, Output};
use crate::plan::node::{GroupOperator, Node, TopNOperator};

/// Why `job` cannot be checkpointed, if it cannot.
pub fn checkpoint_refusal(job: &Job) -> Option<String> {
    let mut shared = HashSet::new();
    for pipeline in &job.pipelines {
        if let Some(reason) = node_refusal(&pipeline.node, &mut shared) {
            return Some(reason);
        }
        if let Output::Table { name, provider } = &pipeline.output
            && !provider.checkpointable()
        {
            return Some(format!(
                "the sink table '{name}' does not take part in checkpoints"
            ));
        }
    }
    None
}

fn node_refusal(node: &Node, shared: &mut HashSet<usize>) -> Option<String> {
    let operator = match node {
        Node::Source {
            table, provider, ..
        } => {
            if !provider.checkpointable() {
                return Some(format!(
                    "the source table '{}' (connector '{}') cannot resume from a checkpoint",
                    table.name,
                    table.options.get("connector").map_or("", String::as_str)
                ));
            }
            None
        }
        Node::Shared { id, input } => {
            if !shared.insert(*id) {
                return None;
            }
            return node_refusal(input, shared);
        }
        Node::Map { .. } | Node::Union { .. } | Node::WindowAssign { .. } => None,
        Node::WindowAggregate { .. }
        | Node::WindowJoin { .. }
        | Node::IntervalJoin { .. }
        | Node::Deduplicate { .. }
        | Node::PerClosedTime { .. } => None,
        Node::TopN { operator, .. } => (*operator == TopNOperator::Differential)
            .then_some("a top-N over a changelog or without a small limit (differential)"),
        Node::GroupAggregate { operator, .. } => (*operator == GroupOperator::Differential)
            .then_some("an updating GROUP BY with MIN/MAX over retractions or over a changelog source (differential)"),
        Node::RegularJoin { .. } => Some("a regular join of changelogs (differential)"),
        Node::TemporalSort { .. } => Some("an ORDER BY on a time attribute"),
        Node::OverAggregate { .. } => Some("an OVER aggregation"),
        Node::TemporalJoin { .. } => Some("an event-time temporal join"),
        Node::LookupJoin { .. } => Some("a lookup join"),
        Node::MatchRecognize { .. } => Some("MATCH_RECOGNIZE"),
    };
    if let Some(operator) = operator {
        return Some(format!("checkpoints do not cover {operator} yet"));
    }
    node.inputs()
        .into_iter()
        .find_map(|input| node_refusal(input, shared))
}
