//! The script as tokens with positions: statements are split, Flink's DDL
//! read and window calls rewritten at this level, before DataFusion's
//! parser sees the text.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Position, SqlError};

pub fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>, SqlError> {
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| {
            SqlError::at(
                format!("SQL parse failed. {}", e.message),
                Position {
                    line: e.location.line,
                    column: e.location.column,
                },
            )
        })
}

pub fn position(token: &TokenWithSpan) -> Position {
    Position {
        line: token.span.start.line,
        column: token.span.start.column,
    }
}

pub fn is_space(token: &TokenWithSpan) -> bool {
    matches!(token.token, Token::Whitespace(_))
}

/// Whether `token` is the unquoted word `word`, any case.
pub fn is_word(token: &TokenWithSpan, word: &str) -> bool {
    matches!(&token.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// Tokens back to SQL text. Flink quotes identifiers with backticks;
/// DataFusion's parser wants double quotes. A string literal's quotes are
/// doubled again.
pub fn render(tokens: &[TokenWithSpan]) -> String {
    tokens
        .iter()
        .map(|t| match &t.token {
            Token::Word(w) if w.quote_style == Some('`') => {
                format!("\"{}\"", w.value.replace('"', "\"\""))
            }
            // The token holds the literal's quotes read (`''` as `'`);
            // sqlparser's Display writes them back single.
            Token::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
            other => other.to_string(),
        })
        .collect()
}

/// Whitespace-free tokens back to text, a space between each.
pub fn render_spaced(tokens: &[TokenWithSpan]) -> String {
    tokens
        .iter()
        .map(|t| render(std::slice::from_ref(t)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The non-whitespace tokens, for reading DDL shapes.
pub fn solid(tokens: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    tokens.iter().filter(|t| !is_space(t)).cloned().collect()
}

/// Splits at top-level commas: outside parentheses, the square brackets of
/// `ARRAY[...]` and the angle brackets of types (`MAP<STRING, INT>`).
pub fn split_commas(tokens: &[TokenWithSpan]) -> Vec<&[TokenWithSpan]> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut angle = 0i32;
    let mut start = 0;
    // A `<` opens a type's brackets only after a type that takes them;
    // anywhere else it is a comparison (`a < PREV(a), b AS ...`).
    let mut previous: Option<&TokenWithSpan> = None;
    for (i, token) in tokens.iter().enumerate() {
        let opens_type = previous.is_some_and(|p| {
            ["MAP", "ARRAY", "ROW", "MULTISET"]
                .iter()
                .any(|t| is_word(p, t))
        });
        if !is_space(token) {
            previous = Some(token);
        }
        match token.token {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => depth -= 1,
            Token::Lt if opens_type => angle += 1,
            Token::Gt if angle > 0 => angle -= 1,
            Token::ShiftRight if angle > 0 => angle -= 2,
            Token::Comma if depth == 0 && angle <= 0 => {
                parts.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts
}

/// Index of the parenthesis closing the one at `open`.
pub fn matching_paren(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Statements of a script, split at top-level semicolons, each without its
/// semicolon and without surrounding whitespace. `BEGIN ... END` (of
/// `EXECUTE STATEMENT SET`) and `CASE ... END` nest like parentheses.
pub fn statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut depth = 0i32;
    for token in tokens {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if is_word(&token, "BEGIN") || is_word(&token, "CASE") => depth += 1,
            _ if is_word(&token, "END") => depth -= 1,
            _ => {}
        }
        if token.token == Token::SemiColon && depth == 0 {
            out.push(std::mem::take(&mut current));
        } else {
            current.push(token);
        }
    }
    out.push(current);
    out.into_iter()
        .map(|mut statement| {
            while statement.last().is_some_and(is_space) {
                statement.pop();
            }
            let first = statement
                .iter()
                .position(|t| !is_space(t))
                .unwrap_or(statement.len());
            statement.split_off(first)
        })
        .filter(|statement| !statement.is_empty())
        .collect()
}

/// `INTERVAL '10' SECOND` or `INTERVAL '10 SECONDS'` in milliseconds.
pub fn interval_millis(tokens: &[TokenWithSpan]) -> Result<i64, SqlError> {
    let solid = solid(tokens);
    let at = solid
        .first()
        .map(position)
        .unwrap_or(Position { line: 0, column: 0 });
    let bad = || SqlError::at("expected an interval such as INTERVAL '10' SECOND", at);
    let (amount, unit) = match solid.as_slice() {
        [i, amount, unit] if is_word(i, "INTERVAL") => match (&amount.token, &unit.token) {
            (Token::SingleQuotedString(a), Token::Word(u)) => {
                (a.trim().to_string(), u.value.clone())
            }
            _ => return Err(bad()),
        },
        [i, text] if is_word(i, "INTERVAL") => match &text.token {
            Token::SingleQuotedString(t) => {
                let mut parts = t.split_whitespace();
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(a), Some(u), None) => (a.to_string(), u.to_string()),
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    let unit_millis: i64 = match unit.to_ascii_uppercase().trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => {
            return Err(SqlError::at(
                format!("unsupported interval unit {unit}"),
                at,
            ));
        }
    };
    // A fraction is exact in milliseconds or refused: '0.05' SECOND.
    let (whole, fraction) = amount.split_once('.').unwrap_or((&amount, ""));
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let digits = fraction.len() as u32;
    let fraction: i64 = match fraction {
        "" => 0,
        f => f.parse().map_err(|_| bad())?,
    };
    let scale = 10i64.checked_pow(digits).ok_or_else(bad)?;
    let fraction_millis = fraction * unit_millis;
    if fraction_millis % scale != 0 || whole < 0 && fraction != 0 {
        return Err(bad());
    }
    Ok(whole * unit_millis + fraction_millis / scale)
}
