//! Flink's TIME: a time of day, a TIME(0) in seconds and a TIME(3) in
//! milliseconds (`front::types::time`). Casts to it from text (Flink's
//! lenient `H:m:s`), from a TIMESTAMP (its time of day) and from another
//! TIME; casts from it to text (`HH:mm:ss` with the fraction its precision
//! shows) and to a TIMESTAMP (on 1970-01-01); `TIME ± INTERVAL`, which
//! wraps around midnight and ignores months, as Flink's does; the fields
//! HOUR to MILLISECOND; and `CURRENT_TIME`/`LOCALTIME`. Anything else with
//! a TIME (a DATE or a number cast to TIME, the JSON functions, DAY of a
//! TIME) is refused when planned, as Flink refuses it.

use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable, ScalarUDF, Signature, Volatility, lit};
use runnel_timefmt::time_of_day::{self as text_form, MILLIS_PER_DAY};

use super::row_fn::{RowFn, text};
use crate::front::types::time_precision;

/// The milliseconds of the day a TIME value holds.
fn millis(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Time32Second(v) => v.map(|s| i64::from(s) * 1000),
        ScalarValue::Time32Millisecond(v) => v.map(i64::from),
        _ => None,
    }
}

/// A TIME in `unit` of `millis` (of any day: wrapped to one), a fraction
/// finer than the unit cut off.
fn time_value(millis: Option<i64>, unit: TimeUnit) -> ScalarValue {
    let of_day = millis.map(|m| m.rem_euclid(MILLIS_PER_DAY));
    match unit {
        TimeUnit::Second => ScalarValue::Time32Second(of_day.map(|m| (m / 1000) as i32)),
        _ => ScalarValue::Time32Millisecond(of_day.map(|m| m as i32)),
    }
}

fn unit_of(value: &ScalarValue) -> TimeUnit {
    match value {
        ScalarValue::Time32Second(_) => TimeUnit::Second,
        _ => TimeUnit::Millisecond,
    }
}

pub fn is_time(t: &DataType) -> bool {
    matches!(t, DataType::Time32(_))
}

/// `CAST(expr AS TIME(p))` (`TRY_CAST` when not `strict`), `target` being
/// TIME(p)'s Arrow type; `None` for a cast DataFusion does as Flink does
/// (from another TIME, from NULL).
pub fn cast_to_time(
    expr: Expr,
    target: &DataType,
    strict: bool,
    schema: &DFSchema,
) -> Result<Option<Expr>> {
    let source = expr.get_type(schema)?;
    let typed_null = ScalarValue::try_from(target)?;
    Ok(Some(match source {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            from_text().call(vec![expr, lit(strict), lit(typed_null)])
        }
        DataType::Timestamp(_, _) => of_timestamp().call(vec![expr, lit(typed_null)]),
        DataType::Time32(_) | DataType::Null => return Ok(None),
        other => {
            return plan_err!(
                "Cast function cannot convert value of type {} to type {}",
                crate::catalog_listing::flink_type(&other),
                crate::catalog_listing::flink_type(target)
            );
        }
    }))
}

/// `CAST(t AS STRING)` of a TIME.
pub fn as_text(expr: Expr) -> Expr {
    to_text().call(vec![expr])
}

/// `CAST(t AS TIMESTAMP(p))` of a TIME: the time on 1970-01-01, as a
/// TIMESTAMP(3) DataFusion then casts to `target`.
pub fn to_timestamp(expr: Expr, target: &DataType) -> Result<Expr> {
    let on_epoch_day = on_epoch_day().call(vec![expr]);
    Ok(
        if matches!(target, DataType::Timestamp(TimeUnit::Millisecond, None)) {
            on_epoch_day
        } else {
            Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(on_epoch_day),
                target.clone(),
            ))
        },
    )
}

/// `time + interval` (`minus`: `time - interval`), in the TIME's type.
pub fn plus_interval(time: Expr, interval: Expr, minus: bool) -> Expr {
    plus().call(vec![time, interval, lit(minus)])
}

/// Whether `t` is an interval a TIME can move by.
pub fn is_interval(t: &DataType) -> bool {
    matches!(t, DataType::Interval(_))
}

/// A TIME(0) compared with a TIME(3) is compared in milliseconds, as
/// Flink compares them; DataFusion has no common type for the two units.
/// Done as the comparison is planned, before DataFusion types it.
#[derive(Debug)]
pub struct MixedPrecisionComparisons;

impl ExprPlanner for MixedPrecisionComparisons {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        use datafusion::sql::sqlparser::ast::BinaryOperator as Op;
        let comparison = matches!(
            expr.op,
            Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq
        );
        let mixed = matches!(
            (expr.left.get_type(schema), expr.right.get_type(schema)),
            (Ok(DataType::Time32(a)), Ok(DataType::Time32(b))) if a != b
        );
        if !(comparison && mixed) {
            return Ok(PlannerResult::Original(expr));
        }
        let millis = DataType::Time32(TimeUnit::Millisecond);
        Ok(PlannerResult::Original(RawBinaryExpr {
            op: expr.op,
            left: expr.left.cast_to(&millis, schema)?,
            right: expr.right.cast_to(&millis, schema)?,
        }))
    }
}

