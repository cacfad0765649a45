//! Flink's legacy group windows, rewritten into window table functions:
//!
//! ```sql
//! SELECT TUMBLE_START(ts, INTERVAL '1' MINUTE), k, COUNT(*)
//! FROM t GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE), k
//! ```
//! becomes
//! ```sql
//! SELECT window_start, k, COUNT(*)
//! FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
//! GROUP BY window_start, window_end, k
//! ```

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::SqlError;
use crate::front::tokens::{is_space, is_word, matching_paren, position, split_commas};

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, SqlError> {
    let mut tokens = tokens;
    // One SELECT level at a time, innermost last; a bounded loop, since each
    // pass removes one legacy window.
    for _ in 0..64 {
        match rewrite_one(&tokens)? {
            Some(next) => tokens = next,
            None => return Ok(tokens),
        }
    }
    Ok(tokens)
}

fn text(source: &str, like: &TokenWithSpan) -> Vec<TokenWithSpan> {
    crate::front::tokens::tokenize(source)
        .unwrap_or_default()
        .into_iter()
        .map(|t| TokenWithSpan {
            token: t.token,
            span: like.span,
        })
        .filter(|t| t.token != Token::EOF)
        .collect()
}

fn rewrite_one(tokens: &[TokenWithSpan]) -> Result<Option<Vec<TokenWithSpan>>, SqlError> {
    // Find `GROUP BY ... TUMBLE|HOP|SESSION(` at the GROUP BY's depth.
    let depth_at = depths(tokens);
    for group in (0..tokens.len()).filter(|&i| is_word(&tokens[i], "GROUP")) {
        let depth = depth_at[group];
        let Some(by) = next_solid(tokens, group + 1).filter(|&i| is_word(&tokens[i], "BY")) else {
            continue;
        };
        let mut i = by + 1;
        while i < tokens.len() && depth_at[i] >= depth {
            if depth_at[i] == depth
                && ["HAVING", "ORDER", "LIMIT", "UNION", "WINDOW"]
                    .iter()
                    .any(|k| is_word(&tokens[i], k))
            {
                break;
            }
            let function = ["TUMBLE", "HOP", "SESSION"]
                .into_iter()
                .find(|f| is_word(&tokens[i], f));
            let open = function
                .and_then(|_| next_solid(tokens, i + 1))
                .filter(|&j| tokens[j].token == Token::LParen);
            if let (Some(function), Some(open), true) = (function, open, depth_at[i] == depth) {
                return rewrite_group(tokens, &depth_at, depth, group, i, open, function).map(Some);
            }
            i += 1;
        }
    }
    Ok(None)
}

