//! Flink's temporal functions where DataFusion's differ: `EXTRACT` counts
//! days of the week from Sunday = 1 and gives whole numbers,
//! `FROM_UNIXTIME` is text, `TO_DATE`/`TO_TIMESTAMP` read Java patterns
//! and give NULL for text they cannot read, a TIMESTAMP as text has a
//! space before its time.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::row_fn::{RowFn, exact, integer, string, text};

const MILLIS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// A TIMESTAMP or DATE argument as a date-time (a date at midnight).
fn date_time(value: &ScalarValue) -> Option<NaiveDateTime> {
    let nanos = match value {
        ScalarValue::TimestampSecond(v, None) => v.and_then(|v| v.checked_mul(1_000_000_000)),
        ScalarValue::TimestampMillisecond(v, None) => v.and_then(|v| v.checked_mul(1_000_000)),
        ScalarValue::TimestampMicrosecond(v, None) => v.and_then(|v| v.checked_mul(1_000)),
        ScalarValue::TimestampNanosecond(v, None) => *v,
        ScalarValue::Date32(v) => v.and_then(|d| i64::from(d).checked_mul(86_400_000_000_000)),
        _ => None,
    }?;
    Some(chrono::DateTime::from_timestamp_nanos(nanos).naive_utc())
}

fn is_date_time(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, None) | DataType::Date32)
}

/// `EXTRACT(unit FROM t)` (DataFusion plans it as `date_part`). A
/// TIMESTAMP(3) column's HOUR, MINUTE, SECOND or MILLISECOND, the usual
/// calls (Nexmark q14 asks four per row), is computed over the column's
/// milliseconds at once; anything else row by row.
pub fn extract() -> ScalarUDF {
    ScalarUDF::from(Extract {
        by_row: extract_by_row(),
    })
}

#[derive(Debug)]
struct Extract {
    by_row: ScalarUDF,
}

impl PartialEq for Extract {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Extract {}

impl std::hash::Hash for Extract {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "date_part".hash(state);
    }
}

impl ScalarUDFImpl for Extract {
    fn name(&self) -> &str {
        "date_part"
    }

