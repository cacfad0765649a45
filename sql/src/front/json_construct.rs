//! Flink's `JSON_OBJECT([KEY] k VALUE v, ... [NULL | ABSENT ON NULL])` and
//! `JSON_ARRAY(v, ... [NULL | ABSENT ON NULL])`, whose clauses DataFusion
//! does not read, written as `json_object('NULL', k, v, ...)` and
//! `json_array('ABSENT', v, ...)` (the NULL treatment first: Flink's
//! defaults are NULL ON NULL for objects and ABSENT ON NULL for arrays).
//! A call nested in another is left as written, and refused.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_word, matching_paren, render, solid, split_commas, tokenize};

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    if !tokens
        .iter()
        .any(|t| is_word(t, "JSON_OBJECT") || is_word(t, "JSON_ARRAY"))
    {
        return tokens;
    }
    let words = solid(&tokens);
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut changed = false;
    while i < words.len() {
        let object = is_word(&words[i], "JSON_OBJECT");
        let array = is_word(&words[i], "JSON_ARRAY");
        let open = i + 1;
        if (object || array)
            && words.get(open).is_some_and(|t| t.token == Token::LParen)
            && let Some(close) = matching_paren(&words, open)
            && let Some(call) = call(&words[open + 1..close], object)
        {
            out.push(call);
            changed = true;
            i = close + 1;
            continue;
        }
        out.push(render(std::slice::from_ref(&words[i])));
        i += 1;
    }
    if !changed {
        return tokens;
    }
    tokenize(&out.join(" ")).unwrap_or(tokens)
}

/// The call's arguments as `json_object(...)`/`json_array(...)`, or `None`
/// for a shape this does not read (left to DataFusion to refuse).
fn call(arguments: &[TokenWithSpan], object: bool) -> Option<String> {
    // A nested call is JSON in Flink's result, not a string: not read here.
    if arguments
        .iter()
        .any(|t| is_word(t, "JSON_OBJECT") || is_word(t, "JSON_ARRAY"))
    {
        return None;
    }
    let mut entries: Vec<&[TokenWithSpan]> = split_commas(arguments)
        .into_iter()
        .filter(|e| !e.is_empty())
        .collect();
    let mut on_null = if object { "NULL" } else { "ABSENT" };
    if let Some(last) = entries.last_mut() {
        let n = last.len();
        if n >= 3 && is_word(&last[n - 2], "ON") && is_word(&last[n - 1], "NULL") {
            if is_word(&last[n - 3], "NULL") {
                on_null = "NULL";
            } else if is_word(&last[n - 3], "ABSENT") {
                on_null = "ABSENT";
            } else {
                return None;
            }
            *last = &last[..n - 3];
        }
    }
    let mut arguments = vec![format!("'{on_null}'")];
    for entry in entries {
        if entry.is_empty() {
            continue;
        }
        if !object {
            arguments.push(super::tokens::render_spaced(entry));
            continue;
        }
        let entry = match entry.first() {
            Some(t) if is_word(t, "KEY") => &entry[1..],
            _ => entry,
        };
        let value_at = top_level_value(entry)?;
        arguments.push(super::tokens::render_spaced(&entry[..value_at]));
        arguments.push(super::tokens::render_spaced(&entry[value_at + 1..]));
    }
    let name = if object { "json_object" } else { "json_array" };
    Some(format!("{name}({})", arguments.join(", ")))
}

/// The `VALUE` separating an entry's key from its value.
fn top_level_value(entry: &[TokenWithSpan]) -> Option<usize> {
    let mut depth = 0i32;
    for (i, token) in entry.iter().enumerate() {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && i > 0 && is_word(token, "VALUE") => return Some(i),
            _ => {}
        }
    }
    None
}
