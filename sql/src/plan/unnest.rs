//! A projection holding `__runnel_unnest` calls (`CROSS JOIN UNNEST`, as
//! `front/unnest.rs` writes it): each input row becomes one row per
//! element of its collection (none for an empty or NULL one, or one with
//! NULLs for `LEFT JOIN ... ON TRUE`), and the projection is evaluated over
//! those rows, the calls read as the element's columns.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Expr, ExprSchemable, Projection};
use runnel_engine::EngineError;
use runnel_engine::batch::with_rows;
use runnel_engine::changelog::is_changelog;
use runnel_engine::stateless::BatchFn;

use super::{Node, Planned, Planner};
use crate::error::SqlError;
use crate::functions::unnest::{Part, UNNEST, part_type};

/// One `__runnel_unnest(collection, part, outer)` call.
#[derive(Clone, PartialEq)]
struct Call {
    collection: Expr,
    part: Part,
    outer: bool,
}

fn as_call(expr: &Expr) -> Option<Call> {
    let Expr::ScalarFunction(function) = expr else {
        return None;
    };
    if function.func.name() != UNNEST {
        return None;
    }
    match function.args.as_slice() {
        [
            collection,
            Expr::Literal(ScalarValue::Int64(Some(code)), _),
            Expr::Literal(ScalarValue::Boolean(Some(outer)), _),
        ] => Some(Call {
            collection: collection.clone(),
            part: Part::from_code(*code)?,
            outer: *outer,
        }),
        _ => None,
    }
}

pub(crate) fn holds_unnest(projection: &Projection) -> bool {
    projection.expr.iter().any(|e| {
        e.exists(|sub| Ok(matches!(sub, Expr::ScalarFunction(f) if f.func.name() == UNNEST)))
            .unwrap_or(false)
    })
}

impl Planner<'_> {
    pub(crate) async fn unnest(&self, projection: &Projection) -> Result<Planned, SqlError> {
        let refuse = |message: &str| self.reject(message, &["UNNEST"]);
        let input = Box::pin(self.translate(&projection.input)).await?;
        let input = self.settled(self.materialize(input)?)?;
        if is_changelog(&input.schema) {
            return Err(refuse("UNNEST of an updating input is not supported yet"));
        }
        let mut calls: Vec<Call> = Vec::new();
        for expr in &projection.expr {
            expr.apply(|sub| {
                if let Some(call) = as_call(sub)
                    && !calls.contains(&call)
                {
                    calls.push(call);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        let Some(first) = calls.first().cloned() else {
            return Err(refuse("UNNEST without a collection"));
        };
        if calls
            .iter()
            .any(|c| c.collection != first.collection || c.outer != first.outer)
        {
            return Err(refuse(
                "more than one UNNEST over one table is not supported yet",
            ));
        }
        let input_df = projection.input.schema();
        let collection_type = first.collection.get_type(input_df)?;
        let names: Vec<String> = (0..calls.len()).map(|i| format!("__unnest_{i}")).collect();
        let mut unnested = Vec::new();
        for (call, name) in calls.iter().zip(&names) {
            unnested.push(Field::new(
                name,
                part_type(&collection_type, call.part)?,
                true,
            ));
        }
        let expanded_df = input_df.join(&DFSchema::from_unqualified_fields(
            unnested.clone().into(),
            HashMap::new(),
        )?)?;
        let exprs: Vec<Expr> = projection
            .expr
            .iter()
            .map(|expr| {
                expr.clone()
                    .transform(|sub| {
                        Ok(
                            match as_call(&sub).and_then(|c| calls.iter().position(|k| *k == c)) {
                                Some(i) => Transformed::yes(Expr::Column(names[i].as_str().into())),
                                None => Transformed::no(sub),
                            },
                        )
                    })
                    .map(|t| t.data)
            })
            .collect::<Result<_, _>>()?;
        let physical = self.physical_exprs(&exprs, &expanded_df)?;
        let collection = self
            .context
            .state()
            .create_physical_expr(first.collection.clone(), input_df)?;
        let mut expanded_fields: Vec<Field> = input
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        expanded_fields.extend(unnested);
        let expanded_schema = Arc::new(Schema::new(expanded_fields));
        let out = Arc::new(projection.schema.as_arrow().clone());
        let schema = out.clone();
        let parts: Vec<Part> = calls.iter().map(|c| c.part).collect();
        let outer = first.outer;
        let f: BatchFn = Arc::new(move |batch: RecordBatch| {
            let values = collection.evaluate(&batch)?.into_array(batch.num_rows())?;
            let (rows, columns) = expand(&values, &parts, outer)?;
            let mut expanded: Vec<ArrayRef> = batch
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &rows, None))
                .collect::<Result<_, _>>()?;
            expanded.extend(columns);
            let expanded = RecordBatch::try_new(expanded_schema.clone(), expanded)?;
            let columns = physical
                .iter()
                .map(|e| runnel_engine::stateless::eager_case::evaluate(e, &expanded))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(with_rows(out.clone(), columns, expanded.num_rows())?))
        });
        Ok(Planned::new(
            Node::Map {
                input: Box::new(input.node),
                name: "Unnest".into(),
                f,
            },
            schema,
        ))
    }
}

/// For each element of each row's collection: the row it came from, and
/// the asked parts (element or key, value, position from 1).
fn expand(
    collections: &ArrayRef,
    parts: &[Part],
    outer: bool,
) -> Result<(UInt32Array, Vec<ArrayRef>), EngineError> {
    let (offsets, items): (Vec<usize>, Vec<ArrayRef>) = match collections.data_type() {
        DataType::List(_) => {
            let list = collections.as_list::<i32>();
            (
                list.offsets().iter().map(|&o| o as usize).collect(),
                vec![list.values().clone()],
            )
        }
        DataType::LargeList(_) => {
            let list = collections.as_list::<i64>();
            (
                list.offsets().iter().map(|&o| o as usize).collect(),
                vec![list.values().clone()],
            )
        }
        DataType::Map(_, _) => {
            let map = collections.as_map();
            (
                map.offsets().iter().map(|&o| o as usize).collect(),
                vec![map.keys().clone(), map.values().clone()],
            )
        }
        other => {
            return Err(EngineError::Plan(format!(
                "UNNEST takes an ARRAY or a MAP, not {other}"
            )));
        }
    };
    let mut rows: Vec<u32> = Vec::new();
    let mut items_at: Vec<Option<u32>> = Vec::new();
    let mut positions: Vec<Option<i32>> = Vec::new();
    for row in 0..collections.len() {
        let (start, end) = match collections.is_null(row) {
            true => (0, 0),
            false => (offsets[row], offsets[row + 1]),
        };
        if start == end {
            if outer {
                rows.push(row as u32);
                items_at.push(None);
                positions.push(None);
            }
            continue;
        }
        for (position, item) in (start..end).enumerate() {
            rows.push(row as u32);
            items_at.push(Some(item as u32));
            positions.push(Some(position as i32 + 1));
        }
    }
    let items_at = UInt32Array::from(items_at);
    let columns = parts
        .iter()
        .map(|part| -> Result<ArrayRef, EngineError> {
            Ok(match part {
                Part::Element => take(items[0].as_ref(), &items_at, None)?,
                Part::Value => take(items.get(1).unwrap_or(&items[0]).as_ref(), &items_at, None)?,
                Part::Ordinality => Arc::new(Int32Array::from(positions.clone())),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((UInt32Array::from(rows), columns))
}
