//! `ORDER BY` on a stream: Flink's temporal sort, whose first key is an
//! event-time attribute ascending; anything else is refused.

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::logical_expr::{Expr, Sort};
use runnel_engine::changelog::is_changelog;
use runnel_engine::rank::temporal_sort::SortSpec;

use super::node::Node;
use super::{Planned, Planner};
use crate::error::SqlError;

impl Planner<'_> {
    pub(super) fn temporal_sort(
        &self,
        sort: &Sort,
        input: Planned,
        limit: Option<usize>,
    ) -> Result<Planned, SqlError> {
        let refuse = |why: &str| Err(self.reject(why, &["ORDER"]));
        if is_changelog(&input.schema) {
            return refuse("ORDER BY an updating query is not supported on streams");
        }
        let column = |expr: &Expr| match expr {
            Expr::Column(c) => input.schema.index_of(&c.name).ok(),
            _ => None,
        };
        let Some((first, rest)) = sort.expr.split_first() else {
            return refuse("ORDER BY without keys");
        };
        let time = column(&first.expr)
            .filter(|&i| first.asc && self.is_event_time(input.schema.field(i).name()));
        let Some(time_column) = time else {
            return refuse(
                "ORDER BY on a stream must begin with an event-time attribute ascending (a column with a WATERMARK)",
            );
        };
        let mut then_by = Vec::with_capacity(rest.len());
        for key in rest {
            let Some(index) = column(&key.expr) else {
                return refuse(
                    "ORDER BY on a stream takes columns after the time attribute, not expressions",
                );
            };
            then_by.push((
                index,
                SortOptions {
                    descending: !key.asc,
                    nulls_first: key.nulls_first,
                },
            ));
        }
        let limit = match (limit, sort.fetch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let describe = format!(
            "by {}{}{}",
            input.schema.field(time_column).name(),
            then_by
                .iter()
                .map(|(i, o)| format!(
                    ", {}{}",
                    input.schema.field(*i).name(),
                    if o.descending { " DESC" } else { "" }
                ))
                .collect::<String>(),
            limit.map_or(String::new(), |l| format!(", first {l} rows"))
        );
        let schema = input.schema.clone();
        Ok(Planned::new(
            Node::TemporalSort {
                input: Box::new(input.node),
                spec: Arc::new(SortSpec {
                    time_column,
                    then_by,
                    limit,
                }),
                describe,
            },
            schema,
        ))
    }

    /// Whether `name` is a column some table declares a WATERMARK for.
    fn is_event_time(&self, name: &str) -> bool {
        self.catalog
            .tables
            .values()
            .any(|table| table.watermark.as_ref().is_some_and(|w| w.column == name))
    }
}
