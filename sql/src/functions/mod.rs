//! Flink's built-in functions where DataFusion has none or answers
//! differently. Each is registered under DataFusion's name, so that a
//! call resolves to it; the calls DataFusion plans from syntax rather
//! than by name (`SUBSTRING(s FROM 2)`) and Flink's casts are swapped in
//! by `FlinkSemantics` before the plan is analyzed.
//!
//! `sql/tests/flink/functions.expected.json` holds real Flink's answers
//! to each; `tests/it/flink_functions.rs` holds Runnel to them.

mod aggregates;
mod collect;
mod collections;
mod decimal_divide;
mod decimal_types;
mod integer_variance;
pub(crate) mod json;
mod json_clauses;
mod json_doc;
mod map_literal;
mod math;
mod more_strings;
mod named_cast;
mod narrowing;
mod percentile;
mod printf;
pub(crate) mod refused;
mod regexp;
mod row_fn;
mod strings;
mod temporal;
mod text_casts;
mod time;
mod time_of_day;
pub(crate) mod unnest;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue, plan_err};
use datafusion::config::ConfigOptions;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, Operator, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use map_literal::NAME as MAP_LITERAL;
pub use named_cast::NAME as NAMED_CAST;
pub use regexp::RegexpExtract;
pub use time::{DateFormat, ProcTime, is_proctime};

/// Every function Runnel adds or answers as Flink does.
fn flink_functions() -> Vec<ScalarUDF> {
    let mut functions = vec![
        ProcTime::udf(),
        DateFormat::udf(),
        RegexpExtract::udf(),
        regexp::regexp_replace(),
        math::log(),
        math::power(),
        math::modulo(),
        math::truncate(),
        math::sqrt(),
        math::ceil(),
        math::floor(),
        strings::substring(),
        strings::concat(),
        strings::replace(),
        strings::lpad(),
        strings::rpad(),
        strings::chr(),
        strings::unhex(),
        strings::left(),
        strings::right(),
        strings::overlay(),
        strings::initcap(),
        strings::ascii(),
        temporal::extract(),
        temporal::from_unixtime(),
        temporal::to_timestamp(),
        temporal::to_date(),
        temporal::timestampadd(),
        temporal::timestampdiff(),
        temporal::floor_time(),
        temporal::ceil_time(),
        temporal::unix_timestamp(),
        temporal::convert_tz(),
        temporal::to_timestamp_ltz(),
        math::ceiling(),
        decimal_divide::udf(),
        map_literal::udf(),
        more_strings::locate(),
        more_strings::instr(),
        more_strings::split_index(),
        more_strings::elt(),
        more_strings::regexp(),
        more_strings::regexp_substr(),
        more_strings::startswith(),
        more_strings::endswith(),
        more_strings::parse_url(),
        more_strings::url_encode(),
        more_strings::url_decode(),
        more_strings::to_base64(),
        more_strings::from_base64(),
        more_strings::hex(),
        more_strings::bin(),
        more_strings::is_alpha(),
        more_strings::is_digit(),
        more_strings::is_decimal(),
        more_strings::sha2(),
        more_strings::sign(),
        more_strings::e(),
        conditional_if(),
        json::json_value(),
        json::json_query(),
        json::json_exists(),
        json::json_string(),
        json::is_json(),
        json::json_object(),
        json::json_array(),
        json::json_raw(),
        json::json_arrayagg_item(),
        json::json_arrayagg_close(),
        json::json_objectagg_item(),
        json::json_objectagg_close(),
        collections::element(),
        collections::array_slice(),
        collections::split(),
        collections::sha1(),
        collections::sha224(),
        collections::sha256(),
        collections::sha384(),
        collections::sha512(),
        collections::type_of(),
        collections::regexp_extract_all(),
        collections::str_to_map(),
        printf::udf(),
    ];
    functions.extend(temporal::parts());
    functions.extend(json_clauses::json_value_udfs());
    functions.push(json_clauses::json_query_udf());
    functions.push(refused::udf());
    functions
}

/// Whether JSON_VALUE and JSON_QUERY with clauses follow this path as
/// Flink does (the front end refuses the others at submit).
pub(crate) fn json_path_supported(path: &str) -> bool {
    json_clauses::path_supported(path)
}

