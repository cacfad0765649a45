//! Flink's TIME values (milliseconds of the day) as text, both ways, in
//! each of the forms Flink uses: a value printed (Java's
//! `LocalTime.toString`), a CAST to STRING, a JSON or CSV field written,
//! and the text that each of CAST, a TIME literal, the JSON format and the
//! CSV format reads. They differ, and each is Flink 2.3's own.

pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// Java's `LocalTime.toString`: `12:13`, `12:13:14`, `12:13:14.500` (seconds
/// only when there is a second or a fraction; milliseconds in full).
pub fn java_local_time(millis: i64) -> String {
    let (hour, minute, second, milli) = fields(millis);
    let mut text = format!("{hour:02}:{minute:02}");
    if second != 0 || milli != 0 {
        text.push_str(&format!(":{second:02}"));
    }
    if milli != 0 {
        text.push_str(&format!(".{milli:03}"));
    }
    text
}

/// `CAST(t AS STRING)` of a TIME(`precision`): `HH:mm:ss`, and for a
/// precision above 0 the fraction without trailing zeros but with at
/// least one digit (`12:00:00.0`, `12:13:14.5`), as Flink gives it.
pub fn cast_text(millis: i64, precision: u8) -> String {
    let (hour, minute, second, milli) = fields(millis);
    let mut text = format!("{hour:02}:{minute:02}:{second:02}");
    if precision > 0 {
        let fraction = format!("{milli:03}");
        let kept = fraction.trim_end_matches('0');
        text.push('.');
        text.push_str(if kept.is_empty() { "0" } else { kept });
    }
    text
}

/// A TIME as Flink's JSON and CSV formats write it: `HH:mm:ss`, and a
/// fraction without trailing zeros only when there is one.
pub fn field_text(millis: i64) -> String {
    let (hour, minute, second, milli) = fields(millis);
    let mut text = format!("{hour:02}:{minute:02}:{second:02}");
    if milli != 0 {
        let fraction = format!("{milli:03}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text
}

/// Text as `CAST(s AS TIME)` reads it: surrounding spaces ignored, then
/// `H[H][:m[m][:s[s][.fraction]]]` with hours 0-23 and minutes and
/// seconds 0-59; a fraction rounded to milliseconds by its fourth digit.
/// `None` when it does not read.
pub fn parse_cast(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, ':');
    let hour = small_number(parts.next()?, 23)?;
    let minute = parts.next().map_or(Some(0), |m| small_number(m, 59))?;
    let (second, milli) = match parts.next() {
        None => (0, 0),
        Some(rest) => {
            let (second, fraction) = rest.split_once('.').unwrap_or((rest, ""));
            (small_number(second, 59)?, rounded_millis(fraction)?)
        }
    };
    // A fraction rounded up past the day's last millisecond is Flink's
    // "Hour out of range".
    Some(of(hour, minute, second, milli)).filter(|m| *m < MILLIS_PER_DAY)
}

/// Calcite's `parseFraction`: milliseconds, rounded up when the digit
/// after them is 5 or more (`.9996` is 1000).
fn rounded_millis(digits: &str) -> Option<i64> {
    let millis = fraction_millis(digits)?;
    let round_up = digits.as_bytes().get(3).is_some_and(|d| *d >= b'5');
    Some(millis + i64::from(round_up))
}

/// A TIME literal's text (`TIME '12:13:14.567'`): hours, minutes and
/// seconds all given, as Calcite requires; with the literal's precision,
/// the number of fraction digits.
pub fn parse_literal(text: &str) -> Option<(i64, usize)> {
    let mut parts = text.split(':');
    let hour = small_number(parts.next()?, 23)?;
    let minute = small_number(parts.next()?, 59)?;
    let rest = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let (second, fraction) = rest.split_once('.').unwrap_or((rest, ""));
    let millis = of(
        hour,
        minute,
        small_number(second, 59)?,
        fraction_millis(fraction)?,
    );
    Some((millis, fraction.len()))
}

/// A JSON field as Flink's JSON format reads a TIME: `HH:mm:ss` and an
/// optional fraction of up to nine digits, cut to milliseconds.
pub fn parse_json_field(text: &str) -> Option<i64> {
    let (clock, fraction) = text.split_once('.').unwrap_or((text, ""));
    if text.contains('.') && fraction.is_empty() || fraction.len() > 9 {
        return None;
    }
    let [hour, minute, second] = two_digit_fields(clock)?;
    Some(of(hour, minute, second, fraction_millis(fraction)?))
}

/// A CSV field as Flink's CSV format reads a TIME (Java's
/// `LocalTime.parse`): `HH:mm`, `HH:mm:ss` or `HH:mm:ss.f` (one to nine
/// digits), cut to milliseconds.
pub fn parse_csv_field(text: &str) -> Option<i64> {
    let (clock, fraction) = text.split_once('.').unwrap_or((text, ""));
    if text.contains('.') && (fraction.is_empty() || clock.len() != 8) || fraction.len() > 9 {
        return None;
    }
    let [hour, minute, second] = if clock.len() == 5 {
        let [hour, minute] = two_digit_fields(clock)?;
        [hour, minute, 0]
    } else {
        two_digit_fields(clock)?
    };
    Some(of(hour, minute, second, fraction_millis(fraction)?))
}

/// `N` colon-separated two-digit fields, hours first (0-23), then 0-59.
fn two_digit_fields<const N: usize>(text: &str) -> Option<[i64; N]> {
    let mut values = [0; N];
    let mut parts = text.split(':');
    for (i, value) in values.iter_mut().enumerate() {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *value = small_number(part, if i == 0 { 23 } else { 59 })?;
    }
    parts.next().is_none().then_some(values)
}

/// One or two ASCII digits, at most `max`.
fn small_number(text: &str, max: i64) -> Option<i64> {
    if text.is_empty() || text.len() > 2 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| *n <= max)
}

