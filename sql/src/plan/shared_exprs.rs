//! A function call that both a WHERE and the SELECT over it compute (Nexmark
//! q21's `REGEXP_EXTRACT(url, ...)` and `lower(channel)`) is computed once:
//! the WHERE computes it on every row anyway, so a projection below the
//! filter adds it as a column, and the filter and the SELECT read that
//! column. DataFusion's common-subexpression pass works within one plan
//! node, never across a filter and the projection above it.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Expr, Filter, LogicalPlan, Projection};

const SHARED_PREFIX: &str = "__shared";

/// `projection` over its filter with their shared calls computed once
/// below the filter, or `None` if they share none. A projection between
/// the two (DataFusion's own common-subexpression columns) is folded into
/// the SELECT when each thing it computes is shared with the filter, so
/// nothing ends up computed twice.
pub(crate) fn computed_once(projection: &Projection) -> Result<Option<LogicalPlan>> {
    let (select, filter, between) = match projection.input.as_ref() {
        LogicalPlan::Filter(filter) => (projection.expr.clone(), filter, Vec::new()),
        LogicalPlan::Projection(between) => {
            let LogicalPlan::Filter(filter) = between.input.as_ref() else {
                return Ok(None);
            };
            let computed: Vec<Expr> = between
                .expr
                .iter()
                .map(|e| e.clone().unalias())
                .filter(|e| !matches!(e, Expr::Column(_)))
                .collect();
            (folded(&projection.expr, between)?, filter, computed)
        }
        _ => return Ok(None),
    };
    let shared = shared_calls(&filter.predicate, &select)?;
    if shared.is_empty() || between.iter().any(|e| !shared.contains(e)) {
        return Ok(None);
    }
    let predicate = read_shared(filter.predicate.clone(), &shared)?;
    let select = select
        .into_iter()
        .zip(projection.schema.iter())
        .map(|(expr, (qualifier, field))| {
            Ok(read_shared(expr.unalias(), &shared)?
                .alias_qualified(qualifier.cloned(), field.name()))
        })
        .collect::<Result<Vec<_>>>()?;
    // Only the columns still read pass the filter (Nexmark q21's url,
    // read only by the shared call, is not copied by it).
    let read: Vec<&Column> = select
        .iter()
        .chain([&predicate])
        .flat_map(|e| e.column_refs())
        .collect();
    let mut below: Vec<Expr> = filter
        .input
        .schema()
        .iter()
        .map(|(qualifier, field)| Column::from((qualifier, field)))
        .filter(|column| read.contains(&column))
        .map(Expr::Column)
        .collect();
    below.extend(
        shared
            .iter()
            .enumerate()
            .map(|(i, call)| call.clone().alias(format!("{SHARED_PREFIX}{i}"))),
    );
    let below = Projection::try_new(below, filter.input.clone())?;
    let filter = Filter::try_new(predicate, Arc::new(LogicalPlan::Projection(below)))?;
    Ok(Some(LogicalPlan::Projection(Projection::try_new(
        select,
        Arc::new(LogicalPlan::Filter(filter)),
    )?)))
}

/// `select`, which reads `between`'s columns, computing them itself.
fn folded(select: &[Expr], between: &Projection) -> Result<Vec<Expr>> {
    let columns: Vec<(Column, Expr)> = between
        .schema
        .iter()
        .zip(&between.expr)
        .map(|((qualifier, field), expr)| {
            (Column::from((qualifier, field)), expr.clone().unalias())
        })
        .collect();
    select
        .iter()
        .map(|expr| {
            expr.clone()
                .unalias()
                .transform_down(|e| match &e {
                    Expr::Column(c) => match columns.iter().find(|(column, _)| column == c) {
                        Some((_, computed)) => Ok(Transformed::new(
                            computed.clone(),
                            true,
                            TreeNodeRecursion::Jump,
                        )),
                        None => Ok(Transformed::no(e)),
                    },
                    _ => Ok(Transformed::no(e)),
                })
                .map(|t| t.data)
        })
        .collect()
}