/// Refuses DECIMAL divisions whose operands may be typed otherwise than in
/// Flink; `sources` are the tables whose columns have their declared types.
pub fn check_decimal_operands(context: &SessionContext, sources: HashSet<String>) {
    context
        .state_ref()
        .write()
        .add_analyzer_rule(Arc::new(decimal_types::DecimalOperands { sources }));
}

pub fn register(context: &SessionContext) -> Result<()> {
    let mut by_name = HashMap::new();
    for function in flink_functions() {
        let function = Arc::new(function);
        by_name.insert(function.name().to_string(), function.clone());
        context.register_udf(function.as_ref().clone());
    }
    context.register_udf(unnest::udf());
    datafusion::execution::FunctionRegistry::register_expr_planner(
        &mut *context.state_ref().write(),
        Arc::new(time_of_day::MixedPrecisionComparisons),
    )?;
    context.register_udf(time::local_timestamp());
    context.register_udf(time::current_row_timestamp());
    context.register_udf(time::unix_timestamp_now());
    context
        .state_ref()
        .write()
        .add_analyzer_rule(Arc::new(map_literal::MapsPlaced));
    context.register_udf(temporal_marker());
    context.register_udaf(percentile::udaf());
    context.register_udaf(collect::udaf());
    // Flink's VARIANCE is VAR_SAMP (DataFusion has STDDEV already).
    context.register_udaf(
        datafusion::functions_aggregate::variance::var_samp_udaf()
            .as_ref()
            .clone()
            .with_aliases(["variance"]),
    );
    context.register_udf(named_cast::udf());
    // LISTAGG(x [, separator]) is DataFusion's string_agg, ',' by default.
    context.register_udaf(
        datafusion::functions_aggregate::string_agg::string_agg_udaf()
            .as_ref()
            .clone()
            .with_aliases(["listagg"]),
    );
    context
        .state_ref()
        .write()
        .register_function_rewrite(Arc::new(FlinkSemantics {
            by_name,
            boolean_text: Arc::new(strings::boolean_text()),
            double_text: Arc::new(strings::double_text()),
            timestamp_text: Arc::new(temporal::timestamp_text()),
            round_decimal: Arc::new(math::round_decimal()),
            integer_avg: Arc::new(aggregates::integer_avg()),
            decimal_divide: Arc::new(decimal_divide::udf()),
        }))
}

#[derive(Debug)]
struct FlinkSemantics {
    by_name: HashMap<String, Arc<ScalarUDF>>,
    boolean_text: Arc<ScalarUDF>,
    double_text: Arc<ScalarUDF>,
    timestamp_text: Arc<ScalarUDF>,
    round_decimal: Arc<ScalarUDF>,
    integer_avg: Arc<datafusion::logical_expr::AggregateUDF>,
    decimal_divide: Arc<ScalarUDF>,
}

impl FlinkSemantics {
    /// Flink's text of a value cast to a string, where DataFusion's differs.
    fn as_text(&self, expr: Expr, schema: &DFSchema) -> Result<Result<Expr, Expr>> {
        let text = match expr.get_type(schema)? {
            DataType::Boolean => &self.boolean_text,
            DataType::Float64 | DataType::Float32 => &self.double_text,
            DataType::Timestamp(_, None) => &self.timestamp_text,
            DataType::Timestamp(_, Some(zone)) if zone.as_ref() == "UTC" => &self.timestamp_text,
            DataType::Time32(_) => return Ok(Ok(time_of_day::as_text(expr))),
            _ => return Ok(Err(expr)),
        };
        Ok(Ok(text.call(vec![expr])))
    }
}

