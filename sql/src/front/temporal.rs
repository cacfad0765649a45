//! Flink's lookup and temporal joins, `JOIN t FOR SYSTEM_TIME AS OF
//! o.ts AS r ON ...`: the clause is taken out and remembered. Against a
//! versioned table (a PRIMARY KEY and a WATERMARK) the planner runs an
//! event-time temporal join (`plan::temporal_join`); against a bounded
//! table, a regular (updating) join, since for a table that does not change
//! while the job runs every probe row meets the same rows either way. The
//! session refuses other tables that change (a changelog, an unbounded
//! source), where a regular join would join each row with every version.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

use crate::error::{Position, SqlError};
use crate::front::tokens::{is_space, is_word, position};

/// A `FOR SYSTEM_TIME AS OF` clause that was taken out: the table it
/// followed and where the clause was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Temporal {
    pub table: String,
    pub position: Position,
}

/// Takes the clauses out. A join against a table `versioned_time` names
/// the time attribute of (a versioned table) is marked in its ON clause,
/// `ON __runnel_temporal(o.ts, r.<time>) AND (<condition>)`.
pub fn rewrite(
    tokens: Vec<TokenWithSpan>,
    versioned_time: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<TokenWithSpan>, Vec<Temporal>), SqlError> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut clauses = Vec::new();
    // Where in `out` each versioned join's alias starts, with its clause's
    // time tokens and the table's time attribute.
    let mut marks: Vec<(usize, String, Vec<TokenWithSpan>, String, Position)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Some(end) = system_time_clause(&tokens, i) {
            let table = out
                .iter()
                .rev()
                .find(|t| !is_space(t))
                .and_then(|t| match &t.token {
                    Token::Word(w) => Some(w.value.clone()),
                    _ => None,
                });
            if let Some(table) = table {
                let words: Vec<&TokenWithSpan> =
                    tokens[i..end].iter().filter(|t| !is_space(t)).collect();
                let at = position(words.first().copied().unwrap_or(&tokens[i]));
                if let Some(right_time) = versioned_time(&table) {
                    let time: Vec<TokenWithSpan> =
                        words[4..].iter().map(|t| (*t).clone()).collect();
                    marks.push((out.len(), table.clone(), time, right_time, at));
                }
                clauses.push(Temporal {
                    table,
                    position: at,
                });
            }
            i = end;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    for (from, table, time, right_time, at) in marks.into_iter().rev() {
        mark(&mut out, from, &table, time, &right_time, at)?;
    }
    Ok((out, clauses))
}

/// Puts the marker after the ON that follows the versioned table's alias
/// (at `from`), and parentheses around the condition.
fn mark(
    out: &mut Vec<TokenWithSpan>,
    from: usize,
    table: &str,
    time: Vec<TokenWithSpan>,
    right_time: &str,
    at: Position,
) -> Result<(), SqlError> {
    let solid_from = |i: usize| (i..out.len()).find(|&j| !is_space(&out[j]));
    let mut next = solid_from(from);
    if next.is_some_and(|j| is_word(&out[j], "AS")) {
        next = next.and_then(|j| solid_from(j + 1));
    }
    let mut qualifier = table.to_string();
    if let Some(j) = next
        && !is_word(&out[j], "ON")
        && let Token::Word(w) = &out[j].token
    {
        qualifier = w.value.clone();
        next = solid_from(j + 1);
    }
    let Some(on) = next.filter(|&j| is_word(&out[j], "ON")) else {
        return Err(SqlError::at(
            "a temporal join against a versioned table needs ON <equalities on its primary key> (as in Flink)",
            at,
        ));
    };
    let mut depth = 0i32;
    let mut end = out.len();
    for (j, token) in out.iter().enumerate().skip(on + 1) {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => {
                end = j;
                break;
            }
            Token::RParen => depth -= 1,
            Token::SemiColon if depth == 0 => {
                end = j;
                break;
            }
            _ => {}
        }
        if depth == 0 && ENDS_CONDITION.iter().any(|k| is_word(token, k)) {
            end = j;
            break;
        }
    }
    let span = out[on].span;
    let made = |token: Token| TokenWithSpan { token, span };
    let word = |w: &str| made(Token::make_word(w, None));
    let quoted = |w: &str| made(Token::make_word(w, Some('"')));
    out.insert(end, made(Token::RParen));
    out.insert(end, made(Token::Whitespace(Whitespace::Space)));
    let mut marker = vec![
        made(Token::Whitespace(Whitespace::Space)),
        word(crate::functions::TEMPORAL_MARKER),
        made(Token::LParen),
    ];
    marker.extend(time);
    marker.extend([
        made(Token::Comma),
        quoted(&qualifier),
        made(Token::Period),
        quoted(right_time),
        made(Token::RParen),
        made(Token::Whitespace(Whitespace::Space)),
        word("AND"),
        made(Token::Whitespace(Whitespace::Space)),
        made(Token::LParen),
    ]);
    out.splice(on + 1..on + 1, marker);
    Ok(())
}

