//! Flink's function syntax DataFusion's parser does not read:
//! `TIMESTAMPADD(HOUR, 2, t)` and `TIMESTAMPDIFF(DAY, a, b)`, whose unit is
//! a bare word, become calls with the unit quoted; `FLOOR(t TO HOUR)` and
//! `CEIL(t TO HOUR)` become `flink_floor_time(t, 'HOUR')` and
//! `flink_ceil_time(t, 'HOUR')`; `LISTAGG(x)` gets Flink's default
//! separator, `LISTAGG(x, ',')`; `CAST(x AS BYTES)` is a cast to BYTEA.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_space, is_word, matching_paren};

pub fn rewrite(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    local_time_words(&mut tokens);
    let mut i = 0;
    while i < tokens.len() {
        let Some(open) = next_solid(&tokens, i + 1).filter(|&o| tokens[o].token == Token::LParen)
        else {
            i += 1;
            continue;
        };
        if is_word(&tokens[i], "LISTAGG")
            && let Some(close) = matching_paren(&tokens, open)
            && super::tokens::split_commas(&tokens[open + 1..close]).len() == 1
        {
            let like = tokens[close].clone();
            let comma = TokenWithSpan {
                token: Token::Comma,
                span: like.span,
            };
            let separator = TokenWithSpan {
                token: Token::SingleQuotedString(",".to_string()),
                span: like.span,
            };
            tokens.splice(close..close, [comma, separator]);
        } else if is_word(&tokens[i], "ARRAY_PREPEND")
            && let Some(close) = matching_paren(&tokens, open)
            && let [array, element] = super::tokens::split_commas(&tokens[open + 1..close])[..]
        {
            // Flink's ARRAY_PREPEND(array, element) is DataFusion's
            // array_prepend(element, array).
            let mut swapped = element.to_vec();
            swapped.push(TokenWithSpan {
                token: Token::Comma,
                span: tokens[close].span,
            });
            swapped.extend_from_slice(array);
            tokens.splice(open + 1..close, swapped);
        } else if (is_word(&tokens[i], "CAST") || is_word(&tokens[i], "TRY_CAST"))
            && let Some(close) = matching_paren(&tokens, open)
            && let Some(to) = top_level_word(&tokens, open, close, "AS")
            && let Some(kind) = next_solid(&tokens, to + 1).filter(|&k| k < close)
            && let Token::Word(word) = &mut tokens[kind].token
            && word.quote_style.is_none()
            && word.value.eq_ignore_ascii_case("BYTES")
        {
            // Flink's BYTES is DataFusion's BYTEA.
            word.value = "BYTEA".to_string();
        } else if is_word(&tokens[i], "UNIX_TIMESTAMP")
            && next_solid(&tokens, open + 1).is_some_and(|c| tokens[c].token == Token::RParen)
        {
            // Flink's UNIX_TIMESTAMP() is the clock now; DataFusion's takes text.
            if let Token::Word(word) = &mut tokens[i].token {
                word.value = "flink_unix_timestamp_now".to_string();
            }
        } else if is_word(&tokens[i], "TIMESTAMPADD") || is_word(&tokens[i], "TIMESTAMPDIFF") {
            if let Some(unit) = next_solid(&tokens, open + 1)
                && let Token::Word(word) = &tokens[unit].token
                && word.quote_style.is_none()
            {
                tokens[unit].token = Token::SingleQuotedString(word.value.to_ascii_uppercase());
            }
        } else if (is_word(&tokens[i], "FLOOR") || is_word(&tokens[i], "CEIL"))
            && let Some(close) = matching_paren(&tokens, open)
            && let Some(to) = top_level_to(&tokens, open, close)
            && let Some(unit) = next_solid(&tokens, to + 1).filter(|&u| u < close)
            && let Token::Word(word) = tokens[unit].token.clone()
        {
            let name = if is_word(&tokens[i], "FLOOR") {
                "flink_floor_time"
            } else {
                "flink_ceil_time"
            };
            if let Token::Word(function) = &mut tokens[i].token {
                function.value = name.to_string();
            }
            tokens[to].token = Token::Comma;
            tokens[unit].token = Token::SingleQuotedString(word.value.to_ascii_uppercase());
        }
        i += 1;
    }
    super::approximate_literals::rewrite(super::map_literal::rewrite(
        super::decimal_default::rewrite(super::predicates::rewrite(
            super::json_construct::rewrite(super::json_clauses::rewrite(super::is_json::rewrite(
                super::overlaps::rewrite(tokens),
            ))),
        )),
    ))
}

fn next_solid(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !is_space(&tokens[i]))
}

/// The `TO` directly inside the parentheses from `open` to `close`.
fn top_level_to(tokens: &[TokenWithSpan], open: usize, close: usize) -> Option<usize> {
    top_level_word(tokens, open, close, "TO")
}

/// The word `word` directly inside the parentheses from `open` to `close`.
fn top_level_word(
    tokens: &[TokenWithSpan],
    open: usize,
    close: usize,
    word: &str,
) -> Option<usize> {
    let mut depth = 0;
    for (i, token) in tokens.iter().enumerate().take(close).skip(open + 1) {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && is_word(token, word) => return Some(i),
            _ => {}
        }
    }
    None
}

/// Flink's `LOCALTIMESTAMP` and `LOCALTIME`, which DataFusion's parser
/// takes for column names, as calls: `flink_localtimestamp()` and
/// `current_time()` (a TIME(0) of the wall clock, `functions::time_of_day`). A word
/// followed by `(` or quoted is something else.
fn local_time_words(tokens: &mut Vec<TokenWithSpan>) {
    let mut i = 0;
    while i < tokens.len() {
        let call = if is_word(&tokens[i], "LOCALTIMESTAMP") {
            "flink_localtimestamp"
        } else if is_word(&tokens[i], "LOCALTIME") {
            "current_time"
        } else {
            i += 1;
            continue;
        };
        let followed_by_paren =
            next_solid(tokens, i + 1).is_some_and(|n| tokens[n].token == Token::LParen);
        let qualified = i > 0 && tokens[i - 1].token == Token::Period;
        if followed_by_paren || qualified {
            i += 1;
            continue;
        }
        let span = tokens[i].span;
        if let Token::Word(word) = &mut tokens[i].token {
            word.value = call.to_string();
        }
        let parens = [Token::LParen, Token::RParen].map(|token| TokenWithSpan { token, span });
        tokens.splice(i + 1..i + 1, parens);
        i += 3;
    }
}
