//! Flink's TIME literals, `TIME '12:13:14'` and `TIME '12:13:14.567'`,
//! whose type's precision is the number of fraction digits written (a
//! CAST of the same text to TIME is a TIME(0)): each becomes the CAST to
//! that precision. A literal Calcite refuses (`TIME '12:13'`) is refused
//! here with its reason; one whose precision Runnel has no type for
//! (`TIME '12:13:14.5'`, a TIME(1)) is refused naming it.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_space, is_word, position, tokenize};
use crate::error::SqlError;

pub fn rewrite(mut tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, SqlError> {
    let mut i = 0;
    while i < tokens.len() {
        let text_at = (i + 1..tokens.len()).find(|&t| !is_space(&tokens[t]));
        let preceded_by_period = i > 0 && tokens[i - 1].token == Token::Period;
        let (true, Some(text_at), false) =
            (is_word(&tokens[i], "TIME"), text_at, preceded_by_period)
        else {
            i += 1;
            continue;
        };
        let Token::SingleQuotedString(text) = &tokens[text_at].token else {
            i += 1;
            continue;
        };
        let at = position(&tokens[i]);
        let Some((_, digits)) = runnel_timefmt::time_of_day::parse_literal(text) else {
            return Err(SqlError::at(
                format!("Illegal TIME literal '{text}': not in format 'HH:mm:ss'"),
                at,
            ));
        };
        let precision = match digits {
            0 => "",
            3 => "(3)",
            _ => {
                return Err(SqlError::at(
                    format!(
                        "TIME literal '{text}' is a TIME({digits}), which is not supported; \
                         write no fraction or three digits (TIME(0) or TIME(3))"
                    ),
                    at,
                ));
            }
        };
        let quoted = text.replace('\'', "''");
        let mut cast = tokenize(&format!("CAST('{quoted}' AS TIME{precision})"))?;
        for token in &mut cast {
            token.span = tokens[i].span;
        }
        let added = cast.len();
        tokens.splice(i..=text_at, cast);
        i += added;
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::tokens::render;

    fn rewritten(sql: &str) -> Result<String, SqlError> {
        rewrite(tokenize(sql)?).map(|tokens| render(&tokens))
    }

    #[test]
    fn literals_become_casts_of_their_precision() {
        assert_eq!(
            rewritten("SELECT TIME '12:13:14', TIME  '1:2:3.456'").unwrap(),
            "SELECT CAST('12:13:14' AS TIME), CAST('1:2:3.456' AS TIME(3))"
        );
        // A column named time, and CAST(x AS TIME), stay as they are.
        assert_eq!(
            rewritten("SELECT t.time, CAST(s AS TIME) FROM t").unwrap(),
            "SELECT t.time, CAST(s AS TIME) FROM t"
        );
    }

    #[test]
    fn literals_flink_refuses_are_refused() {
        let error = rewritten("SELECT TIME '12:13'").unwrap_err().to_string();
        assert!(error.contains("Illegal TIME literal '12:13'"), "{error}");
        let error = rewritten("SELECT TIME '12:13:14.5'")
            .unwrap_err()
            .to_string();
        assert!(error.contains("TIME(1)"), "{error}");
    }
}
