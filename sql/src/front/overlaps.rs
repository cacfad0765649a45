//! Flink's `(s0, e0) OVERLAPS (s1, e1)`, which DataFusion's parser does
//! not read, written out as Flink (Calcite) evaluates it: an end given as
//! an INTERVAL is `start + interval`; each pair is put in order, then the
//! periods overlap when each ends at or after the other starts (so
//! periods that only touch overlap), NULL where a comparison is.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_word, matching_paren, render_spaced, solid, split_commas, tokenize};

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    if !tokens.iter().any(|t| is_word(t, "OVERLAPS")) {
        return tokens;
    }
    let mut words = solid(&tokens);
    let mut changed = false;
    while let Some(at) = (1..words.len()).find(|&i| is_word(&words[i], "OVERLAPS")) {
        let Some(replaced) = overlaps(&words, at) else {
            break;
        };
        words = replaced;
        changed = true;
    }
    if !changed {
        return tokens;
    }
    tokenize(&render_spaced(&words)).unwrap_or(tokens)
}

/// The statement with the OVERLAPS at `at` written out; `None` for a
/// shape this does not read (DataFusion's parser then refuses it).
fn overlaps(words: &[TokenWithSpan], at: usize) -> Option<Vec<TokenWithSpan>> {
    let left_close = at - 1;
    if words[left_close].token != Token::RParen {
        return None;
    }
    let left_open = (0..left_close).rev().find(|&i| {
        words[i].token == Token::LParen && matching_paren(words, i) == Some(left_close)
    })?;
    let right_open = at + 1;
    if words.get(right_open)?.token != Token::LParen {
        return None;
    }
    let right_close = matching_paren(words, right_open)?;
    let (s0, e0) = period(&words[left_open + 1..left_close])?;
    let (s1, e1) = period(&words[right_open + 1..right_close])?;
    let start = |s: &str, e: &str| format!("CASE WHEN {s} <= {e} THEN {s} ELSE {e} END");
    let end = |s: &str, e: &str| format!("CASE WHEN {s} <= {e} THEN {e} ELSE {s} END");
    let text = format!(
        "(({} >= {}) AND ({} >= {}))",
        end(&s0, &e0),
        start(&s1, &e1),
        end(&s1, &e1),
        start(&s0, &e0)
    );
    let mut out = words[..left_open].to_vec();
    out.extend(solid(&tokenize(&text).ok()?));
    out.extend_from_slice(&words[right_close + 1..]);
    Some(out)
}

/// A period's start and end as SQL text, the end an instant.
fn period(inside: &[TokenWithSpan]) -> Option<(String, String)> {
    let [start, end] = split_commas(inside)[..] else {
        return None;
    };
    if start.is_empty() || end.is_empty() {
        return None;
    }
    let start = format!("({})", render_spaced(start));
    let end_text = format!("({})", render_spaced(end));
    let end = if is_word(&end[0], "INTERVAL") {
        format!("({start} + {end_text})")
    } else {
        end_text
    };
    Some((start, end))
}