impl FunctionRewrite for FlinkSemantics {
    fn name(&self) -> &str {
        "flink_semantics"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        Ok(match expr {
            // A MULTISET is a map to Arrow; a function that takes a map
            // would answer as for one (CARDINALITY would count keys).
            Expr::ScalarFunction(ScalarFunction { func, args })
                if args
                    .iter()
                    .any(|a| a.get_type(schema).is_ok_and(|t| collect::is_multiset(&t))) =>
            {
                return plan_err!(
                    "{} of a MULTISET (COLLECT's result) is not supported; a MULTISET can be selected only",
                    func.name().to_uppercase()
                );
            }
            Expr::Cast(Cast { expr, .. }) | Expr::TryCast(TryCast { expr, .. })
                if expr
                    .get_type(schema)
                    .is_ok_and(|t| collect::is_multiset(&t)) =>
            {
                return plan_err!("a CAST of a MULTISET (COLLECT's result) is not supported");
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if func.name() == map_literal::NAME =>
            {
                map_literal::own(args, schema)?
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if matches!(
                    args.first(),
                    Some(Expr::ScalarFunction(inner)) if inner.func.name() == map_literal::NAME
                ) =>
            {
                match map_literal::parent(&func, &args, schema)? {
                    Some(rewritten) => Transformed::yes(rewritten),
                    None => Transformed::no(Expr::ScalarFunction(ScalarFunction { func, args })),
                }
            }
            Expr::ScalarFunction(ScalarFunction { func, args }) if func.name() == "mod" => {
                match <[Expr; 2]>::try_from(args) {
                    Ok([a, b]) => Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                        Box::new(a),
                        Operator::Modulo,
                        Box::new(b),
                    ))),
                    Err(args) => {
                        Transformed::no(Expr::ScalarFunction(ScalarFunction { func, args }))
                    }
                }
            }
            Expr::ScalarFunction(ScalarFunction { func, args }) if func.name() == printf::NAME => {
                printf_call(func, args, schema)?
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if func.name() == "timestampadd" && args.len() == 3 =>
            {
                temporal::timestampadd_typed(func, args, schema)?
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if func.name() == "array_element" && args.len() == 2 =>
            {
                collections::flink_element(func, args)?
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if func.name() == "array_has" && args.len() == 2 =>
            {
                collections::flink_contains(func, args)?
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if matches!(func.name(), "upper" | "lower") && args.len() == 1 =>
            {
                match strings::constant_case(func.name(), &args[0])? {
                    Some(folded) => Transformed::yes(datafusion::prelude::lit(folded)),
                    None => Transformed::no(Expr::ScalarFunction(ScalarFunction { func, args })),
                }
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if func.name() == "abs"
                    && args.len() == 1
                    && args[0]
                        .get_type(schema)
                        .is_ok_and(|t| t.is_signed_integer()) =>
            {
                math::wrapping_abs(func, args, schema)?
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Divide,
                right,
            }) if math::is_constant(&left) && math::folds_to_zero(&right) => {
                return plan_err!(
                    "Division by zero in the constant {left} / {right}: Flink evaluates \
                     constant expressions when it plans a query, and fails on this one"
                );
            }
            expr @ (Expr::Negative(_) | Expr::BinaryExpr(_))
                if math::is_constant(&expr)
                    && expr.get_type(schema).is_ok_and(|t| t.is_floating()) =>
            {
                match math::constant_float_arithmetic(&expr, schema)? {
                    Some(folded) => Transformed::yes(folded),
                    None => Transformed::no(expr),
                }
            }
            // Before the replacement of DataFusion's functions by ours below,
            // which would take the call first.
            Expr::ScalarFunction(ScalarFunction { func, args })
                if matches!(func.name(), "hour" | "minute" | "second" | "date_part")
                    && args
                        .last()
                        .and_then(|t| t.get_type(schema).ok())
                        .is_some_and(|t| time_of_day::is_time(&t)) =>
            {
                let unit = match func.name() {
                    "date_part" => match args.first() {
                        Some(Expr::Literal(unit, _)) => unit.to_string(),
                        _ => return plan_err!("EXTRACT of a TIME takes a unit"),
                    },
                    name => name.to_string(),
                };
                let time = args.into_iter().last().expect("checked above");
                Transformed::yes(time_of_day::field(&unit, time)?)
            }
            // Flink's ARRAY_SLICE takes INT offsets: a BIGINT expression is
            // refused there (an integer literal is an INT in Flink).
            Expr::ScalarFunction(ScalarFunction { func, args })
                if func.name() == "array_slice"
                    && args.iter().skip(1).any(|a| {
                        !matches!(a, Expr::Literal(..))
                            && a.get_type(schema).is_ok_and(|t| t == DataType::Int64)
                    }) =>
            {
                return plan_err!(
                    "ARRAY_SLICE's offsets are INTs; a BIGINT offset is refused, as Flink refuses it"
                );
            }
            Expr::ScalarFunction(call)
                if self
                    .by_name
                    .get(call.func.name())
                    .is_some_and(|ours| !Arc::ptr_eq(ours, &call.func)) =>
            {
                let ours = self.by_name[call.func.name()].clone();
                Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                    ours, call.args,
                )))
            }
            Expr::Cast(Cast { expr, field })
                if text_casts::applies(field.data_type())
                    && expr.get_type(schema).is_ok_and(|t| is_text(&t)) =>
            {
                Transformed::yes(text_casts::flink_cast(*expr, field.data_type(), true)?)
            }
            Expr::TryCast(TryCast { expr, field })
                if text_casts::applies(field.data_type())
                    && expr.get_type(schema).is_ok_and(|t| is_text(&t)) =>
            {
                Transformed::yes(text_casts::flink_cast(*expr, field.data_type(), false)?)
            }
            Expr::Cast(Cast { expr, field }) if is_text(field.data_type()) => {
                match self.as_text(*expr, schema)? {
                    Ok(text) => Transformed::yes(text),
                    Err(expr) => Transformed::no(Expr::Cast(Cast::new(
                        Box::new(expr),
                        field.data_type().clone(),
                    ))),
                }
            }
            Expr::TryCast(TryCast { expr, field }) if is_text(field.data_type()) => {
                match self.as_text(*expr, schema)? {
                    Ok(text) => Transformed::yes(text),
                    Err(expr) => Transformed::no(Expr::TryCast(TryCast::new(
                        Box::new(expr),
                        field.data_type().clone(),
                    ))),
                }
            }
            // INT with an integer literal (or two integer literals) is INT
            // arithmetic in Flink, which wraps at 32 bits; DataFusion's
            // literal is a BIGINT, which would make it 64-bit. Children are
            // rewritten first, so `1 + 2 + 3` is INT all the way up.
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply)
                    && (int_literal_beside_int(&left, &right, schema)
                        || int_literal_beside_int(&right, &left, schema)
                        || (is_int_literal(&left) && is_int_literal(&right))) =>
            {
                Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left: Box::new(flink_int_literal(*left)),
                    op,
                    right: Box::new(flink_int_literal(*right)),
                }))
            }
            Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })
                if narrowing::narrowing(&expr.get_type(schema)?, field.data_type()).is_some() =>
            {
                match narrowing::narrowing(&expr.get_type(schema)?, field.data_type()) {
                    Some(udf) => Transformed::yes(udf.call(vec![*expr])),
                    None => Transformed::no(Expr::Cast(Cast { expr, field })),
                }
            }
            Expr::Cast(Cast { expr, field }) if time_of_day::is_time(field.data_type()) => {
                match time_of_day::cast_to_time(*expr.clone(), field.data_type(), true, schema)? {
                    Some(cast) => Transformed::yes(cast),
                    None => Transformed::no(Expr::Cast(Cast { expr, field })),
                }
            }
            Expr::TryCast(TryCast { expr, field }) if time_of_day::is_time(field.data_type()) => {
                match time_of_day::cast_to_time(*expr.clone(), field.data_type(), false, schema)? {
                    Some(cast) => Transformed::yes(cast),
                    None => Transformed::no(Expr::TryCast(TryCast { expr, field })),
                }
            }
            Expr::Cast(Cast { expr, field })
                if matches!(field.data_type(), DataType::Timestamp(_, None))
                    && expr
                        .get_type(schema)
                        .is_ok_and(|t| time_of_day::is_time(&t)) =>
            {
                Transformed::yes(time_of_day::to_timestamp(*expr, field.data_type())?)
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if matches!(op, Operator::Plus | Operator::Minus)
                    && left
                        .get_type(schema)
                        .is_ok_and(|t| time_of_day::is_time(&t))
                    && right
                        .get_type(schema)
                        .is_ok_and(|t| time_of_day::is_interval(&t)) =>
            {
                Transformed::yes(time_of_day::plus_interval(
                    *left,
                    *right,
                    op == Operator::Minus,
                ))
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Plus,
                right,
            }) if left
                .get_type(schema)
                .is_ok_and(|t| time_of_day::is_interval(&t))
                && right
                    .get_type(schema)
                    .is_ok_and(|t| time_of_day::is_time(&t)) =>
            {
                Transformed::yes(time_of_day::plus_interval(*right, *left, false))
            }
            Expr::Cast(Cast { field, .. }) | Expr::TryCast(TryCast { field, .. })
                if matches!(field.data_type(), DataType::Time64(_)) =>
            {
                return plan_err!("TIME is TIME(0) or TIME(3) here; TIME(9) is not supported");
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Divide,
                right,
            }) if [&left, &right]
                .into_iter()
                .any(|side| matches!(side.get_type(schema), Ok(DataType::Decimal128(..)))) =>
            {
                decimal_division(*left, *right, schema, &self.decimal_divide)?
            }
            // Flink's GREATEST and LEAST are NULL when any argument is.
            Expr::ScalarFunction(ScalarFunction { func, args })
                if matches!(func.name(), "greatest" | "least") && !args.is_empty() =>
            {
                let any_null = args
                    .iter()
                    .map(|a| a.clone().is_null())
                    .reduce(|a, b| a.or(b))
                    .unwrap_or_else(|| datafusion::prelude::lit(false));
                let call = Expr::ScalarFunction(ScalarFunction { func, args });
                Transformed::yes(
                    datafusion::prelude::when(
                        any_null,
                        datafusion::prelude::lit(ScalarValue::Null),
                    )
                    .otherwise(call)?,
                )
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if func.name() == "round"
                    && args.len() == 1
                    && matches!(args[0].get_type(schema)?, DataType::Decimal128(..)) =>
            {
                Transformed::yes(self.round_decimal.call(args))
            }
            // Flink's ARRAY_REMOVE takes out every equal element.
            Expr::ScalarFunction(ScalarFunction { func, args })
                if func.name() == "array_remove" =>
            {
                Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                    datafusion::functions_nested::remove::array_remove_all_udf(),
                    args,
                )))
            }
            Expr::AggregateFunction(call) if call.func.name() == percentile::NAME => {
                percentile::check_call(&call, schema)?;
                Transformed::no(Expr::AggregateFunction(call))
            }
            Expr::AggregateFunction(call)
                if call.func.name() == "string_agg"
                    && !matches!(call.params.args.get(1), Some(Expr::Literal(..))) =>
            {
                return plan_err!("LISTAGG's separator must be a literal, as in Flink");
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if args.is_empty() && matches!(func.name(), "now" | "current_date") =>
            {
                let clock = if func.name() == "now" {
                    time::current_timestamp()
                } else {
                    time::current_date()
                };
                Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                    Arc::new(clock),
                    Vec::new(),
                )))
            }
            Expr::ScalarFunction(ScalarFunction { func, .. }) if func.name() == "current_time" => {
                // DataFusion's is UTC in nanoseconds folded at planning;
                // Flink's a TIME(0) in the session time zone, per row.
                Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                    Arc::new(time_of_day::current_time()),
                    Vec::new(),
                )))
            }
            Expr::ScalarFunction(ScalarFunction { func, args }) if func.name() == "typeof" => {
                Transformed::yes(type_of(&args, schema)?)
            }
            Expr::ScalarFunction(ScalarFunction { func, args }) if func.name() == "if" => {
                match <[Expr; 3]>::try_from(args) {
                    Ok([condition, then, otherwise]) => {
                        let common =
                            if_type(&then.get_type(schema)?, &otherwise.get_type(schema)?)?;
                        Transformed::yes(
                            datafusion::prelude::when(condition, then.cast_to(&common, schema)?)
                                .otherwise(otherwise.cast_to(&common, schema)?)?,
                        )
                    }
                    Err(args) => {
                        Transformed::no(Expr::ScalarFunction(ScalarFunction { func, args }))
                    }
                }
            }
            Expr::AggregateFunction(mut call) => {
                match self.flink_aggregate(&call.func, &call.params, false, schema)? {
                    Some((func, null_treatment)) => {
                        call.func = func;
                        call.params.null_treatment = null_treatment;
                        Transformed::yes(Expr::AggregateFunction(call))
                    }
                    None => Transformed::no(Expr::AggregateFunction(call)),
                }
            }
            Expr::WindowFunction(mut call) => {
                use datafusion::logical_expr::expr::WindowFunctionDefinition;
                let WindowFunctionDefinition::AggregateUDF(function) = &call.fun else {
                    return Ok(Transformed::no(Expr::WindowFunction(call)));
                };
                let params = datafusion::logical_expr::expr::AggregateFunctionParams {
                    args: call.params.args.clone(),
                    distinct: call.params.distinct,
                    filter: None,
                    order_by: Vec::new(),
                    null_treatment: call.params.null_treatment,
                };
                match self.flink_aggregate(function, &params, true, schema)? {
                    Some((func, null_treatment)) => {
                        call.fun = WindowFunctionDefinition::AggregateUDF(func);
                        call.params.null_treatment = null_treatment;
                        Transformed::yes(Expr::WindowFunction(call))
                    }
                    None => Transformed::no(Expr::WindowFunction(call)),
                }
            }
            other => Transformed::no(other),
        })
    }
}

