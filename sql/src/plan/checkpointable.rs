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

const DIFFERENTIAL_TTL: &str =
    "table.exec.state.ttl on an updating operator over a changelog (differential)";

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
        | Node::PerClosedTime { .. }
        | Node::TemporalSort { .. }
        | Node::OverAggregate { .. }
        | Node::LookupJoin { .. }
        | Node::TemporalJoin { .. }
        | Node::MatchRecognize { .. } => None,
        // The differential operators' state TTL expires keys by the
        // clock, which a checkpoint does not hold (see `updating::replay`).
        Node::TopN { operator, spec, .. } => (*operator == TopNOperator::Differential
            && spec.ttl.is_some())
        .then_some(DIFFERENTIAL_TTL),
        Node::GroupAggregate { operator, spec, .. } => (*operator == GroupOperator::Differential
            && spec.ttl.is_some())
        .then_some(DIFFERENTIAL_TTL),
        Node::RegularJoin { spec, .. } => spec.ttl.is_some().then_some(DIFFERENTIAL_TTL),
    };
    if let Some(operator) = operator {
        return Some(format!("checkpoints do not cover {operator} yet"));
    }
    node.inputs()
        .into_iter()
        .find_map(|input| node_refusal(input, shared))
}
