//! `MAP[k1, v1, ...]` (`flink_map(...)` after `front/map_literal.rs`) as
//! Flink answers it. A repeated key keeps its first place and its last
//! value. Keys are literals: Runnel's maps cannot hold a NULL key, which
//! Flink's can.
//!
//! Where Flink's answer is not a map's, the map is refused: Flink prints a
//! map in its `HashMap`'s order, not the order written, so a map of two or
//! more keys is answered only where that order cannot differ (looked up by
//! a key, or in CARDINALITY, MAP_KEYS, MAP_VALUES, MAP_ENTRIES) or is
//! Flink's (a result column printed, keys whose Java hash Runnel knows;
//! not compared, cast or written elsewhere, where order would show); and Flink
//! 2.3 answers a lookup of a key missing from a map whose values are all
//! constants with a value that is not NULL (`-1` for an INT), so such a
//! map is looked up only by a literal key it has.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err, plan_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::type_coercion::binary::type_union_resolution;
use datafusion::logical_expr::{
    Expr, ExprSchemable, LogicalPlan, ScalarUDF, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::row_fn::RowFn;

pub const NAME: &str = "flink_map";

/// Functions whose answer does not depend on the order of a map's keys.
const ORDER_FREE: [&str; 4] = ["cardinality", "map_keys", "map_values", "map_entries"];

pub fn udf() -> ScalarUDF {
    RowFn::udf(
        NAME,
        Signature::variadic_any(Volatility::Immutable),
        map_type,
        |_, _| exec_err!("MAP[...] runs as DataFusion's map"),
    )
}

fn map_type(args: &[DataType]) -> Result<DataType> {
    if args.is_empty() || !args.len().is_multiple_of(2) {
        return plan_err!("MAP[...] takes keys and values in pairs");
    }
    let keys: Vec<DataType> = args.iter().step_by(2).cloned().collect();
    let values: Vec<DataType> = args.iter().skip(1).step_by(2).cloned().collect();
    let (Some(key), Some(value)) = (type_union_resolution(&keys), type_union_resolution(&values))
    else {
        return plan_err!("MAP[...]'s keys, and its values, must be of one type each");
    };
    Ok(DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", key, false),
                Field::new("value", value, true),
            ])),
            false,
        )),
        false,
    ))
}

fn key_and_value_types(map: &DataType) -> Result<(DataType, DataType)> {
    if let DataType::Map(entries, _) = map
        && let DataType::Struct(fields) = entries.data_type()
        && let [key, value] = fields.iter().as_slice()
    {
        return Ok((key.data_type().clone(), value.data_type().clone()));
    }
    plan_err!("MAP[...] has the type {map}")
}

/// `flink_map(...)`'s pairs, checked and with repeated keys merged.
fn pairs(args: Vec<Expr>, schema: &DFSchema) -> Result<Vec<(ScalarValue, Expr, Expr)>> {
    let types = args
        .iter()
        .map(|a| a.get_type(schema))
        .collect::<Result<Vec<_>>>()?;
    let (key_type, _) = key_and_value_types(&map_type(&types)?)?;
    let mut pairs: Vec<(ScalarValue, Expr, Expr)> = Vec::new();
    let mut args = args.into_iter();
    while let (Some(key), Some(value)) = (args.next(), args.next()) {
        // A typed literal (`DATE '2020-01-01'`) is a cast or a call until
        // folded.
        let key = if is_constant(&key) {
            datafusion::optimizer::simplify_expressions::ExprSimplifier::new(
                datafusion::logical_expr::simplify::SimplifyContext::builder().build(),
            )
            .simplify(key)?
        } else {
            key
        };
        let Expr::Literal(literal, _) = &key else {
            return plan_err!(
                "MAP[...]'s keys must be literals here (a key that may be NULL cannot be held), not {key}"
            );
        };
        if literal.is_null() {
            return plan_err!("MAP[...]'s keys cannot be NULL here");
        }
        for side in [&key, &value] {
            if let Expr::Literal(ScalarValue::Null, _) = side {
                return plan_err!("MAP[...]'s values must be of one type: a NULL needs a CAST");
            }
        }
        let literal = literal.cast_to(&key_type)?;
        match pairs.iter_mut().find(|(k, _, _)| *k == literal) {
            Some(pair) => pair.2 = value,
            None => pairs.push((literal, key, value)),
        }
    }
    Ok(pairs)
}

fn is_constant(value: &Expr) -> bool {
    value.column_refs().is_empty() && !value.is_volatile()
}

fn call(pairs: &[(ScalarValue, Expr, Expr)]) -> Expr {
    let args = pairs
        .iter()
        .flat_map(|(_, k, v)| [k.clone(), v.clone()])
        .collect();
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(udf()), args))
}

/// DataFusion's map of the pairs, in the order written.
fn as_map(pairs: &[(ScalarValue, Expr, Expr)], map: &DataType) -> Result<Expr> {
    let (_, value_type) = key_and_value_types(map)?;
    let array =
        |exprs: Vec<Expr>| datafusion::functions_nested::make_array::make_array_udf().call(exprs);
    let keys = pairs
        .iter()
        .map(|(k, _, _)| Expr::Literal(k.clone(), None))
        .collect();
    let values = pairs
        .iter()
        .map(|(_, _, v)| cast(v.clone(), &value_type))
        .collect();
    Ok(datafusion::functions_nested::map::map_udf().call(vec![array(keys), array(values)]))
}

