//! A number literal with an exponent (`1e3`, `2.5E-1`) is Flink's DOUBLE,
//! while one with a point alone is a DECIMAL (`catalog.rs` has DataFusion
//! read it so). DataFusion would make `1e3` a DECIMAL of negative scale,
//! which prints as `1000` where Flink prints `1000.0`, so it is written
//! as the DOUBLE it is: `CAST('1e3' AS DOUBLE)`.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::tokenize;

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    for token in tokens {
        match &token.token {
            Token::Number(text, _) if text.contains(['e', 'E']) => {
                match tokenize(&format!("CAST('{text}' AS DOUBLE)")) {
                    Ok(cast) => out.extend(cast.into_iter().map(|t| TokenWithSpan {
                        token: t.token,
                        span: token.span,
                    })),
                    Err(_) => out.push(token),
                }
            }
            _ => out.push(token),
        }
    }
    out
}
