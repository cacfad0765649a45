//! Flink's `JSON_OBJECT([KEY] k VALUE v, ... [NULL | ABSENT ON NULL])` and
//! `JSON_ARRAY(v, ... [NULL | ABSENT ON NULL])`, whose clauses DataFusion
//! does not read, written as `json_object('NULL', k, v, ...)` and
//! `json_array('ABSENT', v, ...)` (the NULL treatment first: Flink's
//! defaults are NULL ON NULL for objects and ABSENT ON NULL for arrays).
//! The aggregates `JSON_OBJECTAGG([KEY] k VALUE v ...)` and
//! `JSON_ARRAYAGG(v ...)` become a `string_agg` of items closed into JSON
//! (`functions/json.rs`). A constructor that is itself a value of another
//! (`JSON_OBJECT('k' VALUE JSON_ARRAY(1))`) is JSON there, not a string, as
//! in Flink: it is wrapped in `json_raw(...)`, which the outer call writes
//! as it is. One used any other way (inside `UPPER(...)`) is a string.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_word, matching_paren, render, solid, split_commas, tokenize};

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    if !tokens.iter().any(|t| Kind::of(t).is_some()) {
        return tokens;
    }
    match rewritten(&solid(&tokens)) {
        Some(text) => tokenize(&text).unwrap_or(tokens),
        None => tokens,
    }
}

/// `words` with every constructor call rewritten, as text; `None` when
/// none was.
fn rewritten(words: &[TokenWithSpan]) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut changed = false;
    while i < words.len() {
        let open = i + 1;
        if let Some(kind) = Kind::of(&words[i])
            && words.get(open).is_some_and(|t| t.token == Token::LParen)
            && let Some(close) = matching_paren(words, open)
            && let Some(call) = call(&words[open + 1..close], kind)
        {
            out.push(call);
            changed = true;
            i = close + 1;
            continue;
        }
        out.push(render(std::slice::from_ref(&words[i])));
        i += 1;
    }
    changed.then(|| out.join(" "))
}

/// A constructor's argument as text: a constructor call as the whole of
/// it is raw JSON; any other has its calls rewritten as strings.
fn value(tokens: &[TokenWithSpan]) -> Option<String> {
    if let Some(kind) = tokens.first().and_then(Kind::of)
        && !matches!(kind, Kind::ObjectAgg | Kind::ArrayAgg)
        && tokens.get(1).is_some_and(|t| t.token == Token::LParen)
        && matching_paren(tokens, 1) == Some(tokens.len() - 1)
    {
        let inner = call(&tokens[2..tokens.len() - 1], kind)?;
        return Some(format!("json_raw({inner})"));
    }
    Some(rewritten(tokens).unwrap_or_else(|| super::tokens::render_spaced(tokens)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    ObjectAgg,
    ArrayAgg,
}

impl Kind {
    fn of(token: &TokenWithSpan) -> Option<Kind> {
        [
            ("JSON_OBJECT", Kind::Object),
            ("JSON_ARRAY", Kind::Array),
            ("JSON_OBJECTAGG", Kind::ObjectAgg),
            ("JSON_ARRAYAGG", Kind::ArrayAgg),
        ]
        .into_iter()
        .find(|(name, _)| is_word(token, name))
        .map(|(_, kind)| kind)
    }

    fn is_object(self) -> bool {
        matches!(self, Kind::Object | Kind::ObjectAgg)
    }
}

/// The call's arguments as `json_object(...)`/`json_array(...)` (or the
/// aggregates' form), or `None` for a shape this does not read (left to
/// DataFusion to refuse).
fn call(arguments: &[TokenWithSpan], kind: Kind) -> Option<String> {
    let object = kind.is_object();
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
            arguments.push(value(entry)?);
            continue;
        }
        let entry = match entry.first() {
            Some(t) if is_word(t, "KEY") => &entry[1..],
            _ => entry,
        };
        let value_at = top_level_value(entry)?;
        let key = &entry[..value_at];
        arguments.push(rewritten(key).unwrap_or_else(|| super::tokens::render_spaced(key)));
        arguments.push(value(&entry[value_at + 1..])?);
    }
    let count = arguments.len();
    let arguments = arguments.join(", ");
    match kind {
        Kind::Object => Some(format!("json_object({arguments})")),
        Kind::Array => Some(format!("json_array({arguments})")),
        // One key and value, or one value, after the NULL treatment.
        Kind::ObjectAgg if count == 3 => Some(format!(
            "json_objectagg_close(string_agg(json_objectagg_item({arguments}), '{}'))",
            crate::functions::json::OBJECTAGG_SEPARATOR
        )),
        Kind::ArrayAgg if count == 2 => Some(format!(
            "json_arrayagg_close(string_agg(json_arrayagg_item({arguments}), ','))"
        )),
        Kind::ObjectAgg | Kind::ArrayAgg => None,
    }
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
