//! Flink's numeric functions where DataFusion's differ: `LOG(x)` is the
//! natural logarithm, `POWER` is always a DOUBLE, `MOD` keeps its
//! arguments' type, `TRUNCATE` cuts toward zero at a number of digits,
//! `ABS` of an integer wraps as Java's does; a constant divided by zero
//! is refused at submit, where Flink's planner fails evaluating it.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, Operator, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, lit, when,
};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;

use super::row_fn::{RowFn, double, exact, integer};

fn double_result(_args: &[DataType]) -> Result<DataType> {
    Ok(DataType::Float64)
}

/// `LOG(x)`, the natural logarithm, and `LOG(base, x)`.
pub fn log() -> ScalarUDF {
    RowFn::udf(
        "log",
        exact(vec![
            vec![DataType::Float64],
            vec![DataType::Float64, DataType::Float64],
        ]),
        double_result,
        |args, _| {
            let values: Vec<Option<f64>> = args.iter().map(double).collect();
            Ok(ScalarValue::Float64(match values.as_slice() {
                [Some(x)] => Some(x.ln()),
                [Some(base), Some(x)] => Some(x.ln() / base.ln()),
                _ => None,
            }))
        },
    )
}

pub fn power() -> ScalarUDF {
    RowFn::udf(
        "power",
        exact(vec![vec![DataType::Float64, DataType::Float64]]),
        double_result,
        |args, _| {
            Ok(ScalarValue::Float64(
                match (args.first().and_then(double), args.get(1).and_then(double)) {
                    (Some(a), Some(b)) => Some(a.powf(b)),
                    _ => None,
                },
            ))
        },
    )
}

/// `MOD(a, b)`: planned here so that the name resolves, with the type of
/// `a % b`; the rewrite makes it that, whose sign (the dividend's) is
/// Flink's.
pub fn modulo() -> ScalarUDF {
    RowFn::udf(
        "mod",
        Signature::any(2, Volatility::Immutable),
        |args| match args {
            // Flink takes exact numbers only.
            [a, b]
                if (a.is_integer() || matches!(a, DataType::Decimal128(..)))
                    && (b.is_integer() || matches!(b, DataType::Decimal128(..))) =>
            {
                datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer::new(
                    a,
                    &datafusion::logical_expr::Operator::Modulo,
                    b,
                )
                .get_result_type()
            }
            _ => plan_err!("MOD takes two exact numbers (integers or DECIMALs), not {args:?}"),
        },
        |_, _| exec_err!("MOD runs as the % operator"),
    )
}

