//! A table's scan: its connector's source, what the query keeps of it
//! (`KeepOnly`, unread nested fields), and its event time.

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::Expr;
use runnel_engine::connector::KeepOnly;
use runnel_engine::source::EventTime;

use super::{Node, Planner};
use crate::catalog::{Catalog, quoted};
use crate::error::SqlError;
use crate::front::ddl::TableDef;

impl Planner<'_> {
    pub(super) fn source(
        &self,
        table: Arc<TableDef>,
        keep: Option<KeepOnly>,
    ) -> Result<Node, SqlError> {
        let schema = Catalog::physical_schema(&table);
        let (options, late_rows) = self.source_options(&table, &schema)?;
        let mut provider = self
            .connectors
            .source(options, schema.clone())
            .map_err(|e| SqlError::at(format!("table '{}': {e}", table.name), table.position))?;
        // Late rows go to another table whole, so they must be read whole.
        if late_rows.is_none() {
            let mut fields = self.shared.borrow().fields().clone();
            let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
            for (_, sql) in &table.computed {
                match self.context.parse_sql_expr(sql, &df_schema) {
                    Ok(expr) => fields.note_expr(&expr),
                    Err(_) => fields.read_everything(),
                }
            }
            let unused = fields.unused(&schema);
            if let Some(skipping) = (!unused.is_empty())
                .then(|| provider.skip_fields(unused))
                .flatten()
            {
                provider = skipping;
            }
        }
        if provider.produces_changelog()
            && table.watermark.is_some()
            && !self.reading_versions.get()
        {
            // A source drops rows late for its watermark: a dropped update
            // or delete would leave every result wrong for good. A
            // temporal join's versioned side keeps them (the engine's
            // source passes a changelog's late rows on).
            return Err(SqlError::at(
                format!(
                    "table '{}': a WATERMARK on a changelog source is not supported (late updates and deletes would be dropped)",
                    table.name
                ),
                table.position,
            ));
        }
        let proctime = table
            .computed
            .iter()
            .any(|(_, sql)| crate::functions::is_proctime(sql));
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        // The event time as a logical expression over the physical columns,
        // its out-of-orderness bound, and whether it is the wall clock.
        let time = match &table.watermark {
            None if proctime => Some((crate::functions::ProcTime::udf().call(vec![]), 0, true)),
            None => None,
            Some(watermark) => {
                let expr = match table
                    .computed
                    .iter()
                    .find(|(name, _)| *name == watermark.column)
                {
                    Some((_, sql)) => self.context.parse_sql_expr(sql, &df_schema)?,
                    None if schema.field_with_name(&watermark.column).is_err() => {
                        return Err(SqlError::at(
                            format!(
                                "the watermark column '{}' is not a column of '{}'",
                                watermark.column, table.name
                            ),
                            table.position,
                        ));
                    }
                    None => datafusion::prelude::col(quoted(&watermark.column)),
                };
                Some((expr, watermark.max_out_of_orderness, false))
            }
        };
        let event_time = match time {
            Some((expr, max_out_of_orderness, processing_time)) => Some(EventTime {
                expr: self
                    .context
                    .state()
                    .create_physical_expr(expr, &df_schema)?,
                max_out_of_orderness,
                processing_time,
                idle_timeout: self.idle_timeout()?,
                drop_after: None,
            }),
            None => None,
        };
        if late_rows.is_some() && event_time.is_none() {
            return Err(SqlError::at(
                format!(
                    "table '{}': late rows need a WATERMARK to be late for",
                    table.name
                ),
                table.position,
            ));
        }
        // A late row goes to its table whole, whatever the query keeps, so
        // none may be dropped early. With event time, rows the query does
        // not keep still move the watermark and count as late: the source
        // reads their time and the source operator drops them after.
        let keep = keep.filter(|_| late_rows.is_none()).map(|keep| KeepOnly {
            time_columns: event_time.as_ref().filter(|e| !e.processing_time).map(|e| {
                let mut columns: Vec<usize> =
                    datafusion::physical_expr::utils::collect_columns(&e.expr)
                        .iter()
                        .map(|c| c.index())
                        .collect();
                columns.sort_unstable();
                columns.dedup();
                columns
            }),
            ..keep
        });
        let mut event_time = event_time;
        if let Some(keep) = keep
            && let Some(keeping) = provider.keep_only(keep.clone())
        {
            provider = keeping;
            if let Some(event_time) = event_time.as_mut() {
                event_time.drop_after = Some(keep).filter(|k| k.time_columns.is_some());
            }
        }
        Ok(Node::Source {
            table,
            provider,
            event_time,
            late_rows,
        })
    }
}

/// A `column = integer` conjunct among the filters DataFusion pushed to a
/// scan, over a top-level integer column of the source.
pub(super) fn keep_only(filters: &[Expr], physical: &Schema) -> Option<KeepOnly> {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let mut conjuncts = Vec::new();
    for filter in filters {
        conjuncts.extend(datafusion::logical_expr::utils::split_conjunction(filter));
    }
    conjuncts.into_iter().find_map(|conjunct| {
        let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = conjunct
        else {
            return None;
        };
        let (column, literal) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                (c, v)
            }
            _ => return None,
        };
        let index = physical.index_of(&column.name).ok()?;
        if !physical.field(index).data_type().is_integer() {
            return None;
        }
        let value = match literal {
            ScalarValue::Int8(Some(v)) => i64::from(*v),
            ScalarValue::Int16(Some(v)) => i64::from(*v),
            ScalarValue::Int32(Some(v)) => i64::from(*v),
            ScalarValue::Int64(Some(v)) => *v,
            ScalarValue::UInt8(Some(v)) => i64::from(*v),
            ScalarValue::UInt16(Some(v)) => i64::from(*v),
            ScalarValue::UInt32(Some(v)) => i64::from(*v),
            _ => return None,
        };
        Some(KeepOnly {
            column: index,
            values: vec![value],
            time_columns: None,
        })
    })
}

/// What a source read by all of `scans` may keep: the rows any of them
/// keeps, if each keeps rows by the same column.
pub(super) fn keep_any(scans: &[Vec<Expr>], physical: &Schema) -> Option<KeepOnly> {
    let mut keeps = scans.iter().map(|filters| keep_only(filters, physical));
    let mut union = keeps.next()??;
    for keep in keeps {
        let keep = keep?;
        if keep.column != union.column {
            return None;
        }
        union.values.extend(keep.values);
    }
    union.values.sort_unstable();
    union.values.dedup();
    Some(union)
}
