//! Flink's `/` of exact numbers when one is a DECIMAL: the result is a
//! DECIMAL whose scale is at least 6 (`LogicalTypeMerging
//! .findDivisionDecimalType`), and the value is Java's
//! `BigDecimal.divide` to 38 significant digits, then set to that scale,
//! both rounding half up; a value wider than the precision is NULL, and a
//! zero divisor fails the job, as in Flink.

use datafusion::arrow::datatypes::{DataType, i256};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::row_fn::{RowFn, integer};

/// Called with the dividend, the divisor and whether both are NOT NULL.
pub const NAME: &str = "flink_decimal_divide";

/// Flink's DECIMAL(precision, scale) of an exact number type.
pub fn exact_type(data_type: &DataType) -> Option<(u8, i8)> {
    match data_type {
        DataType::Int8 => Some((3, 0)),
        DataType::Int16 => Some((5, 0)),
        DataType::Int32 => Some((10, 0)),
        DataType::Int64 => Some((19, 0)),
        DataType::Decimal128(p, s) if *s >= 0 => Some((*p, *s)),
        _ => None,
    }
}

/// The quotient's type, as Flink types it.
pub fn result_type(dividend: (u8, i8), divisor: (u8, i8)) -> (u8, i8) {
    let (p1, s1) = (i32::from(dividend.0), i32::from(dividend.1));
    let (p2, s2) = (i32::from(divisor.0), i32::from(divisor.1));
    let scale = 6.max(s1 + p2 + 1);
    let precision = p1 - s1 + s2 + scale;
    if precision <= 38 {
        return (precision as u8, scale as i8);
    }
    let integer_digits = precision - scale;
    (38, (38 - integer_digits).max(scale.min(6)) as i8)
}

pub fn udf() -> ScalarUDF {
    RowFn::udf(
        NAME,
        Signature::any(3, Volatility::Immutable),
        |args| match args {
            [a, b, DataType::Boolean] => match (exact_type(a), exact_type(b)) {
                (Some(a), Some(b)) if divisor_digits(a, b) <= 75 => {
                    let (p, s) = result_type(a, b);
                    Ok(DataType::Decimal128(p, s))
                }
                (Some(_), Some(_)) => {
                    plan_err!("division of DECIMALs this wide is not supported yet")
                }
                _ => plan_err!("DECIMAL division takes exact numbers, not {args:?}"),
            },
            _ => plan_err!("DECIMAL division takes two numbers"),
        },
        |args, returns| {
            let DataType::Decimal128(precision, scale) = returns else {
                return exec_err!("DECIMAL division returns a DECIMAL, not {returns}");
            };
            let (Some(a), Some(b)) = (unscaled(&args[0]), unscaled(&args[1])) else {
                return Ok(ScalarValue::Decimal128(None, *precision, *scale));
            };
            let quotient = divide(a, b, *precision, *scale)?;
            if quotient.is_none() && args[2] == ScalarValue::Boolean(Some(true)) {
                return exec_err!(
                    "the quotient is NOT NULL, however, it is too wide for DECIMAL({precision}, {scale})"
                );
            }
            Ok(ScalarValue::Decimal128(quotient, *precision, *scale))
        },
    )
}

/// Digits the divisor has once both operands are integers: the long
/// division below multiplies its remainders by 10 in an i256.
fn divisor_digits(dividend: (u8, i8), divisor: (u8, i8)) -> i32 {
    i32::from(divisor.0) + (i32::from(dividend.1) - i32::from(divisor.1)).max(0)
}

/// A value and its scale.
fn unscaled(value: &ScalarValue) -> Option<(i128, i8)> {
    match value {
        ScalarValue::Decimal128(v, _, s) => v.map(|v| (v, *s)),
        other => integer(other).map(|v| (i128::from(v), 0)),
    }
}