/// `TRUNCATE(x [, digits])`: `x` cut toward zero to `digits` places after
/// the point (before it when negative). A DECIMAL(p, s) becomes Flink's
/// `findRoundDecimalType`: the scale drops to the digits kept
/// (`TRUNCATE(2.345, 2)` is `2.34`, DECIMAL(4, 2)), so the digits must be
/// a literal; other numbers keep their type.
pub fn truncate() -> ScalarUDF {
    ScalarUDF::from(Truncate {
        row: RowFn::udf(
            "truncate",
            Signature::one_of(
                vec![
                    datafusion::logical_expr::TypeSignature::Any(1),
                    datafusion::logical_expr::TypeSignature::Any(2),
                ],
                Volatility::Immutable,
            ),
            |args| match args.first() {
                Some(t) if t.is_numeric() && args.get(1).is_none_or(DataType::is_integer) => {
                    Ok(t.clone())
                }
                _ => plan_err!("TRUNCATE takes a number and an integer, not {args:?}"),
            },
            truncate_row,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Truncate {
    row: ScalarUDF,
}

impl ScalarUDFImpl for Truncate {
    fn name(&self) -> &str {
        "truncate"
    }

    fn signature(&self) -> &Signature {
        self.row.signature()
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.row.return_type(args)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let returns = match (types.first(), args.scalar_arguments.get(1)) {
            (Some(DataType::Decimal128(precision, scale)), digits) => {
                let digits = match digits {
                    None => Some(0),
                    Some(Some(value)) => integer(value),
                    Some(None) => {
                        return plan_err!(
                            "TRUNCATE of a DECIMAL needs its number of digits as an integer literal: its result type depends on it"
                        );
                    }
                };
                match digits {
                    Some(digits) => truncated_type(*precision, *scale, digits),
                    // NULL digits: NULL, of the argument's type.
                    None => DataType::Decimal128(*precision, *scale),
                }
            }
            _ => self.row.return_type(&types)?,
        };
        Ok(Arc::new(Field::new(self.name(), returns, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.row.invoke_with_args(args)
    }
}

/// Flink's `LogicalTypeMerging.findRoundDecimalType`.
fn truncated_type(precision: u8, scale: i8, digits: i64) -> DataType {
    let (precision, scale) = (i64::from(precision), i64::from(scale.max(0)));
    let (p, s) = if digits >= scale {
        (precision, scale)
    } else if digits < 0 {
        (1 + precision - scale, 0)
    } else {
        (1 + precision - scale + digits, digits)
    };
    DataType::Decimal128(p.clamp(1, 38) as u8, s as i8)
}

fn truncate_row(args: &[ScalarValue], returns: &DataType) -> Result<ScalarValue> {
    let digits = match args.get(1) {
        None => 0,
        Some(d) => match integer(d) {
            Some(d) => d,
            None => return ScalarValue::try_from(returns),
        },
    };
    let digits = i32::try_from(digits.clamp(-38, 38)).unwrap_or(0);
    Ok(match (&args[0], returns) {
        (ScalarValue::Float64(v), _) => ScalarValue::Float64(v.map(|v| cut_double(v, digits))),
        (ScalarValue::Float32(v), _) => {
            ScalarValue::Float32(v.map(|v| cut_double(f64::from(v), digits) as f32))
        }
        (ScalarValue::Decimal128(v, _, scale), DataType::Decimal128(to_precision, to_scale)) => {
            let cut = i32::from(*scale) - digits;
            // The cut digits are zeros, so the narrower scale holds the
            // value exactly.
            let narrower = u32::try_from(i32::from(*scale) - i32::from(*to_scale)).unwrap_or(0);
            ScalarValue::Decimal128(
                v.map(|v| {
                    let cut = if cut <= 0 {
                        v
                    } else {
                        let unit = 10i128.checked_pow(cut as u32).unwrap_or(i128::MAX);
                        v / unit * unit
                    };
                    cut / 10i128.checked_pow(narrower).unwrap_or(i128::MAX)
                }),
                *to_precision,
                *to_scale,
            )
        }
        (other, _) => {
            let Some(v) = integer(other) else {
                return ScalarValue::try_from(other.data_type());
            };
            let cut = if digits >= 0 {
                v
            } else {
                let unit = 10i64.checked_pow(digits.unsigned_abs()).unwrap_or(i64::MAX);
                v / unit * unit
            };
            ScalarValue::Int64(Some(cut)).cast_to(&other.data_type())?
        }
    })
}

/// Cut in decimal, as Flink's BigDecimal does (`0.29` at two places stays
/// `0.29`, where `(0.29 * 100).trunc() / 100` gives `0.28`).
fn cut_double(v: f64, digits: i32) -> f64 {
    if !v.is_finite() {
        return v;
    }
    // Rust's shortest text that reads back as `v`, as Java's valueOf takes it.
    let text = format!("{v}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if digits >= 0 {
        let kept = &fraction[..fraction.len().min(digits as usize)];
        return format!("{whole}.{kept}0").parse().unwrap_or(v);
    }
    let (sign, magnitude) = whole.strip_prefix('-').map_or(("", whole), |m| ("-", m));
    let zeros = (digits.unsigned_abs() as usize).min(magnitude.len());
    let kept = &magnitude[..magnitude.len() - zeros];
    format!("{sign}{kept}{}", "0".repeat(zeros))
        .parse()
        .unwrap_or(0.0)
}

/// `SQRT(x)`: NaN below zero, as Java's `Math.sqrt`.
pub fn sqrt() -> ScalarUDF {
    RowFn::udf(
        "sqrt",
        exact(vec![vec![DataType::Float64]]),
        double_result,
        |args, _| Ok(ScalarValue::Float64(double(&args[0]).map(f64::sqrt))),
    )
}

/// `CEIL`, `FLOOR`: a DECIMAL(p, s) becomes a DECIMAL(p - s + 1, 0), as
/// Flink types it; other numbers keep their type.
fn to_whole<const UP: bool>(name: &'static str) -> ScalarUDF {
    RowFn::udf(
        name,
        Signature::any(1, Volatility::Immutable),
        |args| match args.first() {
            Some(DataType::Decimal128(p, s)) => {
                let s = (*s).max(0) as u8;
                Ok(DataType::Decimal128((p - s + 1).clamp(1, 38), 0))
            }
            Some(t) if t.is_numeric() => Ok(t.clone()),
            _ => plan_err!("CEIL and FLOOR take a number, not {args:?}"),
        },
        to_whole_row::<UP>,
    )
}

fn to_whole_row<const UP: bool>(args: &[ScalarValue], returns: &DataType) -> Result<ScalarValue> {
    Ok(match (&args[0], returns) {
        (ScalarValue::Decimal128(v, _, scale), DataType::Decimal128(p, s)) => {
            let unit = 10i128.pow(u32::from((*scale).max(0) as u8));
            ScalarValue::Decimal128(
                v.map(|v| {
                    let whole = v.div_euclid(unit);
                    if UP && v.rem_euclid(unit) != 0 {
                        whole + 1
                    } else {
                        whole
                    }
                }),
                *p,
                *s,
            )
        }
        (ScalarValue::Float64(v), _) => {
            ScalarValue::Float64(v.map(|v| if UP { v.ceil() } else { v.floor() }))
        }
        (ScalarValue::Float32(v), _) => {
            ScalarValue::Float32(v.map(|v| if UP { v.ceil() } else { v.floor() }))
        }
        (other, _) => other.clone(),
    })
}

pub fn ceil() -> ScalarUDF {
    to_whole::<true>("ceil")
}

pub fn ceiling() -> ScalarUDF {
    to_whole::<true>("ceiling")
}

pub fn floor() -> ScalarUDF {
    to_whole::<false>("floor")
}

/// `ROUND(x)` of a DECIMAL(p, s): half away from zero, a DECIMAL(p - s + 1,
/// 0) as Flink types it (DataFusion keeps the scale). Other forms are
/// DataFusion's, which answer as Flink's.
pub fn round_decimal() -> ScalarUDF {
    RowFn::udf(
        "flink_round_decimal",
        Signature::any(1, Volatility::Immutable),
        |args| match args.first() {
            Some(DataType::Decimal128(p, s)) => {
                let s = (*s).max(0) as u8;
                Ok(DataType::Decimal128((p - s + 1).clamp(1, 38), 0))
            }
            _ => plan_err!("a DECIMAL, not {args:?}"),
        },
        |args, returns| {
            Ok(match (&args[0], returns) {
                (ScalarValue::Decimal128(v, _, scale), DataType::Decimal128(p, s)) => {
                    let unit = 10i128.pow(u32::from((*scale).max(0) as u8));
                    ScalarValue::Decimal128(
                        v.map(|v| {
                            let whole = (v.abs() + unit / 2) / unit;
                            if v < 0 { -whole } else { whole }
                        }),
                        *p,
                        *s,
                    )
                }
                _ => ScalarValue::try_from(returns)?,
            })
        },
    )
}

/// `ABS` of a signed integer as Java's `Math.abs` gives it: the type's
/// most negative value is its own absolute value (the two's complement
/// wraps), where Arrow's `abs` fails the job.
pub fn wrapping_abs(
    func: Arc<ScalarUDF>,
    mut args: Vec<Expr>,
    schema: &DFSchema,
) -> Result<Transformed<Expr>> {
    let arg = args.remove(0);
    let most_negative = match arg.get_type(schema)? {
        DataType::Int8 => ScalarValue::Int8(Some(i8::MIN)),
        DataType::Int16 => ScalarValue::Int16(Some(i16::MIN)),
        DataType::Int32 => ScalarValue::Int32(Some(i32::MIN)),
        DataType::Int64 => ScalarValue::Int64(Some(i64::MIN)),
        _ => {
            return Ok(Transformed::no(Expr::ScalarFunction(
                ScalarFunction::new_udf(func, vec![arg]),
            )));
        }
    };
    let abs = Expr::ScalarFunction(ScalarFunction::new_udf(func, vec![arg.clone()]));
    Ok(Transformed::yes(
        when(arg.clone().eq(lit(most_negative)), arg).otherwise(abs)?,
    ))
}

/// An expression of no column and nothing volatile: Flink's planner
/// evaluates it once, at submit.
pub fn is_constant(expr: &Expr) -> bool {
    expr.column_refs().is_empty() && !expr.is_volatile()
}

/// The value of a constant expression, folded as a planner would.
pub fn constant_value(expr: &Expr) -> Option<ScalarValue> {
    if !is_constant(expr) {
        return None;
    }
    match ExprSimplifier::new(SimplifyContext::default()).simplify(expr.clone()) {
        Ok(Expr::Literal(value, _)) => Some(value),
        _ => None,
    }
}

/// A constant whose value is a numeric zero.
pub fn folds_to_zero(expr: &Expr) -> bool {
    match constant_value(expr) {
        Some(value) if !value.is_null() && value.data_type().is_numeric() => value
            .cast_to(&DataType::Float64)
            .is_ok_and(|v| matches!(v, ScalarValue::Float64(Some(z)) if z == 0.0)),
        _ => false,
    }
}

/// A constant FLOAT or DOUBLE computed by arithmetic, as Flink's planner
/// leaves it: it folds constants into decimal literals, so a DOUBLE zero
/// has no sign (`-0.0E0` is `0.0`); a FLOAT one it computes in 7 decimal
/// digits (`CAST(1 AS FLOAT) / 3` is `0.3333333`, where float division
/// gives `0.33333334`), which is refused rather than answered otherwise.
/// `None` when the expression is not such a constant.
pub fn constant_float_arithmetic(expr: &Expr, schema: &DFSchema) -> Result<Option<Expr>> {
    let arithmetic = match expr {
        Expr::Negative(_) => true,
        Expr::BinaryExpr(binary) => matches!(
            binary.op,
            Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
        ),
        _ => false,
    };
    if !arithmetic || !is_constant(expr) {
        return Ok(None);
    }
    match expr.get_type(schema)? {
        DataType::Float32 | DataType::Float16 => plan_err!(
            "FLOAT arithmetic on constants ({expr}) is refused: Flink's planner computes it in \
             seven decimal digits, not as FLOAT"
        ),
        // Folded with every operand a DOUBLE: before type coercion an
        // INT literal beside it would stop the fold.
        DataType::Float64 => Ok(match constant_value(&as_doubles(expr)) {
            Some(ScalarValue::Float64(Some(zero))) if zero == 0.0 && zero.is_sign_negative() => {
                Some(lit(0.0f64))
            }
            _ => None,
        }),
        _ => Ok(None),
    }
}

fn as_doubles(expr: &Expr) -> Expr {
    let double = |e: &Expr| {
        Expr::Cast(datafusion::logical_expr::Cast::new(
            Box::new(e.clone()),
            DataType::Float64,
        ))
    };
    match expr {
        Expr::BinaryExpr(b) => Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
            Box::new(double(&b.left)),
            b.op,
            Box::new(double(&b.right)),
        )),
        Expr::Negative(e) => Expr::Negative(Box::new(double(e))),
        other => other.clone(),
    }
}