/// Keywords after which an ON condition has ended.
const ENDS_CONDITION: [&str; 15] = [
    "WHERE",
    "GROUP",
    "HAVING",
    "ORDER",
    "LIMIT",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "CROSS",
    "UNION",
    "WINDOW",
    "EXCEPT",
    "INTERSECT",
];

/// If `FOR SYSTEM_TIME AS OF <column or call>` starts at `start`, where it
/// ends.
fn system_time_clause(tokens: &[TokenWithSpan], start: usize) -> Option<usize> {
    let mut i = start;
    let word = |expected: &str, i: &mut usize| -> bool {
        while *i < tokens.len() && is_space(&tokens[*i]) {
            *i += 1;
        }
        let found = *i < tokens.len() && is_word(&tokens[*i], expected);
        if found {
            *i += 1;
        }
        found
    };
    if !(word("FOR", &mut i)
        && word("SYSTEM_TIME", &mut i)
        && word("AS", &mut i)
        && word("OF", &mut i))
    {
        return None;
    }
    while i < tokens.len() && is_space(&tokens[i]) {
        i += 1;
    }
    // A compound name, optionally called: `o.proc_time`, `PROCTIME()`.
    let mut expect_name = true;
    while i < tokens.len() {
        match &tokens[i].token {
            Token::Word(_) if expect_name => expect_name = false,
            Token::Period if !expect_name => expect_name = true,
            Token::LParen if !expect_name => {
                let close = crate::front::tokens::matching_paren(tokens, i)?;
                return Some(close + 1);
            }
            _ => break,
        }
        i += 1;
    }
    (!expect_name).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let tokens = crate::front::tokens::tokenize(sql).unwrap();
        rewrite(tokens, &|_| None)
            .unwrap()
            .0
            .iter()
            .map(|t| t.token.to_string())
            .collect::<String>()
    }

    #[test]
    fn the_clause_is_taken_out_and_the_alias_kept() {
        assert_eq!(
            rewritten("SELECT * FROM o JOIN r FOR SYSTEM_TIME AS OF o.proc_time AS x ON o.k = x.k"),
            "SELECT * FROM o JOIN r AS x ON o.k = x.k"
        );
        assert_eq!(
            rewritten("SELECT * FROM o JOIN r FOR SYSTEM_TIME AS OF PROCTIME() ON o.k = r.k"),
            "SELECT * FROM o JOIN r ON o.k = r.k"
        );
        let tokens = crate::front::tokens::tokenize(
            "SELECT * FROM o\nJOIN db.rates FOR SYSTEM_TIME AS OF o.ts ON o.k = rates.k",
        )
        .unwrap();
        assert_eq!(
            rewrite(tokens, &|_| None).unwrap().1,
            [Temporal {
                table: "rates".into(),
                position: Position {
                    line: 2,
                    column: 15
                }
            }]
        );
    }
}
