//! `<table> MATCH_RECOGNIZE (...) [AS] alias`, read from the tokens.
//!
//! DataFusion has no row pattern recognition, and sqlparser reads neither
//! Flink's `WITHIN` nor reluctant quantifiers, so the clause is read here
//! and replaced in the token stream by a placeholder table whose columns
//! are the partition columns and the measures; the planner plans the input
//! relation and the clause (`plan::match_recognize`) when it meets a scan
//! of the placeholder. What Flink refuses (pattern groups, alternation,
//! PERMUTE, anchors, exclusion, `A??`, ALL ROWS PER MATCH, SUBSET) is
//! refused here, at the construct.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Position, SqlError};
use crate::front::tokens::{
    interval_millis, is_word, matching_paren, position, render, solid, split_commas,
};

pub const MATCH_PREFIX: &str = "__runnel_match_";

#[derive(Debug, Clone)]
pub struct MatchCall {
    pub placeholder: String,
    /// The input relation as SQL: a table or view name, or `(subquery)`.
    pub input: String,
    pub clause: MatchClause,
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SkipTo {
    PastLastRow,
    NextRow,
    First(String),
    Last(String),
}

#[derive(Debug, Clone)]
pub struct PatternTerm {
    pub variable: String,
    pub min: u32,
    pub max: Option<u32>,
    /// Whether the automaton leaves this variable only with a row it does
    /// not take: `*`, `+` and `{n,m}` unless reluctant. Flink's `?` is a
    /// single optional row, never greedy.
    pub greedy: bool,
    /// Flink's GREEDY property, which `{n}` has too: an optional variable
    /// may not follow it.
    pub greedy_property: bool,
    pub position: Position,
}

#[derive(Debug, Clone)]
pub struct MatchClause {
    pub partition: Vec<String>,
    /// ORDER BY columns, each with whether it is ascending.
    pub order: Vec<(String, bool)>,
    pub measures: Vec<(Vec<TokenWithSpan>, String)>,
    pub skip: SkipTo,
    pub skip_position: Position,
    pub pattern: Vec<PatternTerm>,
    pub within: Option<i64>,
    pub defines: Vec<(String, Vec<TokenWithSpan>)>,
}

impl MatchClause {
    /// The pattern's variables, each once, in order of first appearance.
    pub fn variables(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for term in &self.pattern {
            if !out.contains(&term.variable) {
                out.push(term.variable.clone());
            }
        }
        out
    }
}

pub fn rewrite(
    tokens: Vec<TokenWithSpan>,
    next_id: &mut usize,
) -> Result<(Vec<TokenWithSpan>, Vec<MatchCall>), SqlError> {
    let mut tokens = tokens;
    let mut calls = Vec::new();
    while let Some(at) = tokens.iter().position(|t| is_word(t, "MATCH_RECOGNIZE")) {
        let keyword = position(&tokens[at]);
        let before = (0..at)
            .rev()
            .find(|&i| !crate::front::tokens::is_space(&tokens[i]))
            .ok_or_else(|| SqlError::at("MATCH_RECOGNIZE must follow a table", keyword))?;
        let word_before = |at: usize| {
            (0..at)
                .rev()
                .find(|&i| !crate::front::tokens::is_space(&tokens[i]))
                .filter(|&i| matches!(tokens[i].token, Token::Word(_)))
        };
        let (start, input) = match &tokens[before].token {
            Token::Word(_)
                if word_before(before).is_some_and(|i| {
                    !["FROM", "JOIN", "AS"]
                        .iter()
                        .any(|k| is_word(&tokens[i], k))
                }) =>
            {
                return Err(SqlError::at(
                    "put the table's alias after MATCH_RECOGNIZE (...), as Flink reads it",
                    keyword,
                ));
            }
            Token::Word(_) => (before, render(&tokens[before..=before])),
            Token::RParen => {
                let open = (0..before)
                    .rev()
                    .find(|&i| matching_paren(&tokens, i) == Some(before))
                    .ok_or_else(|| SqlError::at("unbalanced parentheses", keyword))?;
                (open, render(&tokens[open..=before]))
            }
            _ => return Err(SqlError::at("MATCH_RECOGNIZE must follow a table", keyword)),
        };
        let open = (at + 1..tokens.len())
            .find(|&i| !crate::front::tokens::is_space(&tokens[i]))
            .filter(|&i| tokens[i].token == Token::LParen)
            .ok_or_else(|| SqlError::at("expected ( after MATCH_RECOGNIZE", keyword))?;
        let close = matching_paren(&tokens, open)
            .ok_or_else(|| SqlError::at("unclosed MATCH_RECOGNIZE (", keyword))?;
        let clause = parse_clause(&solid(&tokens[open + 1..close]), keyword)?;
        let placeholder = format!("{MATCH_PREFIX}{next_id}");
        *next_id += 1;
        let span = tokens[start].span;
        tokens.splice(
            start..=close,
            [TokenWithSpan {
                token: Token::make_word(&placeholder, None),
                span,
            }],
        );
        calls.push(MatchCall {
            placeholder,
            input,
            clause,
            position: keyword,
        });
    }
    Ok((tokens, calls))
}

const CLAUSES: [&str; 10] = [
    "PARTITION",
    "ORDER",
    "MEASURES",
    "ONE",
    "ALL",
    "AFTER",
    "PATTERN",
    "WITHIN",
    "SUBSET",
    "DEFINE",
];

fn parse_clause(tokens: &[TokenWithSpan], keyword: Position) -> Result<MatchClause, SqlError> {
    // Split into clauses at their keywords, outside parentheses.
    let mut parts: Vec<(String, usize, usize)> = Vec::new();
    let mut depth = 0i32;
    for (i, token) in tokens.iter().enumerate() {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth == 0
            && let Some(name) = CLAUSES.iter().find(|c| is_word(token, c))
            && (*name != "ALL" || tokens.get(i + 1).is_some_and(|t| is_word(t, "ROWS")))
        {
            if let Some(last) = parts.last_mut() {
                last.2 = i;
            }
            parts.push((name.to_string(), i, tokens.len()));
        }
    }
    if parts.first().is_some_and(|p| p.1 != 0) || parts.is_empty() {
        return Err(SqlError::at(
            "expected PARTITION BY, ORDER BY, MEASURES, PATTERN or DEFINE in MATCH_RECOGNIZE",
            tokens.first().map(position).unwrap_or(keyword),
        ));
    }
    let mut clause = MatchClause {
        partition: Vec::new(),
        order: Vec::new(),
        measures: Vec::new(),
        skip: SkipTo::NextRow,
        skip_position: keyword,
        pattern: Vec::new(),
        within: None,
        defines: Vec::new(),
    };
    let mut seen_pattern = false;
    for (name, from, to) in parts {
        let part = &tokens[from..to];
        let at = position(&part[0]);
        match name.as_str() {
            "PARTITION" => clause.partition = column_list(part, at)?,
            "ORDER" => {
                for item in split_commas(after_by(part, at)?) {
                    let (column, ascending) = match item {
                        [c] => (word(c), true),
                        [c, d] if is_word(d, "ASC") => (word(c), true),
                        [c, d] if is_word(d, "DESC") => (word(c), false),
                        _ => (None, true),
                    };
                    let column = column.ok_or_else(|| {
                        SqlError::at("ORDER BY of MATCH_RECOGNIZE takes columns", at)
                    })?;
                    clause.order.push((column, ascending));
                }
            }
            "MEASURES" => {
                for item in split_commas(&part[1..]) {
                    clause.measures.push(measure(item, at)?);
                }
            }
            "ONE" => {
                if !matches!(part, [_, r, p, m] if is_word(r, "ROW") && is_word(p, "PER") && is_word(m, "MATCH"))
                {
                    return Err(SqlError::at("expected ONE ROW PER MATCH", at));
                }
            }
            "ALL" => {
                return Err(SqlError::at(
                    "ALL ROWS PER MATCH is not supported (as in Flink): use ONE ROW PER MATCH",
                    at,
                ));
            }
            "AFTER" => {
                clause.skip_position = at;
                clause.skip = skip(part, at)?;
            }
            "PATTERN" => {
                seen_pattern = true;
                let inner = match part {
                    [_, open, inner @ .., close]
                        if open.token == Token::LParen && close.token == Token::RParen =>
                    {
                        inner
                    }
                    _ => return Err(SqlError::at("expected PATTERN (...)", at)),
                };
                clause.pattern = pattern(inner, at)?;
            }
            "WITHIN" => clause.within = Some(interval_millis(&part[1..])?),
            "SUBSET" => {
                return Err(SqlError::at(
                    "SUBSET is not supported in MATCH_RECOGNIZE (as in Flink)",
                    at,
                ));
            }
            _ => {
                for item in split_commas(&part[1..]) {
                    match item {
                        [v, a, condition @ ..] if is_word(a, "AS") && !condition.is_empty() => {
                            let v = word(v).ok_or_else(|| {
                                SqlError::at("expected DEFINE <variable> AS <condition>", at)
                            })?;
                            clause.defines.push((v, condition.to_vec()));
                        }
                        _ => {
                            return Err(SqlError::at(
                                "expected DEFINE <variable> AS <condition>",
                                item.first().map(position).unwrap_or(at),
                            ));
                        }
                    }
                }
            }
        }
    }
    if !seen_pattern {
        return Err(SqlError::at("MATCH_RECOGNIZE needs a PATTERN", keyword));
    }
    Ok(clause)
}

fn word(token: &TokenWithSpan) -> Option<String> {
    match &token.token {
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    }
}

fn after_by(part: &[TokenWithSpan], at: Position) -> Result<&[TokenWithSpan], SqlError> {
    match part {
        [_, by, rest @ ..] if is_word(by, "BY") && !rest.is_empty() => Ok(rest),
        _ => Err(SqlError::at("expected BY and a list", at)),
    }
}

fn column_list(part: &[TokenWithSpan], at: Position) -> Result<Vec<String>, SqlError> {
    split_commas(after_by(part, at)?)
        .into_iter()
        .map(|item| match item {
            [c] => word(c).ok_or_else(|| SqlError::at("PARTITION BY takes columns", at)),
            _ => Err(SqlError::at(
                "PARTITION BY of MATCH_RECOGNIZE takes columns",
                item.first().map(position).unwrap_or(at),
            )),
        })
        .collect()
}

fn measure(item: &[TokenWithSpan], at: Position) -> Result<(Vec<TokenWithSpan>, String), SqlError> {
    let bad = || {
        SqlError::at(
            "expected MEASURES <expression> AS <name>",
            item.first().map(position).unwrap_or(at),
        )
    };
    match item {
        [expr @ .., a, name] if is_word(a, "AS") && !expr.is_empty() => {
            Ok((expr.to_vec(), word(name).ok_or_else(bad)?))
        }
        _ => Err(bad()),
    }
}

fn skip(part: &[TokenWithSpan], at: Position) -> Result<SkipTo, SqlError> {
    let bad = || {
        SqlError::at(
            "expected AFTER MATCH SKIP PAST LAST ROW, TO NEXT ROW, TO FIRST <variable> or TO LAST <variable>",
            at,
        )
    };
    let [_, m, s, rest @ ..] = part else {
        return Err(bad());
    };
    if !is_word(m, "MATCH") || !is_word(s, "SKIP") {
        return Err(bad());
    }
    match rest {
        [p, l, r] if is_word(p, "PAST") && is_word(l, "LAST") && is_word(r, "ROW") => {
            Ok(SkipTo::PastLastRow)
        }
        [t, n, r] if is_word(t, "TO") && is_word(n, "NEXT") && is_word(r, "ROW") => {
            Ok(SkipTo::NextRow)
        }
        [t, f, v] if is_word(t, "TO") && is_word(f, "FIRST") => {
            Ok(SkipTo::First(word(v).ok_or_else(bad)?))
        }
        [t, l, v] if is_word(t, "TO") && is_word(l, "LAST") => {
            Ok(SkipTo::Last(word(v).ok_or_else(bad)?))
        }
        [t, v] if is_word(t, "TO") => Ok(SkipTo::Last(word(v).ok_or_else(bad)?)),
        _ => Err(bad()),
    }
}

fn is_question(token: &TokenWithSpan) -> bool {
    matches!(&token.token, Token::Placeholder(p) if p == "?")
}

/// The terms of a pattern: variables in sequence, each with a quantifier.
fn pattern(tokens: &[TokenWithSpan], at: Position) -> Result<Vec<PatternTerm>, SqlError> {
    let refuse = |what: &str, token: &TokenWithSpan| {
        SqlError::at(
            format!("{what} is not supported in a MATCH_RECOGNIZE pattern (as in Flink)"),
            position(token),
        )
    };
    let number = |token: &TokenWithSpan| match &token.token {
        Token::Number(n, _) => n.parse::<u32>().ok(),
        _ => None,
    };
    let mut terms = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        let variable = match &token.token {
            Token::Word(w)
                if w.value.eq_ignore_ascii_case("PERMUTE") && w.quote_style.is_none() =>
            {
                return Err(refuse("PERMUTE", token));
            }
            Token::Word(w) => w.value.clone(),
            Token::LParen => return Err(refuse("a pattern group", token)),
            Token::Pipe => return Err(refuse("alternation (|)", token)),
            Token::Caret => return Err(refuse("an anchor (^)", token)),
            Token::Placeholder(p) if p.starts_with('$') => {
                return Err(refuse("an anchor ($)", token));
            }
            Token::LBrace => return Err(refuse("exclusion ({- -})", token)),
            _ => {
                return Err(SqlError::at(
                    format!("unexpected {} in PATTERN", token.token),
                    position(token),
                ));
            }
        };
        i += 1;
        let (mut min, mut max) = (1u32, Some(1u32));
        let mut quantified = true;
        let mut single = false;
        match tokens.get(i).map(|t| &t.token) {
            Some(Token::Mul) => (min, max) = (0, None),
            Some(Token::Plus) => (min, max) = (1, None),
            Some(Token::Placeholder(p)) if p == "?" => {
                (min, max) = (0, Some(1));
                single = true;
            }
            Some(Token::Placeholder(p)) if p == "??" => {
                return Err(refuse("the reluctant optional quantifier (??)", &tokens[i]));
            }
            Some(Token::LBrace) => {
                let close = (i..tokens.len())
                    .find(|&j| tokens[j].token == Token::RBrace)
                    .ok_or_else(|| SqlError::at("unclosed { in PATTERN", position(&tokens[i])))?;
                let inside = &tokens[i + 1..close];
                let bad =
                    || SqlError::at("expected {n}, {n,}, {,m} or {n,m}", position(&tokens[i]));
                (min, max) = match inside {
                    [n] => {
                        let n = number(n).ok_or_else(bad)?;
                        (n, Some(n))
                    }
                    [n, c] if c.token == Token::Comma => (number(n).ok_or_else(bad)?, None),
                    [c, m] if c.token == Token::Comma => (0, Some(number(m).ok_or_else(bad)?)),
                    [n, c, m] if c.token == Token::Comma => {
                        (number(n).ok_or_else(bad)?, Some(number(m).ok_or_else(bad)?))
                    }
                    _ => return Err(bad()),
                };
                if min == 0 {
                    return Err(SqlError::at(
                        format!(
                            "a brace quantifier from 0 rows ({{0,m}}, {{,m}}) is not supported (Flink: The from should be a positive number greater than 0); use {variable}? or {variable}*"
                        ),
                        position(&tokens[i]),
                    ));
                }
                i = close;
            }
            _ => quantified = false,
        }
        let mut greedy = true;
        if quantified {
            i += 1;
            if tokens.get(i).is_some_and(is_question) {
                greedy = false;
                i += 1;
            }
        }
        if max == Some(0) || max.is_some_and(|m| m < min) {
            return Err(SqlError::at(
                format!("the quantifier of {variable} allows no row"),
                position(token),
            ));
        }
        if !greedy && min == 0 && max == Some(1) {
            return Err(refuse("the reluctant optional quantifier (??)", token));
        }
        terms.push(PatternTerm {
            variable,
            min,
            max,
            greedy: greedy && !single && min != max.unwrap_or(u32::MAX),
            greedy_property: greedy && quantified && !single,
            position: position(token),
        });
    }
    if terms.is_empty() {
        return Err(SqlError::at("PATTERN is empty", at));
    }
    Ok(terms)
}