fn rewrite_group(
    tokens: &[TokenWithSpan],
    depth_at: &[i32],
    depth: i32,
    group: usize,
    call: usize,
    open: usize,
    function: &'static str,
) -> Result<Vec<TokenWithSpan>, SqlError> {
    let at = position(&tokens[call]);
    let close = matching_paren(tokens, open)
        .ok_or_else(|| SqlError::at(format!("unclosed {function}("), at))?;
    let args = split_commas(&tokens[open + 1..close]);
    let time_column = crate::front::tokens::render(args[0]).trim().to_string();
    let intervals: Vec<String> = args[1..]
        .iter()
        .map(|a| crate::front::tokens::render(a).trim().to_string())
        .collect();
    let expected = if function == "HOP" { 2 } else { 1 };
    if intervals.len() != expected {
        return Err(SqlError::at(
            format!(
                "{function}(<time column>, <interval>{}) in GROUP BY",
                if expected == 2 { ", <interval>" } else { "" }
            ),
            at,
        ));
    }
    // A legacy session is kept per the other GROUP BY keys.
    let partition = if function == "SESSION" {
        session_keys(tokens, depth_at, depth, call, close)?
    } else {
        String::new()
    };
    // The FROM of this SELECT: the last one at the same depth before GROUP BY.
    let from = (0..group)
        .rev()
        .find(|&i| depth_at[i] == depth && is_word(&tokens[i], "FROM"))
        .ok_or_else(|| SqlError::at("a group window needs a FROM clause", at))?;
    let table_at = next_solid(tokens, from + 1)
        .ok_or_else(|| SqlError::at("a group window needs FROM <table>", at))?;
    let Token::Word(_) = &tokens[table_at].token else {
        return Err(SqlError::at(
            "legacy group windows need FROM <table>; use a window table function for subqueries",
            position(&tokens[table_at]),
        ));
    };
    let call_text = format!(
        "TABLE({function}(TABLE {}{partition}, DESCRIPTOR({time_column}), {}))",
        crate::front::tokens::render(std::slice::from_ref(&tokens[table_at])),
        intervals.join(", ")
    );
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if i == table_at {
            out.extend(text(&call_text, &tokens[i]));
            i += 1;
        } else if i == call {
            out.extend(text("window_start, window_end", &tokens[i]));
            i = close + 1;
        } else if let Some((replacement, end)) = auxiliary(tokens, i, function) {
            out.extend(text(replacement, &tokens[i]));
            i = end + 1;
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    Ok(out)
}

/// `TUMBLE_START(...)`, `TUMBLE_END(...)`, `TUMBLE_ROWTIME(...)` (and HOP_*)
/// at `i`: what it stands for and its closing parenthesis. The rowtime is
/// `window_end - 1 ms`, as in Flink.
fn auxiliary(tokens: &[TokenWithSpan], i: usize, function: &str) -> Option<(&'static str, usize)> {
    let Token::Word(w) = &tokens[i].token else {
        return None;
    };
    let upper = w.value.to_ascii_uppercase();
    let suffix = upper.strip_prefix(function)?.strip_prefix('_')?;
    let name = match suffix {
        "START" => "window_start",
        "END" => "window_end",
        "ROWTIME" => "(window_end - INTERVAL '1' MILLISECOND)",
        _ => return None,
    };
    let open = next_solid(tokens, i + 1).filter(|&j| tokens[j].token == Token::LParen)?;
    Some((name, matching_paren(tokens, open)?))
}

/// ` PARTITION BY a, b` from the GROUP BY items beside the SESSION call,
/// which must be plain columns.
fn session_keys(
    tokens: &[TokenWithSpan],
    depth_at: &[i32],
    depth: i32,
    call: usize,
    close: usize,
) -> Result<String, SqlError> {
    let is_clause_end = |i: usize| {
        depth_at[i] < depth
            || (depth_at[i] == depth
                && ["HAVING", "ORDER", "LIMIT", "UNION", "WINDOW"]
                    .iter()
                    .any(|k| is_word(&tokens[i], k)))
            || (depth_at[i] == depth && tokens[i].token == Token::RParen)
    };
    let start = (0..call)
        .rev()
        .find(|&i| is_word(&tokens[i], "BY") && depth_at[i] == depth)
        .map_or(call, |i| i + 1);
    let end = (close + 1..tokens.len())
        .find(|&i| is_clause_end(i))
        .unwrap_or(tokens.len());
    let mut keys = Vec::new();
    for item in split_commas(&tokens[start..end]) {
        let solid: Vec<&TokenWithSpan> = item.iter().filter(|t| !is_space(t)).collect();
        match solid.as_slice() {
            [first, ..] if std::ptr::eq(*first, &tokens[call]) => {}
            [column] if matches!(column.token, Token::Word(_)) => {
                keys.push(crate::front::tokens::render(std::slice::from_ref(*column)))
            }
            [] => {}
            [first, ..] => {
                return Err(SqlError::at(
                    "keys beside a SESSION group window must be plain columns",
                    position(first),
                ));
            }
        }
    }
    Ok(if keys.is_empty() {
        String::new()
    } else {
        format!(" PARTITION BY {}", keys.join(", "))
    })
}

fn next_solid(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !is_space(&tokens[i]))
}

/// Parenthesis depth of every token (an opening parenthesis is at the outer depth).
fn depths(tokens: &[TokenWithSpan]) -> Vec<i32> {
    let mut depth = 0;
    tokens
        .iter()
        .map(|t| match t.token {
            Token::LParen => {
                depth += 1;
                depth - 1
            }
            Token::RParen => {
                depth -= 1;
                depth
            }
            _ => depth,
        })
        .collect()
}
