//! Plans for updating queries: an unwindowed GROUP BY and a regular inner
//! join, whose results change as input arrives and leave as a changelog.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, JoinType};
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use runnel_engine::changelog::{is_changelog, with_op};
use runnel_engine::updating::group_aggregate::GroupAggregate;
use runnel_engine::updating::join::{RegularJoin, RegularJoinKind};

use crate::error::SqlError;
use crate::plan::{GroupOperator, Node, Planned, Planner};

impl Planner<'_> {
    pub(crate) fn group_aggregate(
        &self,
        aggregate: &datafusion::logical_expr::Aggregate,
        input: Planned,
    ) -> Result<Planned, SqlError> {
        let input_df = aggregate.input.schema();
        let state = self.context.state();
        let mut keys = Vec::new();
        for expr in &aggregate.group_expr {
            if let Expr::GroupingSet(_) = expr {
                return Err(self.reject(
                    "GROUPING SETS, CUBE and ROLLUP are not supported",
                    &["GROUP"],
                ));
            }
            keys.push(state.create_physical_expr(expr.clone(), input_df)?);
        }
        if is_changelog(&input.schema)
            && let Some(name) = aggregate.aggr_expr.iter().find_map(arrival_ordered)
        {
            return Err(self.reject(
                &format!(
                    "{name} over an updating input is not supported: its result follows the \
                     order rows arrived and were retracted in, which Runnel's updating GROUP BY \
                     does not keep"
                ),
                &[name, "string_agg", "GROUP"],
            ));
        }
        let mut aggregates = Vec::new();
        let mut filters = Vec::new();
        for expr in &aggregate.aggr_expr {
            let planning = PhysicalPlanningContext::default();
            let lowered = LoweredAggregateBuilder::new(
                expr,
                input_df,
                input.schema.as_ref(),
                state.execution_props(),
                &planning,
            )
            .build()?;
            if !lowered.order_bys.is_empty() {
                return Err(
                    self.reject("aggregates with ORDER BY are not supported yet", &["ORDER"])
                );
            }
            aggregates.push(lowered.aggregate);
            filters.push(lowered.filter);
        }
        let schema = with_op(aggregate.schema.as_arrow());
        let describe = format!(
            "keys [{}] aggregates [{}]",
            aggregate
                .group_expr
                .iter()
                .map(|e| e.schema_name().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            aggregates
                .iter()
                .map(|a| a.name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let spec = Arc::new(GroupAggregate {
            keys,
            aggregates,
            filters,
            input_schema: input.schema.clone(),
            output_schema: schema.clone(),
            ttl: self.state_ttl()?,
        });
        let operator = GroupOperator::for_input(&spec, &input.node);
        Ok(Planned::new(
            Node::GroupAggregate {
                input: Box::new(input.node),
                spec,
                operator,
                describe,
            },
            schema,
        ))
    }

    /// A GROUP BY of a window aggregation's `window_start, window_end`
    /// (and other columns): the rows of a window all travel at its
    /// `window_end - 1`, so each time's rows are aggregated once, when the
    /// watermark passes it, and the result is append-only.
    pub(crate) fn aggregate_per_window(
        &self,
        aggregate: &datafusion::logical_expr::Aggregate,
        input: Planned,
    ) -> Result<Planned, SqlError> {
        let [start, end] = input.window_output.unwrap_or([0, 0]);
        let routed = vec![start, end];
        let planned = self.group_aggregate(aggregate, input)?;
        let Node::GroupAggregate {
            input,
            spec,
            describe,
            ..
        } = planned.node
        else {
            return Err(SqlError::Plan(
                "a per-window aggregate without its spec".into(),
            ));
        };
        let schema = Arc::new(aggregate.schema.as_arrow().clone());
        let f: runnel_engine::rank::closed_time::ClosedTimeFn = Arc::new(move |batches| {
            runnel_engine::grouped::operator::aggregate_once(&spec, &batches)
        });
        let node = Node::PerClosedTime {
            input,
            name: format!("WindowAggregate (per window): {describe}"),
            key_columns: routed,
            f,
        };
        let mut planned = Planned::new(node, schema);
        planned.window_output = window_columns_out(aggregate);
        Ok(planned)
    }

    pub(crate) fn regular_join(
        &self,
        join: &datafusion::logical_expr::Join,
        left: Planned,
        right: Planned,
    ) -> Result<Planned, SqlError> {
        let (kind, swap) = match join.join_type {
            JoinType::Inner => (RegularJoinKind::Inner, false),
            JoinType::Left => (RegularJoinKind::Left, false),
            JoinType::Right => (RegularJoinKind::Right, false),
            JoinType::Full => (RegularJoinKind::Full, false),
            JoinType::LeftSemi => (RegularJoinKind::Semi, false),
            JoinType::LeftAnti => (RegularJoinKind::Anti, false),
            JoinType::RightSemi => (RegularJoinKind::Semi, true),
            JoinType::RightAnti => (RegularJoinKind::Anti, true),
            other => {
                return Err(self.reject(
                    &format!("a regular {other} join is not supported"),
                    &["JOIN", "FROM"],
                ));
            }
        };
        let (left, right, left_plan, right_plan, on) = if swap {
            let on: Vec<(Expr, Expr)> = join
                .on
                .iter()
                .map(|(l, r)| (r.clone(), l.clone()))
                .collect();
            (right, left, &join.right, &join.left, on)
        } else {
            (left, right, &join.left, &join.right, join.on.clone())
        };
        let (left_df, right_df) = (left_plan.schema(), right_plan.schema());
        let state = self.context.state();
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        for (l, r) in &on {
            left_keys.push(state.create_physical_expr(l.clone(), left_df)?);
            right_keys.push(state.create_physical_expr(r.clone(), right_df)?);
        }
        if left_keys.is_empty() {
            return Err(self.reject(
                "a regular join needs an equality between the two sides (a cross join is not supported)",
                &["JOIN", "FROM"],
            ));
        }
        let filter = match &join.filter {
            Some(f) => Some(state.create_physical_expr(f.clone(), &left_df.join(right_df)?)?),
            None => None,
        };
        let data = |schema: &SchemaRef| -> Vec<Field> {
            let width = schema.fields().len() - usize::from(is_changelog(schema));
            schema.fields()[..width]
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect()
        };
        let mut fields = data(&left.schema);
        fields.extend(data(&right.schema));
        let joined_schema = Arc::new(Schema::new(fields));
        let output_schema = with_op(join.schema.as_arrow());
        let describe = format!(
            "{kind:?} on [{}]",
            join.on
                .iter()
                .map(|(l, r)| format!("{l} = {r}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // An inner join of two append-only inputs only ever inserts: its
        // output can stay append-only, which lets what follows keep
        // accumulators instead of recomputing.
        let inserts_only = kind == RegularJoinKind::Inner
            && !is_changelog(&left.schema)
            && !is_changelog(&right.schema);
        let spec = Arc::new(RegularJoin {
            kind,
            left_keys,
            right_keys,
            filter,
            left_schema: left.schema,
            right_schema: right.schema,
            joined_schema,
            output_schema: output_schema.clone(),
            ttl: self.state_ttl()?,
        });
        let node = Node::RegularJoin {
            left: Box::new(left.node),
            right: Box::new(right.node),
            spec,
            describe,
        };
        if !inserts_only {
            return Ok(Planned::new(node, output_schema));
        }
        let data = Arc::new(join.schema.as_arrow().clone());
        let out = data.clone();
        let width = data.fields().len();
        let drop_op: runnel_engine::stateless::BatchFn = Arc::new(move |batch| {
            let columns = batch.columns()[..width].to_vec();
            Ok(Some(datafusion::arrow::record_batch::RecordBatch::try_new(
                out.clone(),
                columns,
            )?))
        });
        Ok(Planned::new(
            Node::Map {
                input: Box::new(node),
                name: "InsertsOnly".into(),
                f: drop_op,
            },
            data,
        ))
    }
}

/// Where the window columns are in an aggregate's output, if it groups by
/// them.
/// The Flink name of an aggregate whose result depends on the order its
/// rows arrived in (LISTAGG, JSON_ARRAYAGG, FIRST_VALUE, LAST_VALUE), if
/// `expr` is one. JSON_OBJECTAGG's items are sorted by key: it is not.
fn arrival_ordered(expr: &Expr) -> Option<&'static str> {
    let Expr::AggregateFunction(call) = unalias(expr) else {
        return None;
    };
    let item = match call.params.args.first() {
        Some(Expr::ScalarFunction(item)) => item.func.name(),
        _ => "",
    };
    match call.func.name() {
        "string_agg" if item == "json_objectagg_item" => None,
        "string_agg" if item == "json_arrayagg_item" => Some("JSON_ARRAYAGG"),
        "string_agg" => Some("LISTAGG"),
        "first_value" => Some("FIRST_VALUE"),
        "last_value" => Some("LAST_VALUE"),
        "array_agg" => Some("ARRAY_AGG"),
        _ => None,
    }
}

fn unalias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unalias(&alias.expr),
        other => other,
    }
}

fn window_columns_out(aggregate: &datafusion::logical_expr::Aggregate) -> Option<[usize; 2]> {
    let position = |name: &str| {
        aggregate
            .group_expr
            .iter()
            .position(|e| matches!(e, Expr::Column(c) if c.name == name))
    };
    Some([position("window_start")?, position("window_end")?])
}
