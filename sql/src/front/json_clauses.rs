//! JSON_VALUE's `RETURNING`, `ON EMPTY` and `ON ERROR` clauses and
//! JSON_QUERY's wrappers and `ON EMPTY`, `ON ERROR`, which DataFusion's
//! parser does not read, written as calls of `functions/json_clauses.rs`:
//! `flink_json_value_<type>(json, path, 'NULL'|'ERROR'|'DEFAULT', default,
//! ... for ON ERROR)` and `flink_json_query(json, path, wrapper, on_empty,
//! on_error)`. A form that Runnel cannot answer as Flink does (another
//! RETURNING type, a path with wildcards or filters) becomes a refusal
//! naming it.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_word, matching_paren, render_spaced, solid, split_commas, tokenize};

#[derive(Clone, Copy)]
enum Function {
    Value,
    Query,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Function::Value => "JSON_VALUE",
            Function::Query => "JSON_QUERY",
        }
    }

    fn clause_words(self) -> &'static [&'static str] {
        match self {
            Function::Value => &["RETURNING", "NULL", "ERROR", "DEFAULT"],
            Function::Query => &["RETURNING", "WITH", "WITHOUT", "NULL", "ERROR", "EMPTY"],
        }
    }
}

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    if !tokens
        .iter()
        .any(|t| is_word(t, "JSON_VALUE") || is_word(t, "JSON_QUERY"))
    {
        return tokens;
    }
    let mut words = solid(&tokens);
    let mut changed = false;
    let mut i = 0;
    while i < words.len() {
        let function = if is_word(&words[i], "JSON_VALUE") {
            Function::Value
        } else if is_word(&words[i], "JSON_QUERY") {
            Function::Query
        } else {
            i += 1;
            continue;
        };
        let call = (words.get(i + 1).map(|t| &t.token) == Some(&Token::LParen))
            .then(|| matching_paren(&words, i + 1))
            .flatten()
            .and_then(|close| {
                let call = rewrite_call(function, &words[i + 2..close])?;
                Some((close, call))
            });
        if let Some((close, call)) = call
            && let Ok(replacement) = tokenize(&call)
        {
            words.splice(i..=close, solid(&replacement));
            changed = true;
        }
        i += 1;
    }
    if !changed {
        return tokens;
    }
    tokenize(&render_spaced(&words)).unwrap_or(tokens)
}

/// The call's replacement, or `None` for the plain form (or text that the
/// parser should complain about itself).
fn rewrite_call(function: Function, inside: &[TokenWithSpan]) -> Option<String> {
    let [json, rest] = split_commas(inside)[..] else {
        return None;
    };
    let Some(at) = (1..rest.len()).find(|&k| {
        depth_at(rest, k) == 0 && function.clause_words().iter().any(|w| is_word(&rest[k], w))
    }) else {
        // The plain form: its functions read any path, but one given as a
        // literal is checked here, at submit.
        return match rest {
            [
                TokenWithSpan {
                    token: Token::SingleQuotedString(_),
                    ..
                },
            ] => literal_path(function, rest).err().map(|why| refusal(&why)),
            _ => None,
        };
    };
    let (path, clauses) = rest.split_at(at);
    let json = render_spaced(json);
    let call = literal_path(function, path).and_then(|path| match function {
        Function::Value => value_call(&json, &path, clauses),
        Function::Query => query_call(&json, &path, clauses),
    });
    Some(call.unwrap_or_else(|why| refusal(&why)))
}

fn refusal(why: &str) -> String {
    format!(
        "{}('{}')",
        crate::functions::refused::NAME,
        why.replace('\'', "''")
    )
}

fn depth_at(tokens: &[TokenWithSpan], at: usize) -> i32 {
    tokens[..at].iter().fold(0, |depth, t| match t.token {
        Token::LParen | Token::LBracket => depth + 1,
        Token::RParen | Token::RBracket => depth - 1,
        _ => depth,
    })
}