type AggregateChange = (
    Arc<datafusion::logical_expr::AggregateUDF>,
    Option<datafusion::logical_expr::expr::NullTreatment>,
);

impl FlinkSemantics {
    /// Flink's aggregate where DataFusion's differs, and its NULL
    /// treatment: `AVG` of integers stays an integer; `FIRST_VALUE` and
    /// `LAST_VALUE` pass over NULLs. `None`: as it is.
    fn flink_aggregate(
        &self,
        func: &Arc<datafusion::logical_expr::AggregateUDF>,
        params: &datafusion::logical_expr::expr::AggregateFunctionParams,
        over_window: bool,
        schema: &DFSchema,
    ) -> datafusion::common::Result<Option<AggregateChange>> {
        let name = func.name();
        let input = params
            .args
            .first()
            .map(|a| a.get_type(schema))
            .transpose()?;
        let integer_input = input.as_ref().is_some_and(DataType::is_integer);
        let decimal_input = matches!(input, Some(DataType::Decimal128(..)));
        if name == "avg"
            && (integer_input || decimal_input)
            && !Arc::ptr_eq(func, &self.integer_avg)
        {
            return Ok(Some((self.integer_avg.clone(), params.null_treatment)));
        }
        // Flink answers these of an integer column with an integer of its
        // type (`integer_variance`), and of a DECIMAL with a DECIMAL. In an
        // OVER window its answers follow integer division instead (the
        // VAR_SAMP of 1 and 2 is 1 there, 0 in a GROUP BY).
        if let Some(kind) = integer_variance::Kind::of(name) {
            if decimal_input || over_window && integer_input {
                return plan_err!(
                    "{} of {} in {} is not supported yet: Flink answers it in the argument's type; CAST the argument to DOUBLE",
                    kind.sql_name(),
                    if decimal_input {
                        "a DECIMAL"
                    } else {
                        "an integer"
                    },
                    if over_window {
                        "an OVER window"
                    } else {
                        "this query"
                    }
                );
            }
            if integer_input {
                return Ok(Some((
                    Arc::new(integer_variance::udaf(kind)),
                    params.null_treatment,
                )));
            }
        }
        if matches!(name, "first_value" | "last_value") && params.null_treatment.is_none() {
            return Ok(Some((
                func.clone(),
                Some(datafusion::logical_expr::expr::NullTreatment::IgnoreNulls),
            )));
        }
        Ok(None)
    }
}

