//! Flink's interval literals with two fields, `INTERVAL '1:30' HOUR TO
//! MINUTE` or `INTERVAL '1-2' YEAR TO MONTH`, which DataFusion's planner
//! does not take. Each becomes one DataFusion literal of the same length:
//! a number of months, or of milliseconds (Flink's day-time intervals are
//! milliseconds, so a fraction past them is cut, as Flink cuts it). A
//! literal Flink would refuse (`'1:70' HOUR TO MINUTE`, a leading field
//! wider than its precision) is refused here with Flink's reason.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

use super::tokens::{is_space, is_word, position};
use crate::error::SqlError;

const UNITS: [&str; 6] = ["YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND"];

pub fn rewrite(mut tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, SqlError> {
    let mut i = 0;
    while i < tokens.len() {
        if is_word(&tokens[i], "INTERVAL")
            && let Some((text_at, end, literal)) = two_fields(&tokens, i)?
        {
            let replacement = [
                tokens[i].clone(),
                TokenWithSpan {
                    token: Token::Whitespace(Whitespace::Space),
                    span: tokens[i].span,
                },
                TokenWithSpan {
                    token: Token::SingleQuotedString(literal),
                    span: tokens[text_at].span,
                },
            ];
            tokens.splice(i..=end, replacement);
        }
        i += 1;
    }
    Ok(tokens)
}

/// For `INTERVAL '<text>' <unit>[(<precision>)] TO <unit>` at `at`: the
/// text's index, the last token's index and DataFusion's literal text.
/// `None` for any other interval.
fn two_fields(
    tokens: &[TokenWithSpan],
    at: usize,
) -> Result<Option<(usize, usize, String)>, SqlError> {
    let solid: Vec<usize> = (at + 1..tokens.len())
        .filter(|&i| !is_space(&tokens[i]))
        .take(8)
        .collect();
    let token = |n: usize| solid.get(n).map(|&i| &tokens[i]);
    let Some(Token::SingleQuotedString(text)) = token(0).map(|t| &t.token) else {
        return Ok(None);
    };
    let Some(leading) = token(1).and_then(unit) else {
        return Ok(None);
    };
    let mut next = 2;
    let mut precision = 2;
    if token(next).is_some_and(|t| t.token == Token::LParen) {
        let digits = match token(next + 1).map(|t| &t.token) {
            Some(Token::Number(digits, _)) => digits.parse::<u32>().ok(),
            _ => None,
        };
        match (digits, token(next + 2).map(|t| &t.token)) {
            (Some(p), Some(Token::RParen)) if (1..=9).contains(&p) => precision = p,
            _ => return Ok(None),
        }
        next += 3;
    }
    if !token(next).is_some_and(|t| is_word(t, "TO")) {
        return Ok(None);
    }
    let at_position = position(&tokens[at]);
    let Some(trailing) = token(next + 1).and_then(unit) else {
        return Err(SqlError::at(
            "expected the interval's last field after TO",
            at_position,
        ));
    };
    let end = solid[next + 1];
    if token(next + 2).is_some_and(|t| t.token == Token::LParen) {
        return Err(SqlError::at(
            "a precision on an interval's last field is not supported yet",
            at_position,
        ));
    }
    let qualifier = format!("{} TO {}", UNITS[leading], UNITS[trailing]);
    let literal = value(text, leading, trailing, precision).map_err(|why| {
        SqlError::at(
            format!("Illegal interval literal '{text}' for INTERVAL {qualifier}: {why}"),
            at_position,
        )
    })?;
    Ok(Some((solid[0], end, literal)))
}

fn unit(token: &TokenWithSpan) -> Option<usize> {
    UNITS.iter().position(|u| is_word(token, u))
}

/// The literal's length as DataFusion's interval text, or why Flink
/// refuses it.
fn value(text: &str, leading: usize, trailing: usize, precision: u32) -> Result<String, String> {
    let (negative, body) = match text.trim().as_bytes().first() {
        Some(b'-') => (true, &text.trim()[1..]),
        Some(b'+') => (false, &text.trim()[1..]),
        _ => (false, text.trim()),
    };
    let (separators, limits): (&[char], &[u64]) = match (UNITS[leading], UNITS[trailing]) {
        ("YEAR", "MONTH") => (&['-'], &[11]),
        ("DAY", "HOUR") => (&[' '], &[23]),
        ("DAY", "MINUTE") => (&[' ', ':'], &[23, 59]),
        ("DAY", "SECOND") => (&[' ', ':', ':'], &[23, 59, 59]),
        ("HOUR", "MINUTE") => (&[':'], &[59]),
        ("HOUR", "SECOND") => (&[':', ':'], &[59, 59]),
        ("MINUTE", "SECOND") => (&[':'], &[59]),
        _ => return Err("not an interval qualifier Flink has".to_string()),
    };
    let format = || "not the format of this qualifier".to_string();
    let mut rest = body;
    let mut fields = Vec::new();
    for separator in separators {
        let (field, after) = rest.split_once(*separator).ok_or_else(format)?;
        fields.push(field);
        rest = after;
    }
    let (last, fraction) = match rest.split_once('.') {
        Some((last, fraction)) if UNITS[trailing] == "SECOND" => (last, Some(fraction)),
        Some(_) => return Err(format()),
        None => (rest, None),
    };
    fields.push(last);
    let numbers = fields
        .iter()
        .enumerate()
        .map(|(n, field)| {
            let width_ok = if n == 0 {
                !field.is_empty()
            } else {
                (1..=2).contains(&field.len())
            };
            if !width_ok || !field.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format());
            }
            field.parse::<u64>().map_err(|_| format())
        })
        .collect::<Result<Vec<u64>, String>>()?;
    if numbers[0] >= 10u64.pow(precision) {
        return Err(format!(
            "field value {} exceeds precision of {}({precision}) field",
            numbers[0], UNITS[leading]
        ));
    }
    if numbers[1..].iter().zip(limits).any(|(n, limit)| n > limit) {
        return Err(format());
    }
    let sign = if negative { "-" } else { "" };
    if UNITS[leading] == "YEAR" {
        return Ok(format!("{sign}{} months", numbers[0] * 12 + numbers[1]));
    }
    let millis_per = [86_400_000u64, 3_600_000, 60_000, 1_000];
    let first = ["DAY", "HOUR", "MINUTE", "SECOND"]
        .iter()
        .position(|u| *u == UNITS[leading])
        .ok_or_else(format)?;
    let mut millis = numbers
        .iter()
        .zip(&millis_per[first..])
        .map(|(n, per)| n * per)
        .sum::<u64>();
    if let Some(fraction) = fraction {
        if !(1..=6).contains(&fraction.len()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format());
        }
        let digits = format!("{fraction:0<3}");
        millis += digits[..3].parse::<u64>().map_err(|_| format())?;
    }
    // DataFusion keeps the length in nanoseconds, in an i64.
    if millis > (i64::MAX as u64) / 1_000_000 {
        return Err("too long".to_string());
    }
    Ok(format!("{sign}{millis} milliseconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str, leading: &str, trailing: &str) -> Result<String, String> {
        let index = |u: &str| UNITS.iter().position(|x| *x == u).unwrap();
        value(text, index(leading), index(trailing), 2)
    }

    #[test]
    fn lengths_are_flinks() {
        assert_eq!(
            of("1:30", "HOUR", "MINUTE").unwrap(),
            "5400000 milliseconds"
        );
        assert_eq!(
            of("-1:30", "HOUR", "MINUTE").unwrap(),
            "-5400000 milliseconds"
        );
        assert_eq!(
            of(" +1:5 ", "HOUR", "MINUTE").unwrap(),
            "3900000 milliseconds"
        );
        assert_eq!(of("1-2", "YEAR", "MONTH").unwrap(), "14 months");
        assert_eq!(
            of("1 2:3:4.5", "DAY", "SECOND").unwrap(),
            "93784500 milliseconds"
        );
        assert_eq!(
            of("3:04.1239", "MINUTE", "SECOND").unwrap(),
            "184123 milliseconds"
        );
        assert_eq!(of("1 2", "DAY", "HOUR").unwrap(), "93600000 milliseconds");
    }

    #[test]
    fn flinks_refusals_are_refused() {
        for (text, leading, trailing) in [
            ("1:70", "HOUR", "MINUTE"),
            ("100:30", "HOUR", "MINUTE"),
            ("1-12", "YEAR", "MONTH"),
            ("1 24", "DAY", "HOUR"),
            ("1 2:3", "DAY", "SECOND"),
            ("", "HOUR", "MINUTE"),
            ("- 1:30", "HOUR", "MINUTE"),
            ("1:-30", "HOUR", "MINUTE"),
            ("1:30.5", "HOUR", "MINUTE"),
            ("1:30", "MINUTE", "HOUR"),
        ] {
            assert!(
                of(text, leading, trailing).is_err(),
                "{text} {leading} TO {trailing}"
            );
        }
    }
}
