//! EXPLAIN: a planned dataflow as an indented tree, one operator a line,
//! with the physical operator the planner chose.
use crate::dataflow::{Output, Pipeline};
use runnel_engine::join::interval::Expiry;

use crate::plan::Node;

/// A pipeline as EXPLAIN prints it: its sink, then its operators.
pub fn explain_pipeline(pipeline: &Pipeline) -> String {
    let sink = match &pipeline.output {
        Output::Table { name, .. } => format!("Sink: {name}"),
        Output::Results => "Sink: print (results)".to_string(),
    };
    format!("{sink}\n{}", explain(&pipeline.node, 1))
}

/// `node` and everything under it, one operator a line, indented by depth.
pub fn explain(node: &Node, depth: usize) -> String {
    let pad = "  ".repeat(depth);
    match node {
        Node::Source {
            table,
            provider,
            event_time,
            late_rows,
        } => {
            let connector = table.options.get("connector").cloned().unwrap_or_default();
            let watermark = match (&table.watermark, event_time) {
                (Some(w), Some(_)) => {
                    format!(", watermark {} - {} ms", w.column, w.max_out_of_orderness)
                }
                _ => String::new(),
            };
            let idle = match event_time.as_ref().and_then(|e| e.idle_timeout) {
                Some(timeout) => format!(", idle after {} ms", timeout.as_millis()),
                None => String::new(),
            };
            let late = match late_rows {
                Some(late) => format!(", late rows to {}", late.table),
                None => String::new(),
            };
            let keeps = match event_time.as_ref().and_then(|e| e.drop_after.as_ref()) {
                Some(keep) => format!(
                    ", keeps {} in {:?} (others read for their time only)",
                    table_column(table, keep.column),
                    keep.values
                ),
                None => String::new(),
            };
            let changelog = if provider.produces_changelog() {
                ", changelog"
            } else {
                ""
            };
            format!(
                "{pad}Source: {}[{connector}]{changelog}{watermark}{idle}{late}{keeps}",
                table.name
            )
        }
        Node::Map { input, name, .. } => format!("{pad}{name}\n{}", explain(input, depth + 1)),
        Node::WindowAggregate {
            input, describe, ..
        } => {
            format!(
                "{pad}WindowAggregate: {describe}\n{}",
                explain(input, depth + 1)
            )
        }
        Node::PerClosedTime { input, name, .. } => {
            format!("{pad}{name}\n{}", explain(input, depth + 1))
        }
        Node::TemporalSort {
            input, describe, ..
        } => format!(
            "{pad}TemporalSort: {describe}\n{}",
            explain(input, depth + 1)
        ),
        Node::OverAggregate {
            input, describe, ..
        } => format!(
            "{pad}OverAggregate: {describe}\n{}",
            explain(input, depth + 1)
        ),
        Node::TemporalJoin {
            left,
            right,
            describe,
            ..
        } => format!(
            "{pad}TemporalJoin: {describe}\n{}\n{}",
            explain(left, depth + 1),
            explain(right, depth + 1)
        ),
        Node::LookupJoin {
            input, describe, ..
        } => format!("{pad}LookupJoin: {describe}\n{}", explain(input, depth + 1)),
        Node::MatchRecognize {
            input, describe, ..
        } => format!(
            "{pad}MatchRecognize: {describe}\n{}",
            explain(input, depth + 1)
        ),
        Node::WindowAssign { input, spec } => format!(
            "{pad}WindowAssign: {:?}\n{}",
            spec.kind,
            explain(input, depth + 1)
        ),
        Node::WindowJoin {
            left,
            right,
            describe,
            ..
        } => format!(
            "{pad}WindowJoin: {describe}\n{}\n{}",
            explain(left, depth + 1),
            explain(right, depth + 1)
        ),
        Node::IntervalJoin {
            left,
            right,
            describe,
            spec,
        } => format!(
            "{pad}{}: {describe}\n{}\n{}",
            match spec.expiry {
                Expiry::Interval { .. } => "IntervalJoin",
                Expiry::Ttl(_) => "Join (append-only, state TTL)",
                Expiry::Never => "Join (append-only)",
            },
            explain(left, depth + 1),
            explain(right, depth + 1)
        ),
        Node::TopN {
            input,
            describe,
            operator,
            ..
        } => format!(
            "{pad}TopN (updating, {}): {describe}\n{}",
            operator.name(),
            explain(input, depth + 1)
        ),
        Node::GroupAggregate {
            input,
            describe,
            operator,
            ..
        } => format!(
            "{pad}GroupAggregate (updating, {}): {describe}\n{}",
            operator.name(),
            explain(input, depth + 1)
        ),
        Node::RegularJoin {
            left,
            right,
            describe,
            ..
        } => format!(
            "{pad}Join (updating, differential): {describe}\n{}\n{}",
            explain(left, depth + 1),
            explain(right, depth + 1)
        ),
        Node::Deduplicate {
            input, describe, ..
        } => format!(
            "{pad}Deduplicate: {describe}\n{}",
            explain(input, depth + 1)
        ),
        Node::Union { inputs } => {
            let children: Vec<String> = inputs.iter().map(|n| explain(n, depth + 1)).collect();
            format!("{pad}UnionAll\n{}", children.join("\n"))
        }
        Node::Shared { id, input } => {
            format!("{pad}Shared #{id}\n{}", explain(input, depth + 1))
        }
    }
}

/// The name of a table's physical column `index`.
fn table_column(table: &crate::front::ddl::TableDef, index: usize) -> String {
    crate::catalog::Catalog::physical_schema(table)
        .fields()
        .get(index)
        .map_or_else(|| index.to_string(), |f| f.name().clone())
}