/// Only a literal path can be checked at submit for what this reader
/// follows; another path might need what it does not.
fn literal_path(function: Function, path: &[TokenWithSpan]) -> Result<String, String> {
    let name = function.name();
    match path {
        [
            TokenWithSpan {
                token: Token::SingleQuotedString(spec),
                ..
            },
        ] => {
            if crate::functions::json_path_supported(spec) {
                Ok(render_spaced(path))
            } else {
                Err(format!(
                    "{name} with the JSON path '{spec}' is not supported yet (paths of .key, \
                     ['key'] and [index] steps are)"
                ))
            }
        }
        _ => Err(format!(
            "{name} with RETURNING, ON EMPTY, ON ERROR or a wrapper takes its path as a string \
             literal here"
        )),
    }
}

/// `(NULL | ERROR | DEFAULT expr | EMPTY ARRAY | EMPTY OBJECT) ON (EMPTY |
/// ERROR)`, at most once each, ON EMPTY first; the behavior for each.
fn behaviors(
    function: Function,
    mut clauses: &[TokenWithSpan],
    default_expr: &dyn Fn(&[TokenWithSpan]) -> Result<String, String>,
) -> Result<[(String, Option<String>); 2], String> {
    let name = function.name();
    let mut found: [(String, Option<String>); 2] = [("NULL".into(), None), ("NULL".into(), None)];
    let mut next = 0;
    while !clauses.is_empty() {
        let on = (1..clauses.len())
            .find(|&k| {
                depth_at(clauses, k) == 0
                    && is_word(&clauses[k], "ON")
                    && clauses
                        .get(k + 1)
                        .is_some_and(|t| is_word(t, "EMPTY") || is_word(t, "ERROR"))
            })
            .ok_or_else(|| format!("{name}: '{}' is not a clause here", render_spaced(clauses)))?;
        let which = usize::from(is_word(&clauses[on + 1], "ERROR"));
        if which < next {
            return Err(format!("{name}: ON EMPTY comes before ON ERROR, once each"));
        }
        next = which + 1;
        let behavior = &clauses[..on];
        found[which] = match (function, behavior) {
            (_, [word]) if is_word(word, "NULL") => ("NULL".into(), None),
            (_, [word]) if is_word(word, "ERROR") => ("ERROR".into(), None),
            (Function::Value, [word, default @ ..])
                if is_word(word, "DEFAULT") && !default.is_empty() =>
            {
                ("DEFAULT".into(), Some(default_expr(default)?))
            }
            (Function::Query, [empty, kind])
                if is_word(empty, "EMPTY") && is_word(kind, "ARRAY") =>
            {
                ("EMPTY ARRAY".into(), None)
            }
            (Function::Query, [empty, kind])
                if is_word(empty, "EMPTY") && is_word(kind, "OBJECT") =>
            {
                ("EMPTY OBJECT".into(), None)
            }
            _ => {
                return Err(format!(
                    "{name}: '{}' is not a behavior ON EMPTY or ON ERROR",
                    render_spaced(behavior)
                ));
            }
        };
        clauses = &clauses[on + 2..];
    }
    Ok(found)
}

/// Flink 2.3 takes a DEFAULT only as a literal (another expression fails
/// its code generation) and casts it as the value found; these are the
/// literals whose cast succeeds. Flink types a small integer literal
/// INT, DataFusion BIGINT.
fn default_expr(returning: &str, tokens: &[TokenWithSpan]) -> Result<String, String> {
    match (returning, tokens) {
        (
            "string",
            [
                TokenWithSpan {
                    token: Token::SingleQuotedString(_),
                    ..
                },
            ],
        ) => Ok(render_spaced(tokens)),
        (
            "int",
            [
                TokenWithSpan {
                    token: Token::Number(n, _),
                    ..
                },
            ],
        ) if n.parse::<i32>().is_ok() => Ok(format!("CAST({n} AS INT)")),
        ("boolean", [word]) if is_word(word, "TRUE") || is_word(word, "FALSE") => {
            Ok(render_spaced(tokens))
        }
        _ => Err(format!(
            "JSON_VALUE ... DEFAULT {} is not supported: Flink takes a DEFAULT only as a literal of \
             the RETURNING type (a string for STRING, an INT for INT, TRUE or FALSE for BOOLEAN, \
             none for DOUBLE)",
            render_spaced(tokens)
        )),
    }
}

