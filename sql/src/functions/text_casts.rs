//! Casts from text that Flink reads otherwise than Arrow: an integer
//! cuts a fraction off (`'12.7'` is 12; Arrow fails) and takes spaces
//! around it; a BOOLEAN
//! is one of `t true y yes 1` / `f false n no 0` in any case, nothing
//! around it (Arrow also takes `on`/`off` and trims); a TIMESTAMP is
//! `y-M-d` with, after one space, `H:m:s` and a fraction (Arrow also takes
//! a `T`, a zone, and refuses one-digit fields). Text that does not read
//! fails the job under CAST, as Flink's does, and is NULL under TRY_CAST.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{Expr, ScalarUDF, Signature, Volatility, lit};

use super::row_fn::{RowFn, text};

/// Whether casts from text to `target` are Flink's own here.
pub fn applies(target: &DataType) -> bool {
    matches!(
        target,
        DataType::Boolean
            | DataType::Timestamp(_, None)
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
    )
}

/// The cast of `expr` (text) to `target` (one `applies` takes), as
/// Flink's.
pub fn flink_cast(expr: Expr, target: &DataType, strict: bool) -> Result<Expr> {
    let function = match target {
        DataType::Boolean => boolean(),
        DataType::Timestamp(..) => timestamp(),
        _ => integer(),
    };
    let typed_null = ScalarValue::try_from(target)?;
    Ok(function.call(vec![expr, lit(strict), lit(typed_null)]))
}

/// Arguments: the text, whether a failure fails the job (CAST) or is NULL
/// (TRY_CAST), and a NULL of the result's type.
fn cast_udf(name: &'static str, eval: super::row_fn::Eval) -> ScalarUDF {
    RowFn::udf(
        name,
        Signature::any(3, Volatility::Immutable),
        |args| Ok(args[2].clone()),
        eval,
    )
}

fn boolean() -> ScalarUDF {
    cast_udf("flink_text_to_boolean", |args, _| {
        let Some(value) = text(&args[0]) else {
            return Ok(ScalarValue::Boolean(None));
        };
        let read = match value.to_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "1" => Some(true),
            "f" | "false" | "n" | "no" | "0" => Some(false),
            _ => None,
        };
        match read {
            None if strict(args) => exec_err!("Cannot parse '{value}' as BOOLEAN."),
            read => Ok(ScalarValue::Boolean(read)),
        }
    })
}

fn timestamp() -> ScalarUDF {
    cast_udf("flink_text_to_timestamp", |args, returns| {
        let DataType::Timestamp(unit, None) = returns else {
            return exec_err!("flink_text_to_timestamp returns a TIMESTAMP, not {returns}");
        };
        let Some(value) = text(&args[0]) else {
            return ScalarValue::try_from(returns);
        };
        match read_timestamp(value) {
            Some(at) => Ok(in_unit(at, *unit)),
            None if strict(args) => exec_err!(
                "Text '{value}' could not be parsed as a TIMESTAMP (yyyy-MM-dd[ HH:mm:ss[.fraction]])"
            ),
            None => ScalarValue::try_from(returns),
        }
    })
}

fn integer() -> ScalarUDF {
    cast_udf("flink_text_to_integer", |args, returns| {
        let Some(value) = text(&args[0]) else {
            return ScalarValue::try_from(returns);
        };
        let (min, max) = match returns {
            DataType::Int8 => (i64::from(i8::MIN), i64::from(i8::MAX)),
            DataType::Int16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
            DataType::Int32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
            _ => (i64::MIN, i64::MAX),
        };
        match read_integer(value).map(|n| n.filter(|n| (min..=max).contains(n))) {
            Ok(Some(n)) => ScalarValue::Int64(Some(n)).cast_to(returns),
            Err(why) if strict(args) => {
                exec_err!("For input string: '{value}'. {why}")
            }
            Ok(None) if strict(args) => exec_err!("For input string: '{value}'. Overflow."),
            _ => ScalarValue::try_from(returns),
        }
    })
}

/// Text as Flink reads an integer from it (`BinaryStringDataUtil.toLong`):
/// spaces around ignored, a sign, digits, and a fraction after a `.`
/// that is checked and cut off (`'12.7'` is 12, `'.5'` 0). `Ok(None)`
/// past a BIGINT; `Err` with Flink's reason when it does not read.
fn read_integer(text: &str) -> Result<Option<i64>, &'static str> {
    let text = text.trim_matches(' ');
    if text.is_empty() {
        return Err("Input is empty.");
    }
    let (negative, digits) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err("Input has only positive or negative symbol.");
    }
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) {
        return Err("Invalid character found.");
    }
    let mut n: i64 = 0;
    for digit in whole.bytes() {
        let d = i64::from(digit - b'0');
        // Accumulated negative, as Java's parse does, so MIN fits.
        n = match n.checked_mul(10).and_then(|n| n.checked_sub(d)) {
            Some(n) => n,
            None => return Ok(None),
        };
    }
    Ok(if negative { Some(n) } else { n.checked_neg() })
}

