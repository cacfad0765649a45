//! Flink names a SELECT item that is neither a column nor aliased
//! `EXPR$<its position>`. DataFusion names it by its text, in which a CAST
//! is left out (`SUM(CAST(x AS BIGINT))` is `sum(t.x)`, as `SUM(x)` is), so
//! two such items can take one name, and DataFusion refuses the query. A
//! query refused for that is planned again with Flink's names, and with
//! each CAST that is a function's argument wrapped in `flink_named_cast`
//! (whose name keeps the type), since the aggregation under the SELECT
//! names its aggregates by their text too; others keep DataFusion's.

use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::execution::session_state::SessionState;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Select, SelectItem, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Whether planning failed because two columns of a projection have one
/// name.
pub fn is_name_collision(error: &DataFusionError) -> bool {
    let text = error.to_string();
    text.contains("Projections require unique expression names")
        || text.contains("duplicate unqualified field name")
        || text.contains("duplicate qualified field name")
}

/// `sql` with every unnamed, non-column SELECT item (at every level)
/// named as Flink names it; `None` if it cannot be read back.
pub fn with_flink_names(sql: &str, state: &SessionState) -> Option<String> {
    let dialect = state.config_options().sql_parser.dialect;
    let mut statement = state.sql_to_statement(sql, &dialect).ok()?;
    let Statement::Statement(inner) = &mut statement else {
        return None;
    };
    let _ = inner.visit(&mut FlinkNames);
    Some(statement.to_string())
}

struct FlinkNames;

/// `cast` as `flink_named_cast(cast, 'type')`; `None` if that text does not
/// read back.
fn named(cast: &Expr, data_type: &str) -> Option<Expr> {
    let text = format!(
        "{}({cast}, '{}')",
        crate::functions::NAMED_CAST,
        data_type.replace('\'', "''")
    );
    Parser::new(&GenericDialect {})
        .try_with_sql(&text)
        .ok()?
        .parse_expr()
        .ok()
}

impl VisitorMut for FlinkNames {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let wrapper = function
            .name
            .to_string()
            .eq_ignore_ascii_case(crate::functions::NAMED_CAST);
        let FunctionArguments::List(list) = &mut function.args else {
            return ControlFlow::Continue(());
        };
        if wrapper {
            return ControlFlow::Continue(());
        }
        for arg in &mut list.args {
            if let FunctionArg::Unnamed(FunctionArgExpr::Expr(cast @ Expr::Cast { .. })) = arg {
                let Expr::Cast { data_type, .. } = &*cast else {
                    continue;
                };
                if let Some(wrapped) = named(cast, &data_type.to_string()) {
                    *cast = wrapped;
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        for (position, item) in select.projection.iter_mut().enumerate() {
            let SelectItem::UnnamedExpr(expr) = item else {
                continue;
            };
            if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                continue;
            }
            *item = SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias: Ident::with_quote('"', format!("EXPR${position}")),
            };
        }
        ControlFlow::Continue(())
    }
}

/// Plans `sql`, named as Flink names it if DataFusion's names collide;
/// the SQL that was planned with it.
pub async fn plan(
    context: &datafusion::prelude::SessionContext,
    sql: String,
) -> datafusion::error::Result<(datafusion::prelude::DataFrame, String)> {
    match context.sql(&sql).await {
        Err(error) if is_name_collision(&error) => match with_flink_names(&sql, &context.state()) {
            Some(named) => Ok((context.sql(&named).await?, named)),
            None => Err(error),
        },
        planned => Ok((planned?, sql)),
    }
}
