//! Whether the operands of a DECIMAL division have the types Flink gives
//! them. The quotient's scale follows from its operands' precisions, and
//! DataFusion types some expressions differently from Flink (`SUM` of a
//! DECIMAL(10, 2) is a DECIMAL(20, 2) here and a DECIMAL(38, 2) there;
//! `SUM` of an INT a BIGINT here and an INT there; a product has a digit
//! more), so a division is answered only when each operand is, through
//! every view and subquery, a table's column, an integer literal, an
//! explicit CAST, MIN, MAX, COUNT or another such division; any other is
//! refused rather than given another scale.

use std::collections::HashSet;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue, plan_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

use super::decimal_divide::NAME;

/// The check, knowing which tables are sources: a window's or a
/// MATCH_RECOGNIZE's placeholder table has columns DataFusion typed.
#[derive(Debug)]
pub struct DecimalOperands {
    pub sources: HashSet<String>,
}

impl AnalyzerRule for DecimalOperands {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        self.flink_typed(&plan)?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "flink_decimal_operands"
    }
}

impl DecimalOperands {
    /// Which of `plan`'s output columns have Flink's type; refuses a division
    /// in it whose operands may not.
    fn flink_typed(&self, plan: &LogicalPlan) -> Result<Vec<bool>> {
        let inputs = plan
            .inputs()
            .into_iter()
            .map(|input| self.flink_typed(input))
            .collect::<Result<Vec<_>>>()?;
        // The columns the node's expressions read, and which are Flink-typed.
        let input: Option<(&DFSchema, Vec<bool>)> = match (plan, plan.inputs().as_slice()) {
            (LogicalPlan::Join(_), _) => Some((plan.schema().as_ref(), inputs.concat())),
            (_, [one]) => Some((one.schema().as_ref(), inputs[0].clone())),
            _ => None,
        };
        for expr in plan.expressions() {
            self.check(&expr, input.as_ref())?;
        }
        let width = plan.schema().fields().len();
        let passed_through = |trusted: &Vec<bool>| {
            if trusted.len() == width {
                trusted.clone()
            } else {
                vec![false; width]
            }
        };
        Ok(match plan {
            LogicalPlan::TableScan(scan) => {
                vec![self.sources.contains(scan.table_name.table()); width]
            }
            LogicalPlan::Projection(projection) => match &input {
                Some((schema, trusted)) => projection
                    .expr
                    .iter()
                    .map(|e| is_flink_typed(e, schema, trusted))
                    .collect(),
                None => vec![false; width],
            },
            LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Repartition(_)
            | LogicalPlan::Distinct(_) => passed_through(&inputs[0]),
            LogicalPlan::Join(_) => passed_through(&inputs.concat()),
            LogicalPlan::Aggregate(aggregate) => match &input {
                Some((schema, trusted)) => {
                    let mut out: Vec<bool> = aggregate
                        .group_expr
                        .iter()
                        .map(|e| is_flink_typed(e, schema, trusted))
                        .collect();
                    out.extend(
                        aggregate
                            .aggr_expr
                            .iter()
                            .map(|e| aggregate_is_flink_typed(e, schema, trusted)),
                    );
                    if out.len() == width {
                        out
                    } else {
                        vec![false; width]
                    }
                }
                None => vec![false; width],
            },
            _ => vec![false; width],
        })
    }

    /// Refuses a division in `expr` whose operands may not have Flink's types;
    /// looks into subqueries too.
    fn check(&self, expr: &Expr, input: Option<&(&DFSchema, Vec<bool>)>) -> Result<()> {
        let mut refused = None;
        expr.apply(|e| {
            match e {
                Expr::ScalarSubquery(subquery) => {
                    self.flink_typed(&subquery.subquery)?;
                }
                Expr::Exists(exists) => {
                    self.flink_typed(&exists.subquery.subquery)?;
                }
                Expr::InSubquery(in_subquery) => {
                    self.flink_typed(&in_subquery.subquery.subquery)?;
                }
                Expr::ScalarFunction(ScalarFunction { func, args }) if func.name() == NAME => {
                    let typed = |a: &Expr| input.is_some_and(|(s, t)| is_flink_typed(a, s, t));
                    if let Some(operand) = args.iter().take(2).find(|a| !typed(a)) {
                        refused = Some(operand.clone());
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        match refused {
            Some(operand) => plan_err!(
                "division of DECIMALs is supported where each operand is a column, an integer literal, a CAST, or MIN, MAX or COUNT of one; {operand} may have another type in Runnel than in Flink, which would change the quotient's scale"
            ),
            None => Ok(()),
        }
    }
}

fn is_flink_typed(expr: &Expr, schema: &DFSchema, trusted: &[bool]) -> bool {
    match expr {
        Expr::Column(column) => schema
            .maybe_index_of_column(column)
            .and_then(|i| trusted.get(i).copied())
            .unwrap_or(false),
        Expr::Alias(alias) => is_flink_typed(&alias.expr, schema, trusted),
        Expr::Negative(inner) => is_flink_typed(inner, schema, trusted),
        // DataFusion's integer literals are BIGINTs; Flink's are INTs where
        // they fit.
        Expr::Literal(value, _) => match value {
            ScalarValue::Int64(Some(v)) => i32::try_from(*v).is_err(),
            ScalarValue::Int8(_) | ScalarValue::Int16(_) | ScalarValue::Int32(_) => true,
            ScalarValue::Decimal128(..) => true,
            _ => false,
        },
        Expr::Cast(cast) => explicit(cast.field.data_type()),
        Expr::TryCast(cast) => explicit(cast.field.data_type()),
        Expr::ScalarFunction(ScalarFunction { func, .. }) => func.name() == NAME,
        _ => false,
    }
}

/// A cast's type is Flink's (`front/decimal_default.rs` gives a bare
/// DECIMAL Flink's precision and scale).
fn explicit(data_type: &DataType) -> bool {
    match data_type {
        DataType::Decimal128(..) => true,
        other => other.is_integer(),
    }
}

fn aggregate_is_flink_typed(expr: &Expr, schema: &DFSchema, trusted: &[bool]) -> bool {
    let expr = match expr {
        Expr::Alias(alias) => alias.expr.as_ref(),
        other => other,
    };
    let Expr::AggregateFunction(call) = expr else {
        return false;
    };
    match call.func.name() {
        "count" => true,
        "min" | "max" => {
            call.params.args.len() == 1 && is_flink_typed(&call.params.args[0], schema, trusted)
        }
        _ => false,
    }
}
