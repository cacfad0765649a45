//! Java date-time patterns (`DateTimeFormatter`, as Flink's `DATE_FORMAT`
//! takes them: `'yyyy-MM-dd HH:mm:ss'`) in chrono's terms. A pattern letter
//! chrono cannot render as Java does is refused, naming it: a silently
//! different text would be worse.

use chrono::format::{Fixed, Item, Numeric, Pad};

pub mod time_of_day;

// Also Java's text of a double, as Flink prints one and casts one to text.

/// `pattern` as chrono items, or why it cannot be.
pub fn translate(pattern: &str) -> Result<Vec<Item<'static>>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // A quoted literal; '' is a quote.
            if chars.get(i + 1) == Some(&'\'') {
                items.push(Item::OwnedLiteral("'".into()));
                i += 2;
                continue;
            }
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("the pattern '{pattern}' has an unclosed quote")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
            items.push(Item::OwnedLiteral(text.into_boxed_str()));
            continue;
        }
        if !c.is_ascii_alphabetic() {
            items.push(Item::OwnedLiteral(c.to_string().into_boxed_str()));
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        i += run;
        let numeric = |n: Numeric, width: usize| {
            if width >= 2 {
                Item::Numeric(n, Pad::Zero)
            } else {
                Item::Numeric(n, Pad::None)
            }
        };
        let item = match (c, run) {
            ('y' | 'u', 2) => Item::Numeric(Numeric::YearMod100, Pad::Zero),
            ('y' | 'u', _) => Item::Numeric(Numeric::Year, Pad::Zero),
            ('M' | 'L', 1 | 2) => numeric(Numeric::Month, run),
            ('M' | 'L', 3) => Item::Fixed(Fixed::ShortMonthName),
            ('M' | 'L', 4) => Item::Fixed(Fixed::LongMonthName),
            ('d', 1 | 2) => numeric(Numeric::Day, run),
            ('D', 1) => Item::Numeric(Numeric::Ordinal, Pad::None),
            ('D', 3) => Item::Numeric(Numeric::Ordinal, Pad::Zero),
            ('H', 1 | 2) => numeric(Numeric::Hour, run),
            ('h', 1 | 2) => numeric(Numeric::Hour12, run),
            ('m', 1 | 2) => numeric(Numeric::Minute, run),
            ('s', 1 | 2) => numeric(Numeric::Second, run),
            ('S', 3 | 6 | 9) => fraction(run)?,
            ('a', 1) => Item::Fixed(Fixed::UpperAmPm),
            ('E', 1..=3) => Item::Fixed(Fixed::ShortWeekdayName),
            ('E', 4) => Item::Fixed(Fixed::LongWeekdayName),
            _ => {
                return Err(format!(
                    "the pattern letter '{}' of '{pattern}' is not supported by DATE_FORMAT here (supported: y, M, d, D, H, h, m, s, SSS, a, E and quoted text)",
                    std::iter::repeat_n(c, run).collect::<String>()
                ));
            }
        };
        items.push(item);
    }
    Ok(items)
}

/// `run` digits of the second's fraction: chrono names these items only
/// through its own pattern syntax.
fn fraction(run: usize) -> Result<Item<'static>, String> {
    chrono::format::StrftimeItems::new(&format!("%{run}f"))
        .parse_to_owned()
        .ok()
        .and_then(|items| items.into_iter().next())
        .ok_or_else(|| format!("no {run}-digit fraction"))
}

/// Java's `Double.toString`: `1.0`, `0.5`, and outside [10^-3, 10^7)
/// scientific notation, `1.0E10`, `1.5E-4`; the fewest digits that read
/// back as the same double.
pub fn java_double(v: f64) -> String {
    java_text(v, v)
}

/// Java's `BigDecimal.toString` of `unscaled` × 10^-`scale`, as Flink
/// prints a DECIMAL: plain (`2.340`, `-0.001`) unless the scale is
/// negative or the number is below 10^-6 in its last digit's place, then
/// scientific with the coefficient's every digit (`4.1133E-9`, `0E-13`).
pub fn java_decimal(unscaled: i128, scale: i8) -> String {
    let sign = if unscaled < 0 { "-" } else { "" };
    let digits = unscaled.unsigned_abs().to_string();
    let scale = i64::from(scale);
    let adjusted = digits.len() as i64 - 1 - scale;
    if scale >= 0 && adjusted >= -6 {
        let scale = scale as usize;
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        if digits.len() > scale {
            let (whole, fraction) = digits.split_at(digits.len() - scale);
            return format!("{sign}{whole}.{fraction}");
        }
        return format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()));
    }
    let (first, rest) = digits.split_at(1);
    let point = if rest.is_empty() { "" } else { "." };
    let exponent_sign = if adjusted >= 0 { "+" } else { "" };
    format!("{sign}{first}{point}{rest}E{exponent_sign}{adjusted}")
}