/// The outermost deterministic function calls of `predicate` that some of
/// `select` computes too.
fn shared_calls(predicate: &Expr, select: &[Expr]) -> Result<Vec<Expr>> {
    let mut shared: Vec<Expr> = Vec::new();
    predicate.apply(|e| {
        if !matches!(e, Expr::ScalarFunction(_)) || e.is_volatile() {
            return Ok(TreeNodeRecursion::Continue);
        }
        let mut computed_again = false;
        for expr in select {
            computed_again |= expr.exists(|x| Ok(x == e))?;
        }
        if !computed_again {
            return Ok(TreeNodeRecursion::Continue);
        }
        if !shared.contains(e) {
            shared.push(e.clone());
        }
        Ok(TreeNodeRecursion::Jump)
    })?;
    Ok(shared)
}

/// `expr` reading the shared calls' columns instead of computing them.
fn read_shared(expr: Expr, shared: &[Expr]) -> Result<Expr> {
    expr.transform_down(|e| match shared.iter().position(|s| *s == e) {
        Some(i) => Ok(Transformed::new(
            Expr::Column(Column::new_unqualified(format!("{SHARED_PREFIX}{i}"))),
            true,
            TreeNodeRecursion::Jump,
        )),
        None => Ok(Transformed::no(e)),
    })
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn context() -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("c", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])),
                Arc::new(StringArray::from(vec![
                    Some("X"),
                    Some("y-1"),
                    None,
                    Some("zz"),
                    Some("y-22"),
                ])),
            ],
        )
        .expect("batch");
        let context = SessionContext::new();
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("table");
        context
            .register_table("t", Arc::new(table))
            .expect("registered");
        context
    }

    /// The first projection over a filter in `plan`, rewritten.
    fn rewritten(plan: &LogicalPlan) -> Option<LogicalPlan> {
        let mut found = None;
        plan.apply(|node| {
            if let LogicalPlan::Projection(p) = node
                && let Some(once) = computed_once(p).expect("rewrites")
            {
                found = Some(once);
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .expect("walks");
        found
    }

    async fn rows(context: &SessionContext, plan: LogicalPlan) -> String {
        let batches = context
            .execute_logical_plan(plan)
            .await
            .expect("runs")
            .collect()
            .await
            .expect("collects");
        pretty_format_batches(&batches).expect("prints").to_string()
    }

    /// Nexmark q21's shape (DataFusion puts the SELECT's repeated `lower(c)`
    /// in a projection of its own): the rewritten plan computes each shared
    /// call once and gives the same rows, under the same names.
    #[tokio::test]
    async fn shared_calls_are_computed_once_with_the_same_answer() {
        let context = context().await;
        let plan = context
            .sql(
                "SELECT a, CASE WHEN lower(c) = 'x' THEN '0' WHEN lower(c) = 'zz' THEN '1' \
                 ELSE regexp_replace(c, '-.*', '') END AS id \
                 FROM t WHERE regexp_replace(c, '-.*', '') = 'y' OR lower(c) IN ('x', 'zz')",
            )
            .await
            .expect("plans")
            .into_optimized_plan()
            .expect("optimizes");
        let once = rewritten(&plan).expect("a shared call");
        let text = once.display_indent().to_string();
        assert_eq!(text.matches("regexp_replace(").count(), 1, "{text}");
        assert_eq!(text.matches("lower(").count(), 1, "{text}");
        // Nothing but the filter's columns and the shared calls below it.
        assert!(text.contains("Projection: t.a, regexp_replace("), "{text}");
        assert_eq!(once.schema().as_arrow(), plan.schema().as_arrow());
        let expected = rows(&context, plan).await;
        assert_eq!(rows(&context, once).await, expected);
        assert!(expected.contains("| 2 | y  |"), "{expected}");
    }

    #[tokio::test]
    async fn nothing_shared_leaves_the_plan() {
        let context = context().await;
        let plan = context
            .sql("SELECT upper(c) FROM t WHERE lower(c) = 'x' AND a > 1")
            .await
            .expect("plans")
            .into_optimized_plan()
            .expect("optimizes");
        assert!(rewritten(&plan).is_none());
    }
}
