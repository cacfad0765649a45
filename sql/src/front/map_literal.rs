//! Flink's map value constructor `MAP[k1, v1, k2, v2, ...]`, which
//! DataFusion's parser reads as something else, written as the call
//! `flink_map(k1, v1, k2, v2, ...)` (`functions/map_literal.rs` plans it).

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_space, is_word};

pub fn rewrite(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut i = 0;
    while i < tokens.len() {
        if is_word(&tokens[i], "MAP")
            && let Some(open) = (i + 1..tokens.len()).find(|&n| !is_space(&tokens[n]))
            && tokens[open].token == Token::LBracket
            && let Some(close) = matching_bracket(&tokens, open)
        {
            if let Token::Word(word) = &mut tokens[i].token {
                word.value = crate::functions::MAP_LITERAL.to_string();
            }
            tokens[open].token = Token::LParen;
            tokens[close].token = Token::RParen;
        }
        i += 1;
    }
    tokens
}

fn matching_bracket(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token.token {
            Token::LBracket => depth += 1,
            Token::RBracket => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}