pub(crate) fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// `__runnel_temporal(probe.time, versioned.time)`: where `front/temporal.rs`
/// marks a join against a versioned table, in its ON clause, so that the
/// planner knows the join and its probe time column (which the optimizer
/// would otherwise prune). It reads both sides, so no rule pushes it down,
/// and is volatile, so none folds it; the planner takes it out.
pub const TEMPORAL_MARKER: &str = "__runnel_temporal";

fn temporal_marker() -> ScalarUDF {
    row_fn::RowFn::udf(
        TEMPORAL_MARKER,
        datafusion::logical_expr::Signature::any(2, datafusion::logical_expr::Volatility::Volatile),
        |_| Ok(DataType::Boolean),
        |_, _| Ok(ScalarValue::Boolean(Some(true))),
    )
}

/// `IF(condition, then, else)`: planned here so that the name resolves;
/// the rewrite makes it a CASE, which types it.
fn conditional_if() -> ScalarUDF {
    row_fn::RowFn::udf(
        "if",
        datafusion::logical_expr::Signature::any(
            3,
            datafusion::logical_expr::Volatility::Immutable,
        ),
        |args| match args {
            [DataType::Boolean | DataType::Null, then, otherwise] => if_type(then, otherwise),
            _ => datafusion::common::plan_err!("IF takes a condition and two values, not {args:?}"),
        },
        |_, _| datafusion::common::exec_err!("IF runs as a CASE"),
    )
}

