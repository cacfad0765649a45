//! A number literal with an exponent (`1e3`, `2.5E-1`) is Flink's DOUBLE,
//! while one with a point alone is a DECIMAL (`catalog.rs` has DataFusion
//! read it so). DataFusion would make `1e3` a DECIMAL of negative scale,
//! which prints as `1000` where Flink prints `1000.0`, so it is written
//! as the DOUBLE it is: `CAST('1e3' AS DOUBLE)`.
//!
//! Flink (Calcite) counts every digit of a DECIMAL literal's text in its
//! precision, leading zeros too (`0.5` is DECIMAL(2, 1), `00.5`
//! DECIMAL(3, 1)), where DataFusion counts significant digits
//! (DECIMAL(1, 1)); a quotient's scale follows the divisor's precision, so
//! such a literal is written with Flink's type. A literal that ends in its
//! point (`1.`) is Flink's INT.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::tokenize;

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    for token in tokens {
        match &token.token {
            Token::Number(text, _) if text.contains(['e', 'E']) => {
                splice(&mut out, &format!("CAST('{text}' AS DOUBLE)"), token);
            }
            Token::Number(text, long) if text.ends_with('.') && text.len() > 1 => {
                let integer = text.trim_end_matches('.').to_string();
                out.push(TokenWithSpan {
                    token: Token::Number(integer, *long),
                    span: token.span,
                });
            }
            Token::Number(text, _) if text.starts_with('0') && text.contains('.') => {
                let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
                let precision = whole.len() + fraction.len();
                if precision <= 38 {
                    let cast = format!("CAST({text} AS DECIMAL({precision}, {}))", fraction.len());
                    splice(&mut out, &cast, token);
                } else {
                    out.push(token);
                }
            }
            _ => out.push(token),
        }
    }
    out
}

/// `text`'s tokens in place of `token`, at its place in the script.
fn splice(out: &mut Vec<TokenWithSpan>, text: &str, token: TokenWithSpan) {
    match tokenize(text) {
        Ok(tokens) => out.extend(tokens.into_iter().map(|t| TokenWithSpan {
            token: t.token,
            span: token.span,
        })),
        Err(_) => out.push(token),
    }
}
