//! A bare `DECIMAL` (or `DEC`, `NUMERIC`) in a CAST is Flink's
//! DECIMAL(10, 0); DataFusion's is DECIMAL(38, 10). The precision and
//! scale are written out so that DataFusion casts to Flink's type, and
//! `DEC` is written `DECIMAL`.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_space, is_word, tokenize};

pub fn rewrite(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut i = 0;
    while i < tokens.len() {
        let decimal = ["DECIMAL", "DEC", "NUMERIC"]
            .iter()
            .any(|w| is_word(&tokens[i], w))
            && previous_solid(&tokens, i).is_some_and(|p| is_word(&tokens[p], "AS"));
        // DataFusion knows DEC by no name.
        if decimal && let Token::Word(word) = &mut tokens[i].token {
            word.value = "DECIMAL".to_string();
        }
        let bare =
            decimal && next_solid(&tokens, i + 1).is_none_or(|n| tokens[n].token != Token::LParen);
        if bare && let Ok(arguments) = tokenize("(10, 0)") {
            let span = tokens[i].span;
            let arguments: Vec<TokenWithSpan> = arguments
                .into_iter()
                .map(|t| TokenWithSpan {
                    token: t.token,
                    span,
                })
                .collect();
            let count = arguments.len();
            tokens.splice(i + 1..i + 1, arguments);
            i += count;
        }
        i += 1;
    }
    tokens
}

fn previous_solid(tokens: &[TokenWithSpan], before: usize) -> Option<usize> {
    (0..before).rev().find(|&i| !is_space(&tokens[i]))
}

fn next_solid(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !is_space(&tokens[i]))
}