/// Java's `BigDecimal.valueOf(v).toString()` (the decimal of `v`'s
/// `Double.toString` digits), as Flink's JSON functions write a DOUBLE:
/// `2500000.0`, `0.0000025`, `1.5E+10`. `None` for NaN and the infinities,
/// which have no decimal.
pub fn java_big_decimal_of_double(v: f64) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let text = java_double(v);
    let (mantissa, exponent) = text.split_once('E').unwrap_or((&text, "0"));
    let exponent: i64 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let unscaled: i128 = format!("{whole}{fraction}").parse().ok()?;
    let scale = i8::try_from(fraction.len() as i64 - exponent).ok()?;
    Some(java_decimal(unscaled, scale))
}

/// Java's `Float.toString`: the same form, with the shortest digits of the
/// float itself, not of its widening to double.
pub fn java_float(v: f32) -> String {
    java_text(v, f64::from(v))
}

/// `v`'s digits in Java's form; `wide` is the same value as a double
/// (widening keeps NaN, infinities, sign and magnitude), for the checks.
fn java_text<T: std::fmt::Display + std::fmt::LowerExp>(v: T, wide: f64) -> String {
    if wide.is_nan() {
        return "NaN".to_string();
    }
    if wide.is_infinite() {
        return if wide > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if wide == 0.0 {
        return if wide.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_string();
    }
    if (1e-3..1e7).contains(&wide.abs()) {
        let text = format!("{v}");
        return if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        };
    }
    // Rust's `{:e}` is the shortest round-tripping mantissa: `1e10`, `1.5e-4`.
    let text = format!("{v:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_like_java_big_decimal() {
        assert_eq!(java_decimal(2340, 3), "2.340");
        assert_eq!(java_decimal(-25, 1), "-2.5");
        assert_eq!(java_decimal(-1, 3), "-0.001");
        assert_eq!(java_decimal(1, 6), "0.000001");
        assert_eq!(java_decimal(1, 7), "1E-7");
        assert_eq!(java_decimal(41133333333333, 22), "4.1133333333333E-9");
        assert_eq!(java_decimal(0, 13), "0E-13");
        assert_eq!(java_decimal(0, 2), "0.00");
        assert_eq!(java_decimal(12, -2), "1.2E+3");
        assert_eq!(java_decimal(1200, 0), "1200");
    }

    #[test]
    fn doubles_as_java_big_decimal_reads_their_text() {
        let text = |v: f64| java_big_decimal_of_double(v).unwrap();
        assert_eq!(text(2.5), "2.5");
        assert_eq!(text(2_500_000.0), "2500000.0");
        assert_eq!(text(2.5e-6), "0.0000025");
        assert_eq!(text(1.0e-5), "0.000010");
        assert_eq!(text(1.5e10), "1.5E+10");
        assert_eq!(text(1.0e-7), "1.0E-7");
        assert_eq!(text(-0.0), "0.0");
        assert_eq!(text(100.0), "100.0");
        assert_eq!(text(-12.25), "-12.25");
        assert_eq!(text(f64::from(0.1f32)), "0.10000000149011612");
        assert_eq!(java_big_decimal_of_double(f64::NAN), None);
    }

    fn format(pattern: &str, millis: i64) -> String {
        let items = translate(pattern).unwrap();
        chrono::DateTime::from_timestamp_millis(millis)
            .unwrap()
            .naive_utc()
            .format_with_items(items.iter())
            .to_string()
    }

    #[test]
    fn flinks_patterns_format_as_java_does() {
        // 2020-04-05 08:03:09.045, a Sunday.
        let t = 1_586_073_789_045;
        assert_eq!(format("yyyy-MM-dd", t), "2020-04-05");
        assert_eq!(
            format("yyyy-MM-dd HH:mm:ss.SSS", t),
            "2020-04-05 08:03:09.045"
        );
        assert_eq!(format("HH:mm", t), "08:03");
        assert_eq!(format("yy/M/d H:m:s", t), "20/4/5 8:3:9");
        assert_eq!(format("MMM MMMM EEE EEEE", t), "Apr April Sun Sunday");
        assert_eq!(format("hh a", t), "08 AM");
        assert_eq!(format("D DDD", t), "96 096");
        assert_eq!(format("'at' HH 'o''clock' ''", t), "at 08 o'clock '");
        assert_eq!(format("yyyyMMdd", t), "20200405");
    }

    #[test]
    fn letters_that_would_come_out_otherwise_are_refused() {
        for pattern in ["yyyy-MM-dd Z", "%Y-%m-%d", "SS", "ww", "'open"] {
            assert!(translate(pattern).is_err(), "{pattern}");
        }
    }
}
