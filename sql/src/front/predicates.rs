//! Flink predicates whose syntax DataFusion does not read:
//! `x [NOT] BETWEEN SYMMETRIC a AND b` becomes `x [NOT] BETWEEN LEAST(a, b)
//! AND GREATEST(a, b)`, and `s LIKE '<pattern>' ESCAPE '<c>'` with a
//! literal pattern becomes the same pattern escaped with a backslash, the
//! only escape DataFusion's LIKE takes.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::is_json::operand_start;
use super::tokens::{is_word, solid, tokenize};

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let symmetric = tokens.iter().any(|t| is_word(t, "SYMMETRIC"));
    let escape = tokens.iter().any(|t| is_word(t, "ESCAPE"));
    if !symmetric && !escape {
        return tokens;
    }
    let mut words = solid(&tokens);
    let mut changed = false;
    if symmetric {
        while let Some(at) = (1..words.len())
            .find(|&i| is_word(&words[i], "SYMMETRIC") && is_word(&words[i - 1], "BETWEEN"))
        {
            let Some(replaced) = between_symmetric(&words, at) else {
                break;
            };
            words = replaced;
            changed = true;
        }
    }
    if escape {
        for at in 2..words.len() {
            if is_word(&words[at], "ESCAPE")
                && let Token::SingleQuotedString(pattern) = &words[at - 1].token
                && let Some(Token::SingleQuotedString(escape)) = words.get(at + 1).map(|t| &t.token)
                && let Some(escaped) = with_backslash(pattern, escape)
            {
                words[at - 1].token = Token::SingleQuotedString(escaped);
                words[at].token =
                    Token::Whitespace(datafusion::sql::sqlparser::tokenizer::Whitespace::Space);
                words[at + 1].token =
                    Token::Whitespace(datafusion::sql::sqlparser::tokenizer::Whitespace::Space);
                changed = true;
            }
        }
    }
    if !changed {
        return tokens;
    }
    let text = super::tokens::render_spaced(&words);
    tokenize(&text).unwrap_or(tokens)
}

/// The statement with the `BETWEEN SYMMETRIC` at `at` written with
/// LEAST and GREATEST; `None` for a shape this does not read.
fn between_symmetric(words: &[TokenWithSpan], at: usize) -> Option<Vec<TokenWithSpan>> {
    let low_start = at + 1;
    let low_end = operand_end(words, low_start)?;
    if !words.get(low_end).is_some_and(|t| is_word(t, "AND")) {
        return None;
    }
    let high_start = low_end + 1;
    let high_end = operand_end(words, high_start)?;
    // The operand itself must be readable, or the rewrite could move it.
    let between_at = at - 1;
    let operand_at = if between_at >= 1 && is_word(&words[between_at - 1], "NOT") {
        between_at - 1
    } else {
        between_at
    };
    operand_start(words, operand_at)?;
    let low = super::tokens::render_spaced(&words[low_start..low_end]);
    let high = super::tokens::render_spaced(&words[high_start..high_end]);
    let bounds = format!("LEAST({low}, {high}) AND GREATEST({low}, {high})");
    let mut out = words[..at].to_vec();
    out.extend(solid(&tokenize(&bounds).ok()?));
    out.extend_from_slice(&words[high_end..]);
    Some(out)
}

/// Where a bound starting at `start` ends: a literal, a (qualified)
/// column, or a parenthesized expression or function call, with an
/// optional sign.
fn operand_end(words: &[TokenWithSpan], start: usize) -> Option<usize> {
    let mut at = start;
    if words
        .get(at)
        .is_some_and(|t| matches!(t.token, Token::Minus | Token::Plus))
    {
        at += 1;
    }
    match &words.get(at)?.token {
        Token::Number(_, _) | Token::SingleQuotedString(_) => Some(at + 1),
        Token::LParen => Some(super::tokens::matching_paren(words, at)? + 1),
        Token::Word(_) => {
            let mut end = at + 1;
            while words.get(end).is_some_and(|t| t.token == Token::Period)
                && words
                    .get(end + 1)
                    .is_some_and(|t| matches!(t.token, Token::Word(_)))
            {
                end += 2;
            }
            if words.get(end).is_some_and(|t| t.token == Token::LParen) {
                end = super::tokens::matching_paren(words, end)? + 1;
            }
            Some(end)
        }
        _ => None,
    }
}

/// `pattern` with `escape` (one character) turned into backslash escapes;
/// a backslash of the pattern becomes an escaped one.
fn with_backslash(pattern: &str, escape: &str) -> Option<String> {
    let mut escape_chars = escape.chars();
    let (Some(escape), None) = (escape_chars.next(), escape_chars.next()) else {
        return None;
    };
    if escape == '\\' {
        return Some(pattern.to_string());
    }
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            match chars.next() {
                Some(next @ ('_' | '%')) => {
                    out.push('\\');
                    out.push(next);
                }
                Some(next) if next == escape => out.push(next),
                // Flink refuses an escape before anything else.
                _ => return None,
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Some(out)
}
