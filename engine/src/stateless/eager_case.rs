//! A CASE whose every branch is safe to compute on every row, such as the
//! event-time column of a tagged union (Flink's Nexmark DDL: `CASE WHEN
//! event_type = 0 THEN person.dateTime WHEN ... END`). DataFusion computes
//! a CASE branch by branch on the rows still open, filtering the batch for
//! each; when no condition or result can fail (columns, literals, struct
//! fields, comparisons), computing them all on the whole batch and picking
//! each row's value with `zip` gives the same answer several times cheaper.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, new_null_array};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, CastExpr, Column, IsNotNullExpr, IsNullExpr, Literal, NotExpr,
};

use crate::error::EngineError;

/// `expr` over `batch`, as an array.
pub fn evaluate(
    expr: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
) -> Result<ArrayRef, EngineError> {
    let rows = batch.num_rows();
    let Some(case) = expr
        .downcast_ref::<CaseExpr>()
        .filter(|case| eager(case, &batch.schema()))
    else {
        return Ok(expr.evaluate(batch)?.into_array(rows)?);
    };
    let mut result = match case.else_expr() {
        Some(otherwise) => otherwise.evaluate(batch)?.into_array(rows)?,
        None => new_null_array(&expr.data_type(&batch.schema())?, rows),
    };
    // The first true condition wins: later branches are laid down first.
    for (when, then) in case.when_then_expr().iter().rev() {
        let mask = when.evaluate(batch)?.into_array(rows)?;
        let mask = mask
            .as_boolean_opt()
            .ok_or_else(|| EngineError::Plan("a CASE condition must be boolean".into()))?;
        let then = then.evaluate(batch)?.into_array(rows)?;
        result = zip(mask, &then, &result)?;
    }
    Ok(result)
}

/// A CASE without a base expression whose conditions and results cannot
/// fail on any row.
fn eager(case: &CaseExpr, schema: &Schema) -> bool {
    let cannot_fail = |e: &Arc<dyn PhysicalExpr>| cannot_fail(e, schema);
    case.expr().is_none()
        && case
            .when_then_expr()
            .iter()
            .all(|(when, then)| cannot_fail(when) && cannot_fail(then))
        && case.else_expr().is_none_or(cannot_fail)
}

fn cannot_fail(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> bool {
    let cannot_fail = |e: &Arc<dyn PhysicalExpr>| cannot_fail(e, schema);
    if expr.is::<Column>() || expr.is::<Literal>() {
        return true;
    }
    if let Some(function) = expr.downcast_ref::<ScalarFunctionExpr>() {
        return function.name() == "get_field" && function.args().iter().all(&cannot_fail);
    }
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        use Operator::*;
        return matches!(
            binary.op(),
            Eq | NotEq | Lt | LtEq | Gt | GtEq | And | Or | IsDistinctFrom | IsNotDistinctFrom
        ) && cannot_fail(binary.left())
            && cannot_fail(binary.right());
    }
    // Type coercion widens integers (`event_type = 0` compares as BIGINT).
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return cast
            .expr()
            .data_type(schema)
            .is_ok_and(|from| widens(&from, cast.cast_type()))
            && cannot_fail(cast.expr());
    }
    if let Some(not) = expr.downcast_ref::<NotExpr>() {
        return cannot_fail(not.arg());
    }
    if let Some(is_null) = expr.downcast_ref::<IsNullExpr>() {
        return cannot_fail(is_null.arg());
    }
    if let Some(is_not_null) = expr.downcast_ref::<IsNotNullExpr>() {
        return cannot_fail(is_not_null.arg());
    }
    false
}

/// Whether every value of integer type `from` is a value of `to`.
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let rank = |t: &DataType| match t {
        Int8 => Some((true, 1)),
        Int16 => Some((true, 2)),
        Int32 => Some((true, 4)),
        Int64 => Some((true, 8)),
        UInt8 => Some((false, 1)),
        UInt16 => Some((false, 2)),
        UInt32 => Some((false, 4)),
        UInt64 => Some((false, 8)),
        _ => None,
    };
    match (rank(from), rank(to)) {
        (Some((from_signed, from_bytes)), Some((to_signed, to_bytes))) => {
            from == to
                || (from_signed == to_signed && to_bytes >= from_bytes)
                || (!from_signed && to_signed && to_bytes > from_bytes)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int32Array, Int64Array};
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::physical_expr::expressions::{CastExpr, binary, col, lit};
    use proptest::prelude::*;

    use super::*;

    fn batch(tags: Vec<Option<i32>>, a: Vec<Option<i64>>, b: Vec<Option<i64>>) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("tag", DataType::Int32, true),
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int32Array::from(tags)),
                Arc::new(Int64Array::from(a)),
                Arc::new(Int64Array::from(b)),
            ],
        )
        .unwrap()
    }

    /// `CASE WHEN tag = 0 THEN a WHEN tag <= 1 THEN b [ELSE otherwise] END`:
    /// the conditions overlap, so the first true one must win.
    fn tagged(
        batch: &RecordBatch,
        otherwise: Option<Arc<dyn PhysicalExpr>>,
    ) -> Arc<dyn PhysicalExpr> {
        let schema = batch.schema();
        // As type coercion writes `tag = 0`: the INT column widened.
        let tag = |op, v: i64| {
            let widened = Arc::new(CastExpr::new(
                col("tag", &schema).unwrap(),
                DataType::Int64,
                None,
            ));
            binary(widened, op, lit(v), &schema)
        };
        Arc::new(
            CaseExpr::try_new(
                None,
                vec![
                    (tag(Operator::Eq, 0).unwrap(), col("a", &schema).unwrap()),
                    (tag(Operator::LtEq, 1).unwrap(), col("b", &schema).unwrap()),
                ],
                otherwise,
            )
            .unwrap(),
        )
    }

    proptest! {
        #[test]
        fn picks_what_datafusion_picks(
            rows in prop::collection::vec(
                (prop::option::of(0..3i32), prop::option::of(any::<i64>()), prop::option::of(any::<i64>())),
                0..64,
            ),
            with_else in any::<bool>(),
        ) {
            let tags = rows.iter().map(|r| r.0).collect();
            let a = rows.iter().map(|r| r.1).collect();
            let b = rows.iter().map(|r| r.2).collect();
            let batch = batch(tags, a, b);
            let otherwise = with_else.then(|| lit(ScalarValue::Int64(Some(-1))));
            let case = tagged(&batch, otherwise);
            prop_assert!(eager(case.downcast_ref::<CaseExpr>().unwrap(), &batch.schema()));
            let expected = case.evaluate(&batch).unwrap().into_array(batch.num_rows()).unwrap();
            prop_assert_eq!(&evaluate(&case, &batch).unwrap(), &expected);
        }
    }

    #[test]
    fn a_result_that_may_fail_is_left_to_datafusion() {
        let batch = batch(vec![Some(0)], vec![Some(1)], vec![Some(2)]);
        let schema = batch.schema();
        let narrowing: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(
            col("a", &schema).unwrap(),
            DataType::Int32,
            None,
        ));
        let cast: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(narrowing, DataType::Int64, None));
        let case = tagged(&batch, Some(cast));
        assert!(!eager(case.downcast_ref::<CaseExpr>().unwrap(), &schema));
        assert_eq!(
            evaluate(&case, &batch).unwrap().as_ref(),
            &Int64Array::from(vec![Some(1)]) as &dyn datafusion::arrow::array::Array
        );
    }
}