/// `a / b` as Flink computes it, unscaled at `scale`; `None` when wider
/// than `precision`.
fn divide(
    (a, s1): (i128, i8),
    (b, s2): (i128, i8),
    precision: u8,
    scale: i8,
) -> Result<Option<i128>> {
    if b == 0 {
        return exec_err!("Division by zero");
    }
    let negative = (a < 0) != (b < 0);
    // a / 10^s1 divided by b / 10^s2 is (a * 10^s2) / (b * 10^s1); the
    // common powers of ten cancel.
    let common = s1.min(s2);
    let ten = i256::from_i128(10);
    let widen = |v: i128, power: i8| -> Result<i256> {
        let mut v = i256::from_i128(v.unsigned_abs() as i128);
        for _ in 0..(power - common) {
            v = match v.checked_mul(ten) {
                Some(v) => v,
                None => return exec_err!("DECIMAL division overflowed"),
            };
        }
        Ok(v)
    };
    let numerator = if a == i128::MIN {
        return exec_err!("DECIMAL division overflowed");
    } else {
        widen(a, s2)?
    };
    let denominator = widen(b, s1)?;
    let whole = numerator.wrapping_div(denominator);
    let mut remainder = numerator.wrapping_rem(denominator);
    // Digits of the exact quotient: the whole part, then the fraction.
    let mut digits: Vec<u8> = if whole == i256::ZERO {
        Vec::new()
    } else {
        whole.to_string().bytes().map(|b| b - b'0').collect()
    };
    // Wider than any DECIMAL: NULL whatever the rounding.
    if digits.len() > 38 {
        return Ok(None);
    }
    let point = digits.len();
    let wanted_after_point = usize::try_from(scale).unwrap_or(0) + 1;
    loop {
        let first_significant = digits.iter().position(|&d| d != 0);
        let enough_significant = first_significant.is_some_and(|f| digits.len() > f + 38);
        if remainder == i256::ZERO
            || (enough_significant && digits.len() >= point + wanted_after_point)
        {
            break;
        }
        remainder = match remainder.checked_mul(ten) {
            Some(r) => r,
            None => return exec_err!("DECIMAL division overflowed"),
        };
        let digit = remainder.wrapping_div(denominator);
        remainder = remainder.wrapping_rem(denominator);
        digits.push(digit.as_i128() as u8);
    }
    let mut point = point;
    // MathContext(38, HALF_UP): 38 significant digits.
    if let Some(first) = digits.iter().position(|&d| d != 0)
        && digits.len() > first + 38
    {
        round_half_up(&mut digits, &mut point, first + 38);
    }
    // setScale(scale, HALF_UP).
    let keep = point + usize::try_from(scale).unwrap_or(0);
    if digits.len() > keep {
        round_half_up(&mut digits, &mut point, keep);
    }
    let keep = point + usize::try_from(scale).unwrap_or(0);
    digits.resize(keep, 0);
    let significant = digits.iter().skip_while(|&&d| d == 0).count();
    if significant > usize::from(precision) {
        return Ok(None);
    }
    let mut value: i128 = 0;
    for digit in digits {
        value = value * 10 + i128::from(digit);
    }
    Ok(Some(if negative { -value } else { value }))
}

/// Keeps the first `keep` digits, rounded half up on the next one; a carry
/// out of the first digit adds a digit before the point.
fn round_half_up(digits: &mut Vec<u8>, point: &mut usize, keep: usize) {
    let up = digits.get(keep).is_some_and(|&d| d >= 5);
    digits.truncate(keep);
    if !up {
        return;
    }
    for digit in digits.iter_mut().rev() {
        if *digit == 9 {
            *digit = 0;
        } else {
            *digit += 1;
            return;
        }
    }
    digits.insert(0, 1);
    *point += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotient(a: (i128, i8), b: (i128, i8), p: u8, s: i8) -> Option<i128> {
        divide(a, b, p, s).unwrap()
    }

    #[test]
    fn types_are_flinks() {
        assert_eq!(result_type((10, 2), (10, 0)), (21, 13));
        assert_eq!(result_type((10, 2), (2, 1)), (15, 6));
        assert_eq!(result_type((10, 2), (10, 2)), (23, 13));
        assert_eq!(result_type((38, 18), (38, 18)), (38, 6));
        assert_eq!(result_type((10, 2), (38, 10)), (38, 20));
        assert_eq!(result_type((19, 0), (10, 2)), (32, 11));
    }

    #[test]
    fn values_are_flinks() {
        // 12.34 / 3 = 4.1133333333333
        assert_eq!(quotient((1234, 2), (3, 0), 21, 13), Some(41133333333333));
        // 7 / 12.34 = 0.56726094003
        assert_eq!(quotient((7, 0), (1234, 2), 23, 11), Some(56726094003));
        assert_eq!(quotient((-12, 0), (1234, 2), 32, 11), Some(-97244732577));
        // 2 / 3 rounds half up at the last place.
        assert_eq!(quotient((2, 0), (3, 0), 17, 6), Some(666667));
        assert_eq!(quotient((-2, 0), (3, 0), 17, 6), Some(-666667));
        assert_eq!(quotient((0, 2), (3, 0), 21, 13), Some(0));
        // Wider than the precision: NULL.
        assert_eq!(quotient((99, 0), (1, 2), 3, 0), None);
        assert!(divide((1, 0), (0, 0), 10, 6).is_err());
    }

    #[test]
    fn quotients_keep_38_significant_digits() {
        // 1/3 has 38 significant digits, then is cut at 37 places.
        let third = quotient((1, 0), (3, 0), 38, 37).unwrap();
        assert_eq!(third, 3333333333333333333333333333333333333);
    }
}
