//! Timestamps spelled `YYYY-MM-DD[ T]HH:MM:SS[.f]`, read without chrono.

use datafusion::arrow::datatypes::TimeUnit;

use super::lines::{GiveBack, Step};

/// `YYYY-MM-DD HH:MM:SS[.f{1,9}]` (or with `T`) as a naive time in `unit`.
pub(super) fn timestamp(text: &[u8], unit: TimeUnit) -> Step<i64> {
    let number = |range: std::ops::Range<usize>| -> Step<i64> {
        let digits = text.get(range).ok_or(GiveBack)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            if d.is_ascii_digit() {
                Ok(acc * 10 + i64::from(d - b'0'))
            } else {
                Err(GiveBack)
            }
        })
    };
    if text.len() < 19
        || text[4] != b'-'
        || text[7] != b'-'
        || !matches!(text[10], b' ' | b'T')
        || text[13] != b':'
        || text[16] != b':'
    {
        return Err(GiveBack);
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(GiveBack);
    }
    let mut nanos = 0i64;
    if text.len() > 19 {
        let fraction = text.get(20..).ok_or(GiveBack)?;
        if text[19] != b'.' || fraction.is_empty() || fraction.len() > 9 {
            return Err(GiveBack);
        }
        nanos = number(20..text.len())? * 10i64.pow(9 - fraction.len() as u32);
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(match unit {
        TimeUnit::Second => seconds,
        TimeUnit::Millisecond => seconds * 1_000 + nanos / 1_000_000,
        TimeUnit::Microsecond => seconds * 1_000_000 + nanos / 1_000,
        TimeUnit::Nanosecond => seconds
            .checked_mul(1_000_000_000)
            .and_then(|s| s.checked_add(nanos))
            .ok_or(GiveBack)?,
    })
}

pub(super) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