/// The milliseconds of a fraction's digits (any number of them, maybe
/// none), the rest cut off.
fn fraction_millis(digits: &str) -> Option<i64> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let first_three = format!("{:0<3}", &digits[..digits.len().min(3)]);
    first_three.parse().ok()
}

fn of(hour: i64, minute: i64, second: i64, milli: i64) -> i64 {
    ((hour * 60 + minute) * 60 + second) * 1000 + milli
}

fn fields(millis: i64) -> (i64, i64, i64, i64) {
    let millis = millis.rem_euclid(MILLIS_PER_DAY);
    let seconds = millis / 1000;
    (
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        millis % 1000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = ((12 * 60 + 13) * 60 + 14) * 1000;

    #[test]
    fn values_print_like_java_local_time() {
        assert_eq!(java_local_time(0), "00:00");
        assert_eq!(java_local_time(T), "12:13:14");
        assert_eq!(java_local_time(T + 500), "12:13:14.500");
        assert_eq!(java_local_time(12 * 3_600_000), "12:00");
    }

    #[test]
    fn casts_to_string_keep_the_precision() {
        assert_eq!(cast_text(T + 567, 0), "12:13:14");
        assert_eq!(cast_text(T + 500, 3), "12:13:14.5");
        assert_eq!(cast_text(T, 3), "12:13:14.0");
        assert_eq!(cast_text(0, 0), "00:00:00");
        assert_eq!(field_text(T), "12:13:14");
        assert_eq!(field_text(T + 900), "12:13:14.9");
    }

    #[test]
    fn casts_from_text_read_as_flink_does() {
        assert_eq!(parse_cast(" 12:13:14 "), Some(T));
        assert_eq!(parse_cast("1:2:3"), Some(((60 + 2) * 60 + 3) * 1000));
        assert_eq!(parse_cast("12"), Some(12 * 3_600_000));
        assert_eq!(parse_cast("12:13:14.1234"), Some(T + 123));
        assert_eq!(parse_cast("12:13:14.4567"), Some(T + 457));
        assert_eq!(parse_cast("23:59:59.9999"), None);
        assert_eq!(parse_cast("12:13:14."), Some(T));
        for bad in [
            "",
            "24:00:00",
            "12:60:00",
            "12:13:60",
            "x",
            "-1:00",
            "12:13:14.5x",
        ] {
            assert_eq!(parse_cast(bad), None, "{bad}");
        }
    }

    #[test]
    fn literals_need_every_field() {
        assert_eq!(parse_literal("12:13:14.567"), Some((T + 567, 3)));
        assert_eq!(parse_literal("1:2:3"), Some((3_723_000, 0)));
        assert_eq!(parse_literal("12:13"), None);
        assert_eq!(parse_literal("12:13:14:15"), None);
    }

    #[test]
    fn format_fields_read_as_flink_formats_do() {
        assert_eq!(parse_json_field("12:13:14.4567"), Some(T + 456));
        assert_eq!(parse_json_field("12:13"), None);
        assert_eq!(parse_json_field("1:02:03"), None);
        assert_eq!(parse_csv_field("12:13"), Some(T - 14_000));
        assert_eq!(parse_csv_field("12:13:14.5"), Some(T + 500));
        assert_eq!(parse_csv_field("1:2:3"), None);
        assert_eq!(parse_csv_field("12:13."), None);
    }
}