/// `EXTRACT(unit FROM t)`, `HOUR(t)`, ... of a TIME: the same of the time
/// on 1970-01-01, for the units a time has.
pub fn field(unit: &str, time: Expr) -> Result<Expr> {
    let unit = unit.to_ascii_uppercase();
    if !matches!(
        unit.as_str(),
        "HOUR" | "MINUTE" | "SECOND" | "MILLISECOND" | "MICROSECOND" | "NANOSECOND"
    ) {
        return plan_err!("unit {unit} can not be applied to time variable");
    }
    Ok(super::temporal::extract().call(vec![lit(unit), on_epoch_day().call(vec![time])]))
}

/// `CURRENT_TIME` and `LOCALTIME`: the wall clock's time of day in the
/// session time zone (UTC), a TIME(0), per row.
pub fn current_time() -> ScalarUDF {
    RowFn::udf(
        "flink_current_time",
        Signature::exact(vec![], Volatility::Volatile),
        |_| Ok(DataType::Time32(TimeUnit::Second)),
        |_, _| {
            Ok(time_value(
                Some(runnel_engine::time::wall_clock_millis()),
                TimeUnit::Second,
            ))
        },
    )
}

/// Arguments: the text, whether a failure fails the job (CAST) or is NULL
/// (TRY_CAST), and a NULL of the TIME type.
fn from_text() -> ScalarUDF {
    RowFn::udf(
        "flink_text_to_time",
        Signature::any(3, Volatility::Immutable),
        |args| Ok(args[2].clone()),
        |args, _| {
            let unit = unit_of(&args[2]);
            let Some(value) = text(&args[0]) else {
                return Ok(time_value(None, unit));
            };
            match text_form::parse_cast(value) {
                Some(millis) => Ok(time_value(Some(millis), unit)),
                None if matches!(args[1], ScalarValue::Boolean(Some(true))) => exec_err!(
                    "Invalid time format: '{value}'. Expected format: HH:mm:ss[.fff] \
                     where HH is 00-23, mm is 00-59, ss is 00-59"
                ),
                None => Ok(time_value(None, unit)),
            }
        },
    )
}

/// Arguments: a TIMESTAMP (either kind: a TIMESTAMP_LTZ's time of day is
/// in the session time zone, UTC) and a NULL of the TIME type.
fn of_timestamp() -> ScalarUDF {
    RowFn::udf(
        "flink_time_of_timestamp",
        Signature::any(2, Volatility::Immutable),
        |args| Ok(args[1].clone()),
        |args, _| {
            let millis = match &args[0] {
                ScalarValue::TimestampSecond(v, _) => v.map(|v| v.saturating_mul(1000)),
                ScalarValue::TimestampMillisecond(v, _) => *v,
                ScalarValue::TimestampMicrosecond(v, _) => v.map(|v| v.div_euclid(1000)),
                ScalarValue::TimestampNanosecond(v, _) => v.map(|v| v.div_euclid(1_000_000)),
                _ => None,
            };
            Ok(time_value(millis, unit_of(&args[1])))
        },
    )
}

fn to_text() -> ScalarUDF {
    RowFn::udf(
        "flink_time_text",
        Signature::any(1, Volatility::Immutable),
        |_| Ok(DataType::Utf8),
        |args, _| {
            let precision = time_precision(&unit_of(&args[0]));
            Ok(ScalarValue::Utf8(
                millis(&args[0]).map(|m| text_form::cast_text(m, precision)),
            ))
        },
    )
}

fn on_epoch_day() -> ScalarUDF {
    RowFn::udf(
        "flink_time_on_epoch_day",
        Signature::any(1, Volatility::Immutable),
        |_| Ok(DataType::Timestamp(TimeUnit::Millisecond, None)),
        |args, _| Ok(ScalarValue::TimestampMillisecond(millis(&args[0]), None)),
    )
}

/// Arguments: the TIME, the interval and whether it is subtracted.
fn plus() -> ScalarUDF {
    RowFn::udf(
        "flink_time_plus_interval",
        Signature::any(3, Volatility::Immutable),
        |args| match &args[1] {
            DataType::Interval(
                IntervalUnit::DayTime | IntervalUnit::MonthDayNano | IntervalUnit::YearMonth,
            ) => Ok(args[0].clone()),
            other => plan_err!("a TIME moves by an INTERVAL, not {other}"),
        },
        |args, _| {
            let unit = unit_of(&args[0]);
            // Flink adds a day-time interval's milliseconds and ignores
            // months: a TIME has no month to move.
            let moved_by = match &args[1] {
                ScalarValue::IntervalDayTime(v) => {
                    v.map(|v| i64::from(v.days) * MILLIS_PER_DAY + i64::from(v.milliseconds))
                }
                ScalarValue::IntervalMonthDayNano(v) => v.map(|v| {
                    i64::from(v.days) * MILLIS_PER_DAY + v.nanoseconds.div_euclid(1_000_000)
                }),
                ScalarValue::IntervalYearMonth(v) => v.map(|_| 0),
                _ => None,
            };
            let minus = matches!(args[2], ScalarValue::Boolean(Some(true)));
            let moved = millis(&args[0]).zip(moved_by).map(|(time, by)| {
                let by = by.rem_euclid(MILLIS_PER_DAY);
                if minus { time - by } else { time + by }
            });
            Ok(time_value(moved, unit))
        },
    )
}