fn cast(expr: Expr, to: &DataType) -> Expr {
    Expr::Cast(datafusion::logical_expr::Cast::new(
        Box::new(expr),
        to.clone(),
    ))
}

/// The rewrite of `flink_map(args)`: merged, and a map at once where its
/// order and lookups cannot differ from Flink's (one key, a value not
/// constant).
pub fn own(args: Vec<Expr>, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let pairs = pairs(args, schema)?;
    let map = call(&pairs).get_type(schema)?;
    if pairs.len() == 1 && !is_constant(&pairs[0].2) {
        return Ok(Transformed::yes(as_map(&pairs, &map)?));
    }
    Ok(Transformed::yes(call(&pairs)))
}

/// A call of `function` on a MAP[...] as its first argument, or `None`.
pub fn parent(function: &Arc<ScalarUDF>, args: &[Expr], schema: &DFSchema) -> Result<Option<Expr>> {
    let Some(Expr::ScalarFunction(ScalarFunction {
        func,
        args: pairs_args,
    })) = args.first()
    else {
        return Ok(None);
    };
    if func.name() != NAME {
        return Ok(None);
    }
    let map = args[0].get_type(schema)?;
    let pairs = pairs(pairs_args.clone(), schema)?;
    let name = function.name();
    let with_map = |map_expr: Expr| {
        let mut new_args = vec![map_expr];
        new_args.extend_from_slice(&args[1..]);
        Expr::ScalarFunction(ScalarFunction::new_udf(function.clone(), new_args))
    };
    if ORDER_FREE.contains(&name) {
        return Ok(Some(with_map(as_map(&pairs, &map)?)));
    }
    if name != "get_field" {
        return Ok(None);
    }
    if !pairs.iter().all(|(_, _, v)| is_constant(v)) {
        return Ok(Some(with_map(as_map(&pairs, &map)?)));
    }
    let (key_type, value_type) = key_and_value_types(&map)?;
    let found = match args.get(1) {
        Some(Expr::Literal(key, _)) if !key.is_null() => {
            let key = key.cast_to(&key_type)?;
            pairs.iter().find(|(k, _, _)| *k == key)
        }
        _ => None,
    };
    match found {
        Some((_, _, value)) => Ok(Some(cast(value.clone(), &value_type))),
        None => plan_err!(
            "a MAP[...] whose values are all constants is looked up here only by a literal key it has: Flink 2.3 answers a missing key with a value that is not NULL"
        ),
    }
}

/// Whether a map keyed by `key` prints in the order Flink prints it (the
/// print follows Java's `HashMap`, whose order needs the key's Java
/// `hashCode`, which Runnel computes for these).
pub fn prints_in_hash_order(key: &DataType) -> bool {
    matches!(
        key,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Boolean
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Date32
            | DataType::Time32(_)
            | DataType::Timestamp(..)
    )
}

/// A query's result column that is a MAP[...] itself, as a map: printed,
/// it shows in Flink's order (`connectors::display`), and nothing reads it
/// further.
fn result_columns_as_maps(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Projection(projection) = plan else {
        return Ok(plan);
    };
    let schema = projection.input.schema().clone();
    let mut changed = false;
    let mut exprs = Vec::with_capacity(projection.expr.len());
    for expr in projection.expr.iter() {
        let (inner, name) = match expr {
            Expr::Alias(alias) => (alias.expr.as_ref(), alias.name.clone()),
            other => (other, other.schema_name().to_string()),
        };
        if let Expr::ScalarFunction(f) = inner
            && f.func.name() == NAME
        {
            let pairs = pairs(f.args.clone(), &schema)?;
            let map = call(&pairs).get_type(&schema)?;
            let (key, _) = key_and_value_types(&map)?;
            if prints_in_hash_order(&key) {
                exprs.push(as_map(&pairs, &map)?.alias(name));
                changed = true;
                continue;
            }
        }
        exprs.push(expr.clone());
    }
    if !changed {
        return Ok(LogicalPlan::Projection(projection));
    }
    Ok(LogicalPlan::Projection(
        datafusion::logical_expr::Projection::try_new(exprs, projection.input.clone())?,
    ))
}

/// Refuses a MAP[...] left where its order or a lookup could show.
#[derive(Debug)]
pub struct MapsPlaced;

impl AnalyzerRule for MapsPlaced {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let plan = result_columns_as_maps(plan)?;
        let mut left = false;
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|expr| {
                expr.apply(|e| {
                    if matches!(e, Expr::ScalarFunction(f) if f.func.name() == NAME) {
                        left = true;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        if left {
            return plan_err!(
                "a MAP[...] of two or more keys, or of constant values, is supported only looked up by a key, in CARDINALITY, MAP_KEYS, MAP_VALUES or MAP_ENTRIES, or as a result column: Flink prints a map in its hash order, compares maps as sets, and answers a key missing from a map of constants with a value that is not NULL"
            );
        }
        Ok(plan)
    }

    fn name(&self) -> &str {
        "flink_maps_placed"
    }
}