/// The type both branches of an IF take.
fn if_type(then: &DataType, otherwise: &DataType) -> Result<DataType> {
    datafusion::logical_expr::type_coercion::binary::comparison_coercion(then, otherwise)
        .map_or_else(
            || {
                datafusion::common::plan_err!(
                    "IF's branches have types {then} and {otherwise}, which do not meet"
                )
            },
            Ok,
        )
}

/// `TYPEOF(column [, force])` as Flink names the column's type. Only of a
/// column whose type Runnel keeps as Flink declared it: a string column
/// may have been a VARCHAR(n), and a literal's type is Flink's CHAR(n) or
/// an exact precision, so those are refused rather than answered
/// differently.
fn type_of(args: &[Expr], schema: &DFSchema) -> Result<Expr> {
    if let Some(name) = args.first().and_then(literal_type) {
        return Ok(Expr::Literal(ScalarValue::Utf8(Some(name)), None));
    }
    let Some(Expr::Column(column)) = args.first() else {
        return plan_err!(
            "TYPEOF is supported of a column, or of a number or BOOLEAN literal, only"
        );
    };
    let field = datafusion::common::ExprSchema::field_from_column(schema, column)?;
    if matches!(
        field.data_type(),
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    ) {
        return plan_err!(
            "TYPEOF of a string or binary column is not supported yet (its declared length is not kept)"
        );
    }
    let mut name = crate::catalog_listing::flink_type(field.data_type());
    if !field.is_nullable() {
        name.push_str(" NOT NULL");
    }
    Ok(Expr::Literal(ScalarValue::Utf8(Some(name)), None))
}

