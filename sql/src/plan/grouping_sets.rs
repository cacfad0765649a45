//! `GROUPING SETS`, `ROLLUP` and `CUBE` as Flink answers them: one
//! aggregation per set, the columns a set does not group by NULL, all
//! unioned. The engine's aggregations group by plain keys, so each set
//! becomes its own (the input, read once, feeds all of them: `reuse.rs`
//! shares the repeated subtree), and `GROUPING(...)` reads each branch's
//! constant grouping id as DataFusion computes it.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::GroupingSet;
use datafusion::logical_expr::utils::{enumerate_grouping_sets, grouping_set_to_exprlist};
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder};

/// `plan` with every aggregation over grouping sets expanded.
pub fn expand(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| match &node {
        LogicalPlan::Aggregate(aggregate)
            if matches!(aggregate.group_expr.as_slice(), [Expr::GroupingSet(_)]) =>
        {
            Ok(Transformed::yes(expand_one(aggregate)?))
        }
        _ => Ok(Transformed::no(node)),
    })
    .map(|t| t.data)
}

fn expand_one(aggregate: &Aggregate) -> Result<LogicalPlan> {
    let all: Vec<Expr> = grouping_set_to_exprlist(&aggregate.group_expr)?
        .into_iter()
        .cloned()
        .collect();
    let sets = match enumerate_grouping_sets(aggregate.group_expr.clone())?.as_slice() {
        [Expr::GroupingSet(set)] => sets_of(set),
        _ => vec![all.clone()],
    };
    let schema = aggregate.schema.clone();
    let input = LogicalPlanBuilder::from(aggregate.input.as_ref().clone());
    let mut branches = Vec::with_capacity(sets.len());
    for (index, set) in sets.iter().enumerate() {
        // A set listed again gets its own ordinal above the bitmask.
        let ordinal = sets[..index].iter().filter(|s| *s == set).count() as u64;
        let plan = input
            .clone()
            .aggregate(set.clone(), aggregate.aggr_expr.clone())?
            .build()?;
        let branch_schema = plan.schema().clone();
        let mut id = 0u64;
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (i, expr) in all.iter().enumerate() {
            let (qualifier, field) = schema.qualified_field(i);
            let absent = !set.contains(expr);
            id = (id << 1) | u64::from(absent);
            let value = if absent {
                Expr::Literal(ScalarValue::try_from(field.data_type())?, None)
            } else {
                let (q, f) =
                    branch_schema.qualified_field(set.iter().position(|e| e == expr).unwrap_or(0));
                Expr::Column((q, f).into())
            };
            columns.push(value.alias_qualified(qualifier.cloned(), field.name()));
        }
        let id_at = all.len();
        let (_, id_field) = schema.qualified_field(id_at);
        let id = ScalarValue::UInt64(Some(id | (ordinal << all.len())));
        columns.push(Expr::Literal(id.cast_to(id_field.data_type())?, None).alias(id_field.name()));
        for (j, _) in aggregate.aggr_expr.iter().enumerate() {
            let (qualifier, field) = schema.qualified_field(id_at + 1 + j);
            let (q, f) = branch_schema.qualified_field(set.len() + j);
            columns.push(
                Expr::Column((q, f).into())
                    .cast_to(field.data_type(), &branch_schema)?
                    .alias_qualified(qualifier.cloned(), field.name()),
            );
        }
        branches.push(LogicalPlanBuilder::from(plan).project(columns)?.build()?);
    }
    let mut branches = branches.into_iter();
    let first = branches
        .next()
        .ok_or_else(|| datafusion::error::DataFusionError::Plan("no grouping set".into()))?;
    let mut union = LogicalPlanBuilder::from(first);
    for branch in branches {
        union = union.union(branch)?;
    }
    let union = union.build()?;
    // The union keeps names, not qualifiers: put the aggregation's back so
    // the plan above still resolves its columns.
    let requalified: Vec<Expr> = schema
        .iter()
        .zip(union.schema().columns())
        .map(|((qualifier, field), column)| {
            Expr::Column(column).alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    LogicalPlanBuilder::from(union)
        .project(requalified)?
        .build()
}

/// The sets a `GROUPING SETS`, `ROLLUP` or `CUBE` stands for.
fn sets_of(set: &GroupingSet) -> Vec<Vec<Expr>> {
    match set {
        GroupingSet::GroupingSets(sets) => sets.clone(),
        // (a, b, c), (a, b), (a), ()
        GroupingSet::Rollup(exprs) => (0..=exprs.len())
            .rev()
            .map(|n| exprs[..n].to_vec())
            .collect(),
        // Every subset.
        GroupingSet::Cube(exprs) => (0..1u64 << exprs.len())
            .map(|mask| {
                exprs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) == 0)
                    .map(|(_, e)| e.clone())
                    .collect()
            })
            .collect(),
    }
}