    fn signature(&self) -> &Signature {
        self.by_row.signature()
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.by_row.return_type(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [ColumnarValue::Scalar(unit), ColumnarValue::Array(times)] = args.args.as_slice()
            && let Some(times) = times.as_primitive_opt::<TimestampMillisecondType>()
            && times.timezone().is_none()
            && let Some(part) = text(unit).and_then(millisecond_part)
        {
            let parts: Int64Array = times.unary(part);
            return Ok(ColumnarValue::Array(Arc::new(parts)));
        }
        self.by_row.invoke_with_args(args)
    }
}

/// The part of a UTC millisecond timestamp `unit` names, for the units
/// read straight off the milliseconds.
fn millisecond_part(unit: &str) -> Option<fn(i64) -> i64> {
    Some(match unit.to_ascii_uppercase().as_str() {
        "HOUR" => |ms: i64| ms.div_euclid(3_600_000).rem_euclid(24),
        "MINUTE" => |ms: i64| ms.div_euclid(60_000).rem_euclid(60),
        "SECOND" => |ms: i64| ms.div_euclid(1_000).rem_euclid(60),
        "MILLISECOND" => |ms: i64| ms.rem_euclid(1_000),
        _ => return None,
    })
}

fn extract_by_row() -> ScalarUDF {
    RowFn::udf(
        "date_part",
        Signature::any(2, Volatility::Immutable),
        |args| match args {
            [unit, t]
                if super::is_text(unit) && (is_date_time(t) || super::time_of_day::is_time(t)) =>
            {
                Ok(DataType::Int64)
            }
            _ => plan_err!("EXTRACT takes a unit and a TIMESTAMP or DATE, not {args:?}"),
        },
        |args, _| {
            unrewritten_time(&args[1])?;
            let (Some(unit), Some(t)) = (text(&args[0]), date_time(&args[1])) else {
                return Ok(ScalarValue::Int64(None));
            };
            let value = match unit.to_ascii_uppercase().as_str() {
                "MILLENNIUM" => (i64::from(t.year()) + 999).div_euclid(1000),
                "CENTURY" => (i64::from(t.year()) + 99).div_euclid(100),
                "DECADE" => i64::from(t.year()).div_euclid(10),
                "YEAR" => i64::from(t.year()),
                "ISOYEAR" => i64::from(t.iso_week().year()),
                "QUARTER" => i64::from(t.month0() / 3 + 1),
                "MONTH" => i64::from(t.month()),
                "WEEK" => i64::from(t.iso_week().week()),
                "DOY" => i64::from(t.ordinal()),
                "DAY" => i64::from(t.day()),
                // Sunday is 1.
                "DOW" => i64::from(t.weekday().number_from_sunday()),
                "ISODOW" => i64::from(t.weekday().number_from_monday()),
                "HOUR" => i64::from(t.hour()),
                "MINUTE" => i64::from(t.minute()),
                "SECOND" => i64::from(t.second()),
                "MILLISECOND" => i64::from(t.nanosecond() / 1_000_000),
                "MICROSECOND" => i64::from(t.nanosecond() / 1_000),
                "NANOSECOND" => i64::from(t.nanosecond()),
                "EPOCH" => t.and_utc().timestamp(),
                other => return exec_err!("EXTRACT: unknown unit {other}"),
            };
            Ok(ScalarValue::Int64(Some(value)))
        },
    )
}

fn format(t: NaiveDateTime, pattern: &str) -> Result<String> {
    let items = crate::java_format::translate(pattern)
        .map_err(datafusion::error::DataFusionError::Execution)?;
    Ok(t.format_with_items(items.iter()).to_string())
}

/// `FROM_UNIXTIME(seconds [, pattern])`: text, `yyyy-MM-dd HH:mm:ss` by
/// default, in the session's time zone (UTC).
pub fn from_unixtime() -> ScalarUDF {
    RowFn::udf(
        "from_unixtime",
        exact(vec![
            vec![DataType::Int64],
            vec![DataType::Int64, DataType::Utf8],
        ]),
        |_| Ok(DataType::Utf8),
        |args, _| {
            let Some(seconds) = integer(&args[0]) else {
                return Ok(string(None));
            };
            let pattern = match args.get(1) {
                None => "yyyy-MM-dd HH:mm:ss",
                Some(p) => match text(p) {
                    Some(p) => p,
                    None => return Ok(string(None)),
                },
            };
            let Some(t) = chrono::DateTime::from_timestamp(seconds, 0) else {
                return Ok(string(None));
            };
            Ok(string(Some(format(t.naive_utc(), pattern)?)))
        },
    )
}

/// Reads `value` in a Java pattern; fields the pattern does not have are
/// the start of their unit (a date's time is midnight).
fn parse(value: &str, pattern: &str) -> Option<NaiveDateTime> {
    parse_with(value, pattern, false)
}

/// `parse`, or with `prefix` the pattern read from the text's start, the
/// rest ignored, as Java's `SimpleDateFormat.parse(String)` reads.
fn parse_with(value: &str, pattern: &str, prefix: bool) -> Option<NaiveDateTime> {
    use chrono::format::{Parsed, parse, parse_and_remainder};
    let items = crate::java_format::translate(pattern).ok()?;
    let mut parsed = Parsed::new();
    match prefix {
        true => parse_and_remainder(&mut parsed, value, items.iter())
            .map(drop)
            .ok()?,
        false => parse(&mut parsed, value, items.iter()).ok()?,
    }
    if parsed.hour_div_12().is_none() {
        parsed.set_hour(0).ok()?;
    }
    if parsed.minute().is_none() {
        parsed.set_minute(0).ok()?;
    }
    if parsed.second().is_none() {
        parsed.set_second(0).ok()?;
    }
    let date = parsed.to_naive_date().ok()?;
    Some(date.and_time(parsed.to_naive_time().ok()?))
}

/// Flink's default reading of a timestamp: `yyyy-MM-dd HH:mm:ss` with an
/// optional fraction, or a date alone.
fn parse_default(value: &str) -> Option<NaiveDateTime> {
    let value = value.trim();
    NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// Text read in its pattern; text the pattern does not read is read in
/// Flink's default form, as Flink falls back to it.
fn parsed_at(args: &[ScalarValue]) -> Option<NaiveDateTime> {
    let value = text(&args[0])?;
    match args.get(1) {
        None => parse_default(value),
        Some(pattern) => parse(value, text(pattern)?).or_else(|| parse_default(value)),
    }
}

/// `TO_TIMESTAMP(text [, pattern])`: NULL for text the pattern does not read.
pub fn to_timestamp() -> ScalarUDF {
    RowFn::udf(
        "to_timestamp",
        exact(vec![
            vec![DataType::Utf8],
            vec![DataType::Utf8, DataType::Utf8],
        ]),
        |_| Ok(MILLIS),
        |args, _| {
            Ok(ScalarValue::TimestampMillisecond(
                parsed_at(args).map(|t| t.and_utc().timestamp_millis()),
                None,
            ))
        },
    )
}

/// `TO_DATE(text [, pattern])`, `yyyy-MM-dd` by default.
pub fn to_date() -> ScalarUDF {
    RowFn::udf(
        "to_date",
        exact(vec![
            vec![DataType::Utf8],
            vec![DataType::Utf8, DataType::Utf8],
        ]),
        |_| Ok(DataType::Date32),
        |args, _| {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            Ok(ScalarValue::Date32(parsed_at(args).and_then(|t| {
                i32::try_from((t.date() - epoch).num_days()).ok()
            })))
        },
    )
}

/// A TIMESTAMP (or TIMESTAMP_LTZ, in the session zone) cast to text:
/// `yyyy-MM-dd HH:mm:ss` and the fraction its precision has (`.123` for
/// TIMESTAMP(3)).
pub fn timestamp_text() -> ScalarUDF {
    RowFn::udf(
        "flink_timestamp_text",
        Signature::any(1, Volatility::Immutable),
        |_| Ok(DataType::Utf8),
        |args, _| {
            // A TIMESTAMP_LTZ is written in the session time zone: UTC.
            let local = match &args[0] {
                ScalarValue::TimestampSecond(v, Some(_)) => ScalarValue::TimestampSecond(*v, None),
                ScalarValue::TimestampMillisecond(v, Some(_)) => {
                    ScalarValue::TimestampMillisecond(*v, None)
                }
                ScalarValue::TimestampMicrosecond(v, Some(_)) => {
                    ScalarValue::TimestampMicrosecond(*v, None)
                }
                ScalarValue::TimestampNanosecond(v, Some(_)) => {
                    ScalarValue::TimestampNanosecond(*v, None)
                }
                other => other.clone(),
            };
            Ok(string(date_time(&local).map(|t| {
                let digits = match &local {
                    ScalarValue::TimestampSecond(..) => 0,
                    ScalarValue::TimestampMillisecond(..) => 3,
                    ScalarValue::TimestampMicrosecond(..) => 6,
                    // A literal (`TIMESTAMP '2020-01-02 03:04:05'`) has as
                    // many digits as it was written with: whole groups of
                    // three are as near as its nanoseconds tell.
                    _ => match t.nanosecond() {
                        0 => 0,
                        n if n % 1_000_000 == 0 => 3,
                        n if n % 1_000 == 0 => 6,
                        _ => 9,
                    },
                };
                let mut text = t.format("%Y-%m-%d %H:%M:%S").to_string();
                if digits > 0 {
                    let fraction = format!("{:09}", t.nanosecond());
                    text.push('.');
                    text.push_str(&fraction[..digits]);
                }
                text
            })))
        },
    )
}

fn part_of<const PART: u8>(args: &[ScalarValue], _: &DataType) -> Result<ScalarValue> {
    unrewritten_time(&args[0])?;
    Ok(ScalarValue::Int64(date_time(&args[0]).map(|t| {
        i64::from(match PART {
            b'y' => t.year() as u32,
            b'q' => t.month0() / 3 + 1,
            b'M' => t.month(),
            b'w' => t.iso_week().week(),
            b'D' => t.ordinal(),
            b'd' => t.day(),
            b'W' => t.weekday().number_from_sunday(),
            b'h' => t.hour(),
            b'm' => t.minute(),
            _ => t.second(),
        })
    })))
}

fn part(name: &'static str, eval: super::row_fn::Eval) -> ScalarUDF {
    RowFn::udf(
        name,
        Signature::any(1, Volatility::Immutable),
        |args| match args.first() {
            Some(t) if is_date_time(t) => Ok(DataType::Int64),
            _ => plan_err!("a TIMESTAMP or DATE, not {args:?}"),
        },
        eval,
    )
}

/// A part a TIME has too: the planner takes a TIME's call to
/// `time_of_day::field` before it runs.
/// A TIME's fields are `time_of_day::field`'s, which the planner puts in
/// place of these calls; one that reaches here was missed, and a NULL
/// would be a wrong answer.
fn unrewritten_time(value: &ScalarValue) -> Result<()> {
    if matches!(
        value,
        ScalarValue::Time32Second(_) | ScalarValue::Time32Millisecond(_)
    ) {
        return exec_err!("a field of a TIME was not planned as one");
    }
    Ok(())
}

fn part_of_day(name: &'static str, eval: super::row_fn::Eval) -> ScalarUDF {
    RowFn::udf(
        name,
        Signature::any(1, Volatility::Immutable),
        |args| match args.first() {
            Some(t) if is_date_time(t) || super::time_of_day::is_time(t) => Ok(DataType::Int64),
            _ => plan_err!("a TIMESTAMP, DATE or TIME, not {args:?}"),
        },
        eval,
    )
}

/// `YEAR(t)`, `QUARTER(t)`, `MONTH(t)`, `WEEK(t)`, `DAYOFYEAR(t)`,
/// `DAYOFMONTH(t)`, `DAYOFWEEK(t)` (Sunday is 1), `HOUR(t)`, `MINUTE(t)`,
/// `SECOND(t)`.
pub fn parts() -> Vec<ScalarUDF> {
    vec![
        part("year", part_of::<b'y'>),
        part("quarter", part_of::<b'q'>),
        part("month", part_of::<b'M'>),
        part("week", part_of::<b'w'>),
        part("dayofyear", part_of::<b'D'>),
        part("dayofmonth", part_of::<b'd'>),
        part("dayofweek", part_of::<b'W'>),
        part_of_day("hour", part_of::<b'h'>),
        part_of_day("minute", part_of::<b'm'>),
        part_of_day("second", part_of::<b's'>),
    ]
}

fn millis(t: NaiveDateTime) -> ScalarValue {
    ScalarValue::TimestampMillisecond(Some(t.and_utc().timestamp_millis()), None)
}

/// `t` moved by `n` of `unit` (months clamp to the month's last day).
fn add(t: NaiveDateTime, unit: &str, n: i64) -> Option<NaiveDateTime> {
    let months = |m: i64| Some(add_months(t.date(), m)?.and_time(t.time()));
    let duration =
        |per: i64| t.checked_add_signed(chrono::TimeDelta::try_milliseconds(n.checked_mul(per)?)?);
    match unit {
        "MILLISECOND" | "FRAC_SECOND" => duration(1),
        "SECOND" => duration(1_000),
        "MINUTE" => duration(60_000),
        "HOUR" => duration(3_600_000),
        "DAY" => duration(86_400_000),
        "WEEK" => duration(7 * 86_400_000),
        "MONTH" => months(n),
        "QUARTER" => months(n.checked_mul(3)?),
        "YEAR" => months(n.checked_mul(12)?),
        _ => None,
    }
}

const UNITS: &str = "MILLISECOND, SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER or YEAR";

/// `TIMESTAMPADD(unit, n, t)` (the front quotes the unit).
pub fn timestampadd() -> ScalarUDF {
    RowFn::udf(
        "timestampadd",
        Signature::any(3, Volatility::Immutable),
        |args| match args {
            [u, n, t] if super::is_text(u) && n.is_integer() && is_date_time(t) => Ok(MILLIS),
            _ => plan_err!("TIMESTAMPADD takes a unit, an integer and a TIMESTAMP, not {args:?}"),
        },
        |args, _| {
            let (Some(unit), Some(n), Some(t)) =
                (text(&args[0]), integer(&args[1]), date_time(&args[2]))
            else {
                return Ok(ScalarValue::TimestampMillisecond(None, None));
            };
            match add(t, &unit.to_ascii_uppercase(), n) {
                Some(t) => Ok(millis(t)),
                None if !UNITS.contains(&unit.to_ascii_uppercase()) => {
                    exec_err!("TIMESTAMPADD: unit {unit} is not one of {UNITS}")
                }
                None => Ok(ScalarValue::TimestampMillisecond(None, None)),
            }
        },
    )
}

/// `TIMESTAMPDIFF(unit, t1, t2)`: whole units from `t1` to `t2`, cut
/// toward zero; months count only when the day and time are reached.
pub fn timestampdiff() -> ScalarUDF {
    RowFn::udf(
        "timestampdiff",
        Signature::any(3, Volatility::Immutable),
        |args| match args {
            [u, a, b] if super::is_text(u) && is_date_time(a) && is_date_time(b) => {
                Ok(DataType::Int32)
            }
            _ => plan_err!("TIMESTAMPDIFF takes a unit and two TIMESTAMPs, not {args:?}"),
        },
        |args, _| {
            let (Some(unit), Some(from), Some(to)) =
                (text(&args[0]), date_time(&args[1]), date_time(&args[2]))
            else {
                return Ok(ScalarValue::Int32(None));
            };
            let millis = (to - from).num_milliseconds();
            let months = || months_between(from, to);
            let value = match unit.to_ascii_uppercase().as_str() {
                "MILLISECOND" | "FRAC_SECOND" => millis,
                "SECOND" => millis / 1_000,
                "MINUTE" => millis / 60_000,
                "HOUR" => millis / 3_600_000,
                "DAY" => millis / 86_400_000,
                "WEEK" => millis / (7 * 86_400_000),
                "MONTH" => months(),
                "QUARTER" => months() / 3,
                "YEAR" => months() / 12,
                other => return exec_err!("TIMESTAMPDIFF: unit {other} is not one of {UNITS}"),
            };
            Ok(ScalarValue::Int32(i32::try_from(value).ok()))
        },
    )
}

/// Whole months from `from` to `to` as Flink counts them (Calcite's
/// `subtractMonths`): the most months `from`'s date can move (its day
/// clamped to a shorter month's last) without passing `to`'s date, one
/// less when that lands on `to`'s date at an earlier time of day. So
/// January 31 to February 29 is a month.
fn months_between(from: NaiveDateTime, to: NaiveDateTime) -> i64 {
    let mut months = date_months(from.date(), to.date());
    if add_months(from.date(), months) == Some(to.date()) && to.time() < from.time() {
        months -= 1;
    }
    months
}

fn date_months(from: NaiveDate, to: NaiveDate) -> i64 {
    if to < from {
        return -date_months(to, from);
    }
    // No month is longer than 31 days: the estimate is never too many.
    let mut months = (to - from).num_days() / 31;
    loop {
        match (add_months(from, months), add_months(from, months + 1)) {
            (Some(moved), _) if moved >= to => return months,
            (_, Some(next)) if next > to => return months,
            (_, None) => return months,
            _ => months += 1,
        }
    }
}

fn add_months(date: NaiveDate, months: i64) -> Option<NaiveDate> {
    let count = chrono::Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    if months >= 0 {
        date.checked_add_months(count)
    } else {
        date.checked_sub_months(count)
    }
}

/// The start of `t`'s `unit`.
fn floor_to(t: NaiveDateTime, unit: &str) -> Option<NaiveDateTime> {
    let date = t.date();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
    match unit {
        "MILLISECOND" => t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000),
        "SECOND" => t.with_nanosecond(0),
        "MINUTE" => t.with_nanosecond(0)?.with_second(0),
        "HOUR" => t.with_nanosecond(0)?.with_second(0)?.with_minute(0),
        "DAY" => midnight(date),
        "WEEK" => {
            midnight(date - chrono::Days::new(u64::from(date.weekday().num_days_from_sunday())))
        }
        "MONTH" => midnight(date.with_day(1)?),
        "QUARTER" => midnight(NaiveDate::from_ymd_opt(
            date.year(),
            date.month0() / 3 * 3 + 1,
            1,
        )?),
        "YEAR" => midnight(NaiveDate::from_ymd_opt(date.year(), 1, 1)?),
        _ => None,
    }
}

fn round_time<const UP: bool>(args: &[ScalarValue], _: &DataType) -> Result<ScalarValue> {
    let (Some(t), Some(unit)) = (date_time(&args[0]), text(&args[1])) else {
        return Ok(ScalarValue::TimestampMillisecond(None, None));
    };
    let unit = unit.to_ascii_uppercase();
    let Some(floor) = floor_to(t, &unit) else {
        return exec_err!("FLOOR and CEIL: unit {unit} is not one of {UNITS}");
    };
    if !UP || floor == t {
        return Ok(millis(floor));
    }
    Ok(add(floor, &unit, 1).map_or(ScalarValue::TimestampMillisecond(None, None), millis))
}

fn time_rounding(name: &'static str, eval: super::row_fn::Eval) -> ScalarUDF {
    RowFn::udf(
        name,
        Signature::any(2, Volatility::Immutable),
        |args| match args {
            [t, u] if is_date_time(t) && super::is_text(u) => Ok(MILLIS),
            _ => plan_err!("FLOOR/CEIL(t TO unit) takes a TIMESTAMP, not {args:?}"),
        },
        eval,
    )
}

/// `FLOOR(t TO unit)` and `CEIL(t TO unit)` (the front writes them as
/// `flink_floor_time(t, 'unit')`).
pub fn floor_time() -> ScalarUDF {
    time_rounding("flink_floor_time", round_time::<false>)
}

pub fn ceil_time() -> ScalarUDF {
    time_rounding("flink_ceil_time", round_time::<true>)
}

/// `UNIX_TIMESTAMP(text [, pattern])`: seconds since the epoch of text
/// read in the session time zone (UTC). Flink reads it with
/// `SimpleDateFormat`, which takes the pattern from the text's start and
/// ignores what follows (`2020-04-15 08:05:30.123` is read to the second).
pub fn unix_timestamp() -> ScalarUDF {
    RowFn::udf(
        "unix_timestamp",
        exact(vec![
            vec![DataType::Utf8],
            vec![DataType::Utf8, DataType::Utf8],
        ]),
        |_| Ok(DataType::Int64),
        |args, _| {
            let value = text(&args[0]);
            let at = match args.get(1) {
                None => value.and_then(|v| parse_with(v, "yyyy-MM-dd HH:mm:ss", true)),
                Some(pattern) => value
                    .zip(text(pattern))
                    .and_then(|(v, p)| parse_with(v, p, true)),
            };
            // Flink answers text it cannot read with Long.MIN_VALUE.
            Ok(ScalarValue::Int64(match (value, at) {
                (None, _) => None,
                (Some(_), Some(t)) => Some(t.and_utc().timestamp()),
                (Some(_), None) => Some(i64::MIN),
            }))
        },
    )
}

/// `CONVERT_TZ(text, from, to)`: a `yyyy-MM-dd HH:mm:ss` time in zone
/// `from` as the same instant's time in zone `to`.
pub fn convert_tz() -> ScalarUDF {
    RowFn::udf(
        "convert_tz",
        exact(vec![vec![DataType::Utf8, DataType::Utf8, DataType::Utf8]]),
        |_| Ok(DataType::Utf8),
        |args, _| {
            let (Some(value), Some(from), Some(to)) =
                (text(&args[0]), text(&args[1]), text(&args[2]))
            else {
                return Ok(string(None));
            };
            let zone = |name: &str| name.parse::<chrono_tz::Tz>();
            let (Ok(from), Ok(to)) = (zone(from), zone(to)) else {
                return exec_err!("CONVERT_TZ: unknown time zone '{from}' or '{to}'");
            };
            Ok(string(parse_default(value).and_then(|local| {
                local
                    .and_local_timezone(from)
                    .earliest()
                    .map(|t| t.with_timezone(&to).format("%Y-%m-%d %H:%M:%S").to_string())
            })))
        },
    )
}

/// `TO_TIMESTAMP_LTZ(n, precision)`: `n` seconds (precision 0) or
/// milliseconds (3) since the epoch, as an instant.
pub fn to_timestamp_ltz() -> ScalarUDF {
    RowFn::udf(
        "to_timestamp_ltz",
        exact(vec![vec![DataType::Int64, DataType::Int64]]),
        |_| {
            Ok(DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("UTC".into()),
            ))
        },
        |args, _| {
            let (Some(n), Some(precision)) = (integer(&args[0]), integer(&args[1])) else {
                return Ok(ScalarValue::TimestampMillisecond(None, Some("UTC".into())));
            };
            let millis = match precision {
                0 => n.checked_mul(1_000),
                3 => Some(n),
                other => return exec_err!("TO_TIMESTAMP_LTZ: precision {other} is not 0 or 3"),
            };
            Ok(ScalarValue::TimestampMillisecond(
                millis,
                Some("UTC".into()),
            ))
        },
    )
}