fn strict(args: &[ScalarValue]) -> bool {
    matches!(args[1], ScalarValue::Boolean(Some(true)))
}

/// `y-M-d[ H:m:s[.f]]`, each field of one or more digits (a fraction of
/// up to nine), as Flink's `DateTimeUtils` reads a timestamp.
fn read_timestamp(value: &str) -> Option<NaiveDateTime> {
    let (date, time) = match value.split_once(' ') {
        Some((date, time)) => (date, Some(time)),
        None => (value, None),
    };
    let [year, month, day] = three_numbers(date, '-')?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let Some(time) = time else {
        return Some(date.and_time(NaiveTime::MIN));
    };
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let [hour, minute, second] = three_numbers(clock, ':')?;
    let nanos = match fraction {
        None => 0,
        Some(digits) if (1..=9).contains(&digits.len()) => {
            number(digits)? * 10u32.pow(9 - digits.len() as u32)
        }
        Some(_) => return None,
    };
    Some(date.and_time(NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?))
}

/// Exactly three numbers separated by `separator`.
fn three_numbers(text: &str, separator: char) -> Option<[u32; 3]> {
    let mut fields = text.split(separator);
    let numbers = [
        number(fields.next()?)?,
        number(fields.next()?)?,
        number(fields.next()?)?,
    ];
    fields.next().is_none().then_some(numbers)
}

fn number(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The timestamp in `unit`, digits past it cut off (Flink cuts a
/// fraction to the type's precision).
fn in_unit(at: NaiveDateTime, unit: TimeUnit) -> ScalarValue {
    let utc = at.and_utc();
    let seconds = utc.timestamp();
    let nanos = i64::from(utc.timestamp_subsec_nanos());
    match unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(Some(seconds), None),
        TimeUnit::Millisecond => {
            ScalarValue::TimestampMillisecond(Some(seconds * 1000 + nanos / 1_000_000), None)
        }
        TimeUnit::Microsecond => {
            ScalarValue::TimestampMicrosecond(Some(seconds * 1_000_000 + nanos / 1000), None)
        }
        TimeUnit::Nanosecond => {
            ScalarValue::TimestampNanosecond(Some(seconds * 1_000_000_000 + nanos), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_flinks_do() {
        assert_eq!(read_integer(" 12 "), Ok(Some(12)));
        assert_eq!(read_integer("-0.9"), Ok(Some(0)));
        assert_eq!(read_integer(".5"), Ok(Some(0)));
        assert_eq!(read_integer("5."), Ok(Some(5)));
        assert_eq!(read_integer("-9223372036854775808"), Ok(Some(i64::MIN)));
        assert_eq!(read_integer("9223372036854775808"), Ok(None));
        assert_eq!(
            read_integer("-"),
            Err("Input has only positive or negative symbol.")
        );
        for bad in ["1e3", "1.5x", "- 1", "0x10", "1 2"] {
            assert_eq!(read_integer(bad), Err("Invalid character found."), "{bad}");
        }
    }

    #[test]
    fn timestamps_read_as_flinks_do() {
        let at = |s: &str| read_timestamp(s).map(|t| t.to_string());
        assert_eq!(at("2020-4-5 1:2:3").as_deref(), Some("2020-04-05 01:02:03"));
        assert_eq!(at("2020-04-15").as_deref(), Some("2020-04-15 00:00:00"));
        assert_eq!(
            at("2020-04-15 08:05:30.1239").as_deref(),
            Some("2020-04-15 08:05:30.123900")
        );
        for refused in [
            "2020-04-15T08:05:30",
            "2020-04-15 08:05:30Z",
            " 2020-04-15 08:05:30",
            "2020-04-15 08:05:30 ",
            "2020-04-15 08:05",
            "2020-13-01",
            "2020-04-15 08:05:30.",
            "2020-04-15 08:05:30.1234567891",
            "2020-04-15 +8:05:30",
        ] {
            assert_eq!(at(refused), None, "{refused}");
        }
        let before_1970 = read_timestamp("1969-12-31 23:59:59.9996").unwrap();
        assert_eq!(
            in_unit(before_1970, TimeUnit::Millisecond),
            ScalarValue::TimestampMillisecond(Some(-1), None)
        );
    }
}