/// The type Flink gives a number or BOOLEAN literal (a string literal is
/// Flink's CHAR(n), which Runnel does not keep).
fn literal_type(expr: &Expr) -> Option<String> {
    let literal = match expr {
        Expr::Negative(inner) => inner.as_ref(),
        other => other,
    };
    let name = match literal {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => match i32::try_from(*v) {
            Ok(_) => "INT".to_string(),
            Err(_) => "BIGINT".to_string(),
        },
        Expr::Literal(ScalarValue::Int32(Some(_)), _) => "INT".to_string(),
        Expr::Literal(ScalarValue::Boolean(Some(_)), _) => "BOOLEAN".to_string(),
        Expr::Literal(ScalarValue::Decimal128(Some(_), precision, scale), _) => {
            format!("DECIMAL({precision}, {scale})")
        }
        // A literal with leading zeros, written with Flink's type.
        Expr::Cast(datafusion::logical_expr::Cast { expr, field })
            if matches!(
                expr.as_ref(),
                Expr::Literal(ScalarValue::Decimal128(Some(_), ..), _)
            ) =>
        {
            match field.data_type() {
                DataType::Decimal128(precision, scale) => {
                    format!("DECIMAL({precision}, {scale})")
                }
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(format!("{name} NOT NULL"))
}

/// `left / right` with a DECIMAL side, as Flink divides: exact numbers
/// give Flink's DECIMAL; a DOUBLE column makes it DOUBLE division in both.
fn decimal_division(
    left: Expr,
    right: Expr,
    schema: &DFSchema,
    divide: &Arc<ScalarUDF>,
) -> Result<Transformed<Expr>> {
    let exact = |e: &Expr| {
        e.get_type(schema)
            .is_ok_and(|t| decimal_divide::exact_type(&t).is_some())
    };
    if !(exact(&left) && exact(&right)) {
        return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr::new(
            Box::new(left),
            Operator::Divide,
            Box::new(right),
        ))));
    }
    // Flink's quotient of two NOT NULL operands is NOT NULL, so one too
    // wide for its type fails the job rather than being NULL.
    let not_null = !left.nullable(schema)? && !right.nullable(schema)?;
    Ok(Transformed::yes(divide.call(vec![
        flink_int_literal(left),
        flink_int_literal(right),
        datafusion::prelude::lit(not_null),
    ])))
}

/// An integer literal (or its negation) that Flink types INT: one that
/// fits an INT.
fn is_int_literal(expr: &Expr) -> bool {
    let literal = match expr {
        Expr::Negative(inner) => inner.as_ref(),
        other => other,
    };
    matches!(literal, Expr::Literal(ScalarValue::Int64(Some(v)), _) if i32::try_from(*v).is_ok())
}

/// An integer literal as Flink types it: INT when it fits one (DataFusion
/// makes every integer literal a BIGINT).
fn flink_int_literal(expr: Expr) -> Expr {
    match expr {
        Expr::Literal(ScalarValue::Int64(Some(v)), metadata) if i32::try_from(v).is_ok() => {
            Expr::Literal(ScalarValue::Int32(i32::try_from(v).ok()), metadata)
        }
        Expr::Negative(inner) => match *inner {
            Expr::Literal(ScalarValue::Int64(Some(v)), metadata) if i32::try_from(v).is_ok() => {
                Expr::Negative(Box::new(Expr::Literal(
                    ScalarValue::Int32(i32::try_from(v).ok()),
                    metadata,
                )))
            }
            other => Expr::Negative(Box::new(other)),
        },
        other => other,
    }
}