fn value_call(json: &str, path: &str, clauses: &[TokenWithSpan]) -> Result<String, String> {
    let mut returning = "string";
    let mut clauses = clauses;
    if clauses.first().is_some_and(|t| is_word(t, "RETURNING")) {
        let end = (1..clauses.len())
            .find(|&k| {
                depth_at(clauses, k) == 0
                    && ["NULL", "ERROR", "DEFAULT"]
                        .iter()
                        .any(|w| is_word(&clauses[k], w))
            })
            .unwrap_or(clauses.len());
        let type_tokens = &clauses[1..end];
        let first = type_tokens
            .first()
            .map(|t| t.token.to_string().to_ascii_uppercase());
        returning = match (first.as_deref(), type_tokens.len()) {
            (Some("INT" | "INTEGER"), 1) => "int",
            (Some("DOUBLE"), 1) => "double",
            (Some("BOOLEAN"), 1) => "boolean",
            (Some("STRING" | "VARCHAR"), 1) => "string",
            // VARCHAR(n): Flink's cast does not cut the text to n.
            (Some("VARCHAR"), 4)
                if type_tokens[1].token == Token::LParen
                    && matches!(type_tokens[2].token, Token::Number(_, _))
                    && type_tokens[3].token == Token::RParen =>
            {
                "string"
            }
            _ => {
                return Err(format!(
                    "JSON_VALUE ... RETURNING {} is not supported (STRING, VARCHAR, INT, DOUBLE \
                     and BOOLEAN are)",
                    render_spaced(type_tokens)
                ));
            }
        };
        clauses = &clauses[end..];
    }
    let [(on_empty, empty_default), (on_error, error_default)] =
        behaviors(Function::Value, clauses, &|tokens| {
            default_expr(returning, tokens)
        })?;
    let null = "NULL".to_string();
    Ok(format!(
        "flink_json_value_{returning}({json}, {path}, '{on_empty}', {}, '{on_error}', {})",
        empty_default.unwrap_or_else(|| null.clone()),
        error_default.unwrap_or(null),
    ))
}

fn query_call(json: &str, path: &str, clauses: &[TokenWithSpan]) -> Result<String, String> {
    if clauses.first().is_some_and(|t| is_word(t, "RETURNING")) {
        return Err("JSON_QUERY ... RETURNING is not supported yet".into());
    }
    let wrapper_end = clauses
        .iter()
        .position(|t| is_word(t, "WRAPPER"))
        .map_or(0, |w| w + 1);
    let words: Vec<String> = clauses[..wrapper_end]
        .iter()
        .map(|t| t.token.to_string().to_ascii_uppercase())
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let wrapper = match words[..] {
        [] | ["WITHOUT", "WRAPPER"] | ["WITHOUT", "ARRAY", "WRAPPER"] => "WITHOUT",
        ["WITH", "WRAPPER"]
        | ["WITH", "ARRAY", "WRAPPER"]
        | ["WITH", "UNCONDITIONAL", "WRAPPER"]
        | ["WITH", "UNCONDITIONAL", "ARRAY", "WRAPPER"] => "UNCONDITIONAL",
        ["WITH", "CONDITIONAL", "WRAPPER"] | ["WITH", "CONDITIONAL", "ARRAY", "WRAPPER"] => {
            "CONDITIONAL"
        }
        _ => {
            return Err(format!(
                "JSON_QUERY: '{}' is not a wrapper",
                render_spaced(&clauses[..wrapper_end])
            ));
        }
    };
    let [(on_empty, _), (on_error, _)] =
        behaviors(Function::Query, &clauses[wrapper_end..], &|_| {
            Err("JSON_QUERY takes no DEFAULT".into())
        })?;
    Ok(format!(
        "flink_json_query({json}, {path}, '{wrapper}', '{on_empty}', '{on_error}')"
    ))
}
