//! Window table functions: `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL ...))`.
//!
//! DataFusion has no window TVFs, so each call is replaced in the token
//! stream by a placeholder table whose schema is `t`'s plus `window_start`,
//! `window_end` and `window_time`. The planner recognises scans of the
//! placeholder and aggregates grouped by its window columns.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use runnel_engine::window::kind::WindowKind;

use crate::error::{Position, SqlError};
use crate::front::tokens::{
    interval_millis, is_space, is_word, matching_paren, position, solid, split_commas,
};

pub const PLACEHOLDER_PREFIX: &str = "__runnel_window_";

#[derive(Debug, Clone)]
pub struct WindowCall {
    pub placeholder: String,
    pub table: String,
    pub time_column: String,
    /// SESSION's `PARTITION BY` columns.
    pub partition: Vec<String>,
    pub kind: WindowKind,
    pub function: &'static str,
    pub position: Position,
}

impl WindowCall {
    /// Whether both calls give the same rows the same windows.
    fn same_windows(&self, other: &WindowCall) -> bool {
        self.table == other.table
            && self.time_column == other.time_column
            && self.partition == other.partition
            && self.kind == other.kind
            && self.function == other.function
    }
}

pub fn rewrite(
    tokens: Vec<TokenWithSpan>,
    next_id: &mut usize,
) -> Result<(Vec<TokenWithSpan>, Vec<WindowCall>), SqlError> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut calls = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Some((end, call)) = window_call_at(&tokens, i, next_id)? {
            // The same call twice reads the same placeholder table, so the
            // planner sees one subtree and reuses it (sub-plan reuse).
            let placeholder = match calls.iter().find(|c: &&WindowCall| c.same_windows(&call)) {
                Some(earlier) => earlier.placeholder.clone(),
                None => {
                    let placeholder = call.placeholder.clone();
                    calls.push(call);
                    placeholder
                }
            };
            out.push(TokenWithSpan {
                token: Token::make_word(&placeholder, None),
                span: tokens[i].span,
            });
            i = end + 1;
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    Ok((out, calls))
}

fn next_solid(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !is_space(&tokens[i]))
}

/// A window call starting at `i`: its last token's index and what it says.
fn window_call_at(
    tokens: &[TokenWithSpan],
    i: usize,
    next_id: &mut usize,
) -> Result<Option<(usize, WindowCall)>, SqlError> {
    if !is_word(&tokens[i], "TABLE") {
        return Ok(None);
    }
    let Some(outer_open) = next_solid(tokens, i + 1).filter(|&j| tokens[j].token == Token::LParen)
    else {
        return Ok(None);
    };
    let Some(func_at) = next_solid(tokens, outer_open + 1) else {
        return Ok(None);
    };
    let function = match ["TUMBLE", "HOP", "CUMULATE", "SESSION"]
        .into_iter()
        .find(|f| is_word(&tokens[func_at], f))
    {
        Some(f) => f,
        None => return Ok(None),
    };
    let at = position(&tokens[func_at]);
    let Some(inner_open) =
        next_solid(tokens, func_at + 1).filter(|&j| tokens[j].token == Token::LParen)
    else {
        return Ok(None);
    };
    let inner_close = matching_paren(tokens, inner_open)
        .ok_or_else(|| SqlError::at(format!("unclosed {function}("), at))?;
    let outer_close =
        matching_paren(tokens, outer_open).ok_or_else(|| SqlError::at("unclosed TABLE(", at))?;
    let args = split_commas(&tokens[inner_open + 1..inner_close]);
    let solid_args: Vec<Vec<TokenWithSpan>> = args.iter().map(|a| solid(a)).collect();
    let usage = || {
        SqlError::at(
            match function {
                "TUMBLE" => "TUMBLE takes (TABLE <table>, DESCRIPTOR(<time column>), <interval>)".to_string(),
                "SESSION" => {
                    "SESSION takes (TABLE <table> [PARTITION BY <columns>], DESCRIPTOR(<time column>), <gap interval>)".to_string()
                }
                _ => format!("{function} takes (TABLE <table>, DESCRIPTOR(<time column>), <interval>, <interval>)"),
            },
            at,
        )
    };
    // SESSION's PARTITION BY list is split by the commas too: the table
    // and its partition columns are every argument before DESCRIPTOR.
    let descriptor = solid_args
        .iter()
        .position(|a| a.first().is_some_and(|t| is_word(t, "DESCRIPTOR")))
        .ok_or_else(usage)?;
    let mut partition = Vec::new();
    let table = match solid_args.first().map(Vec::as_slice) {
        Some([t, name, rest @ ..]) if is_word(t, "TABLE") => {
            match rest {
                [] => {}
                [p, b, column]
                    if function == "SESSION" && is_word(p, "PARTITION") && is_word(b, "BY") =>
                {
                    partition.push(word_value(column).ok_or_else(usage)?);
                }
                _ => return Err(usage()),
            }
            word_value(name).ok_or_else(usage)?
        }
        _ => return Err(usage()),
    };
    for arg in &solid_args[1..descriptor] {
        match arg.as_slice() {
            [column] if !partition.is_empty() => {
                partition.push(word_value(column).ok_or_else(usage)?)
            }
            _ => return Err(usage()),
        }
    }
    let time_column = match solid_args[descriptor].as_slice() {
        [d, open, column, close]
            if is_word(d, "DESCRIPTOR")
                && open.token == Token::LParen
                && close.token == Token::RParen =>
        {
            word_value(column).ok_or_else(usage)?
        }
        _ => return Err(usage()),
    };
    let intervals = args[descriptor + 1..]
        .iter()
        .map(|a| interval_millis(a))
        .collect::<Result<Vec<_>, _>>()?;
    let kind = match (function, intervals.as_slice()) {
        ("TUMBLE", [size]) => WindowKind::tumble(*size),
        ("HOP", [slide, size]) => WindowKind::hop(*slide, *size),
        ("CUMULATE", [step, max]) => WindowKind::cumulate(*step, *max),
        ("SESSION", [gap]) => WindowKind::session(*gap),
        _ => return Err(usage()),
    }
    .map_err(|e| SqlError::at(e.to_string(), at))?;
    let placeholder = format!("{PLACEHOLDER_PREFIX}{next_id}");
    *next_id += 1;
    Ok(Some((
        outer_close,
        WindowCall {
            placeholder,
            table,
            time_column,
            partition,
            kind,
            function,
            position: at,
        },
    )))
}

fn word_value(token: &TokenWithSpan) -> Option<String> {
    match &token.token {
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    }
}