/// Whether `literal` is an integer literal that fits an INT and `other` an
/// INT (or narrower) expression.
/// Flink types an integer literal INT where it fits, DataFusion BIGINT;
/// PRINTF's %c, %o and %x print an Integer and a Long differently, so its
/// literals are narrowed, and a BIGINT expression Flink may type INT is
/// refused under those conversions.
fn printf_call(
    func: Arc<ScalarUDF>,
    args: Vec<Expr>,
    schema: &DFSchema,
) -> Result<Transformed<Expr>> {
    let mut changed = false;
    let narrow = |v: Option<i64>| v.and_then(|v| i32::try_from(v).ok());
    let args: Vec<Expr> = args
        .into_iter()
        .enumerate()
        .map(|(at, arg)| match arg {
            Expr::Literal(ScalarValue::Int64(v), metadata) if at > 0 && narrow(v).is_some() => {
                changed = true;
                Expr::Literal(ScalarValue::Int32(narrow(v)), metadata)
            }
            Expr::Negative(inner) if at > 0 => match *inner {
                Expr::Literal(ScalarValue::Int64(v), metadata)
                    if narrow(v.and_then(i64::checked_neg)).is_some() =>
                {
                    changed = true;
                    Expr::Literal(
                        ScalarValue::Int32(narrow(v.and_then(i64::checked_neg))),
                        metadata,
                    )
                }
                other => Expr::Negative(Box::new(other)),
            },
            other => other,
        })
        .collect();
    let format = match args.first() {
        Some(Expr::Literal(value, _)) => Some(value),
        _ => None,
    };
    let class_matters = printf::check(format, &[]).is_ok_and(|f| f.depends_on_integer_class());
    for arg in args.iter().skip(1) {
        if !printf_class_known(arg, schema, class_matters)? {
            return plan_err!(
                "PRINTF of this {} expression is not supported: Flink may type it otherwise (a DECIMAL for a DOUBLE, an INT for a BIGINT), which Java prints otherwise",
                arg.get_type(schema)?
            );
        }
    }
    let call = Expr::ScalarFunction(ScalarFunction::new_udf(func, args));
    Ok(if changed {
        Transformed::yes(call)
    } else {
        Transformed::no(call)
    })
}

/// Whether a PRINTF argument has the Java class Flink would hand over:
/// a column, a literal or a cast has its declared type; a DOUBLE computed
/// from a DOUBLE column is one in Flink too; integers print alike as
/// Integer and Long but under %c, %o and %x (`class_matters`).
fn printf_class_known(arg: &Expr, schema: &DFSchema, class_matters: bool) -> Result<bool> {
    if matches!(
        arg,
        Expr::Column(_) | Expr::Literal(..) | Expr::Cast(_) | Expr::TryCast(_)
    ) {
        return Ok(true);
    }
    Ok(match arg.get_type(schema)? {
        DataType::Float32 | DataType::Float64 => double_in_flink(arg, schema),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => !class_matters,
        DataType::Decimal128(..) => false,
        _ => true,
    })
}

/// Arithmetic with a DOUBLE column (or cast) is DOUBLE in Flink whatever
/// the other side; anything else may be a DECIMAL there.
fn double_in_flink(expr: &Expr, schema: &DFSchema) -> bool {
    let floating = || {
        matches!(
            expr.get_type(schema),
            Ok(DataType::Float32 | DataType::Float64)
        )
    };
    match expr {
        Expr::Column(_) | Expr::Cast(_) | Expr::TryCast(_) => floating(),
        Expr::Negative(inner) => double_in_flink(inner, schema),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide,
            right,
        }) => double_in_flink(left, schema) || double_in_flink(right, schema),
        _ => false,
    }
}

fn int_literal_beside_int(literal: &Expr, other: &Expr, schema: &DFSchema) -> bool {
    is_int_literal(literal)
        && matches!(
            other.get_type(schema),
            Ok(DataType::Int32 | DataType::Int16 | DataType::Int8)
        )
}
