//! Flink's `CROSS JOIN UNNEST(...)`, which DataFusion cannot plan (its
//! UNNEST in FROM does not see the columns of the relation before it).
//!
//! `FROM orders AS o CROSS JOIN UNNEST(o.tags) [WITH ORDINALITY] AS t (tag [, pos])`
//! becomes a derived table named as the relation was:
//! `FROM (SELECT o.*, __runnel_unnest(o.tags, 0, false) AS tag ... FROM orders AS o) AS o`,
//! and `t.tag` is read as `o.tag`. `LEFT JOIN UNNEST(...) AS t (...) ON
//! TRUE` keeps a row whose collection is empty or NULL (its element
//! NULL); `, UNNEST(...)` is the cross join. A map unnests into two
//! columns, key and value.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_word, matching_paren, position, render, solid, split_commas, tokenize};
use crate::error::SqlError;
use crate::functions::unnest::{Part, UNNEST};

/// The statement with every UNNEST join written as a derived table.
pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, SqlError> {
    if !tokens.iter().any(|t| is_word(t, "UNNEST")) {
        return Ok(tokens);
    }
    let mut words = solid(&tokens);
    while let Some(at) = words.iter().position(|t| is_word(t, "UNNEST")) {
        words = rewrite_one(words, at)?;
    }
    let text = super::tokens::render_spaced(&words);
    tokenize(&text)
}

fn refuse(message: &str, at: &TokenWithSpan) -> SqlError {
    SqlError::at(message.to_string(), position(at))
}

const SHAPE: &str = "UNNEST is supported as FROM <table> [AS] t CROSS JOIN UNNEST(<collection>) [WITH ORDINALITY] AS u (<columns>), with a comma for CROSS JOIN, or as LEFT JOIN UNNEST(...) AS u (<columns>) ON TRUE";

fn rewrite_one(words: Vec<TokenWithSpan>, at: usize) -> Result<Vec<TokenWithSpan>, SqlError> {
    let unnest = &words[at];
    // The join before it.
    let (join_start, outer) = match at.checked_sub(1).map(|i| &words[i]) {
        Some(t) if t.token == Token::Comma => (at - 1, false),
        Some(t) if is_word(t, "JOIN") => {
            let before = at.checked_sub(2).map(|i| &words[i]);
            match before {
                Some(b) if is_word(b, "CROSS") => (at - 2, false),
                Some(b) if is_word(b, "LEFT") => (at - 2, true),
                Some(b) if is_word(b, "OUTER") && at >= 3 && is_word(&words[at - 3], "LEFT") => {
                    (at - 3, true)
                }
                _ => return Err(refuse(SHAPE, unnest)),
            }
        }
        _ => return Err(refuse(SHAPE, unnest)),
    };
    // The collection.
    let open = at + 1;
    if words.get(open).is_none_or(|t| t.token != Token::LParen) {
        return Err(refuse("expected ( after UNNEST", unnest));
    }
    let close = matching_paren(&words, open).ok_or_else(|| refuse("unclosed UNNEST(", unnest))?;
    if close == open + 1 || split_commas(&words[open + 1..close]).len() != 1 {
        return Err(refuse(
            "UNNEST of more than one collection at once is not supported yet",
            unnest,
        ));
    }
    let collection = super::tokens::render_spaced(&words[open + 1..close]);
    // WITH ORDINALITY, the alias and its columns.
    let mut next = close + 1;
    let ordinality = words.get(next).is_some_and(|t| is_word(t, "WITH"))
        && words
            .get(next + 1)
            .is_some_and(|t| is_word(t, "ORDINALITY"));
    if ordinality {
        next += 2;
    }
    if words.get(next).is_some_and(|t| is_word(t, "AS")) {
        next += 1;
    }
    let name_columns = "name UNNEST's columns: UNNEST(...) AS u (<column>, ...)";
    let Some(Token::Word(alias)) = words.get(next).map(|t| &t.token) else {
        return Err(refuse(name_columns, unnest));
    };
    let alias = alias.value.clone();
    let columns_open = next + 1;
    if words
        .get(columns_open)
        .is_none_or(|t| t.token != Token::LParen)
    {
        return Err(refuse(name_columns, unnest));
    }
    let columns_close = matching_paren(&words, columns_open)
        .ok_or_else(|| refuse("unclosed column list", &words[columns_open]))?;
    let columns: Vec<String> = split_commas(&words[columns_open + 1..columns_close])
        .iter()
        .map(|c| match c {
            [name] if matches!(name.token, Token::Word(_)) => Ok(render(c)),
            _ => Err(refuse(name_columns, unnest)),
        })
        .collect::<Result<_, _>>()?;
    let mut end = columns_close + 1;
    if outer {
        let on_true = words.get(end).is_some_and(|t| is_word(t, "ON"))
            && words.get(end + 1).is_some_and(|t| is_word(t, "TRUE"));
        if !on_true {
            return Err(refuse("LEFT JOIN UNNEST(...) takes ON TRUE", unnest));
        }
        end += 2;
    }
    let values = columns.len().saturating_sub(usize::from(ordinality));
    let mut parts: Vec<Part> = match values {
        1 => vec![Part::Element],
        2 => vec![Part::Element, Part::Value],
        _ => {
            return Err(refuse(
                "UNNEST gives one column of an array's elements, or two of a map's keys and values (then the position WITH ORDINALITY)",
                unnest,
            ));
        }
    };
    if ordinality {
        parts.push(Part::Ordinality);
    }
    // The relation before it: one table or subquery, back to its FROM.
    let mut depth = 0usize;
    let mut from = None;
    for i in (0..join_start).rev() {
        match words[i].token {
            Token::RParen => depth += 1,
            Token::LParen if depth == 0 => break,
            Token::LParen => depth -= 1,
            _ if depth == 0 && is_word(&words[i], "FROM") => {
                from = Some(i);
                break;
            }
            _ if depth == 0 && (is_word(&words[i], "JOIN") || words[i].token == Token::Comma) => {
                return Err(refuse(
                    "UNNEST joins one table or subquery here; join the others around it",
                    unnest,
                ));
            }
            _ => {}
        }
    }
    let Some(from) = from else {
        return Err(refuse(SHAPE, unnest));
    };
    let relation = &words[from + 1..join_start];
    let Some(Token::Word(relation_name)) = relation.last().map(|t| &t.token) else {
        return Err(refuse(
            "give the relation before UNNEST a name: (SELECT ...) AS t",
            unnest,
        ));
    };
    let relation_name = relation_name.value.clone();
    let relation_text = super::tokens::render_spaced(relation);
    let selected: Vec<String> = parts
        .iter()
        .zip(&columns)
        .map(|(part, column)| {
            format!(
                "{UNNEST}({collection}, {}, {outer}) AS {column}",
                part.code()
            )
        })
        .collect();
    let derived = format!(
        "( SELECT {relation_name}.*, {} FROM {relation_text} ) AS {relation_name}",
        selected.join(", ")
    );
    let mut out = words[..=from].to_vec();
    out.extend(
        tokenize(&derived)?
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_))),
    );
    out.extend_from_slice(&words[end..]);
    // `u.column` is now a column of the relation.
    let renamed_at: Vec<usize> = (0..out.len().saturating_sub(1))
        .filter(|&i| {
            matches!(&out[i].token, Token::Word(w) if w.value == alias)
                && out[i + 1].token == Token::Period
        })
        .collect();
    for i in renamed_at {
        if let Token::Word(w) = &mut out[i].token {
            w.value = relation_name.clone();
            w.quote_style = None;
        }
    }
    Ok(out)
}