/// `TIMESTAMPADD` of a day or longer to a DATE is a DATE in Flink (of a
/// shorter unit, a TIMESTAMP); the function itself answers a TIMESTAMP, at
/// midnight for such a unit, which this casts.
pub fn timestampadd_typed(
    func: std::sync::Arc<ScalarUDF>,
    args: Vec<datafusion::logical_expr::Expr>,
    schema: &datafusion::common::DFSchema,
) -> Result<datafusion::common::tree_node::Transformed<datafusion::logical_expr::Expr>> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::logical_expr::{Expr, ExprSchemable, expr::ScalarFunction};
    let date_unit = match args.first() {
        Some(Expr::Literal(ScalarValue::Utf8(Some(unit)), _)) => matches!(
            unit.to_ascii_uppercase().as_str(),
            "DAY" | "WEEK" | "MONTH" | "QUARTER" | "YEAR"
        ),
        _ => false,
    };
    let of_date = args.get(2).map(|t| t.get_type(schema)).transpose()? == Some(DataType::Date32);
    let call = Expr::ScalarFunction(ScalarFunction::new_udf(func, args));
    Ok(match date_unit && of_date {
        true => Transformed::yes(call.cast_to(&DataType::Date32, schema)?),
        false => Transformed::no(call),
    })
}
