//! Flink's `x IS [NOT] JSON [VALUE | SCALAR | ARRAY | OBJECT]`, which
//! DataFusion's parser does not read, written as `is_json(x, 'KIND')`
//! (negated with NOT). The operand is what directly precedes IS: a
//! literal, a (qualified) column, or a parenthesized expression or
//! function call.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::tokens::{is_word, solid, tokenize};

const KINDS: [&str; 4] = ["VALUE", "SCALAR", "ARRAY", "OBJECT"];

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    if !tokens.iter().any(|t| is_word(t, "JSON")) {
        return tokens;
    }
    let mut words = solid(&tokens);
    let mut changed = false;
    while let Some(json) = (1..words.len()).find(|&i| {
        is_word(&words[i], "JSON")
            && (is_word(&words[i - 1], "IS")
                || (i >= 2 && is_word(&words[i - 1], "NOT") && is_word(&words[i - 2], "IS")))
    }) {
        let negated = is_word(&words[json - 1], "NOT");
        let is_at = if negated { json - 2 } else { json - 1 };
        let Some(start) = operand_start(&words, is_at) else {
            break;
        };
        let kind = words
            .get(json + 1)
            .and_then(|t| KINDS.iter().find(|k| is_word(t, k)))
            .copied();
        let end = json + 1 + usize::from(kind.is_some());
        let operand = text(&words[start..is_at]);
        let call = format!(
            "{}is_json({operand}, '{}')",
            if negated { "NOT " } else { "" },
            kind.unwrap_or("VALUE")
        );
        let Ok(replacement) = tokenize(&format!("({call})")) else {
            break;
        };
        let mut out = words[..start].to_vec();
        out.extend(solid(&replacement));
        out.extend_from_slice(&words[end..]);
        words = out;
        changed = true;
    }
    if !changed {
        return tokens;
    }
    tokenize(&text(&words)).unwrap_or(tokens)
}

fn text(tokens: &[TokenWithSpan]) -> String {
    super::tokens::render_spaced(tokens)
}

/// Where the operand ending just before `is_at` begins.
pub(super) fn operand_start(words: &[TokenWithSpan], is_at: usize) -> Option<usize> {
    let last = is_at.checked_sub(1)?;
    match &words[last].token {
        Token::RParen => {
            let mut depth = 0usize;
            let mut open = None;
            for i in (0..=last).rev() {
                match words[i].token {
                    Token::RParen => depth += 1,
                    Token::LParen => {
                        depth -= 1;
                        if depth == 0 {
                            open = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let open = open?;
            // A function call's name belongs to it.
            match open.checked_sub(1).map(|i| &words[i].token) {
                Some(Token::Word(w)) if !is_keyword(&w.value) => Some(open - 1),
                _ => Some(open),
            }
        }
        Token::Word(_) => {
            let mut start = last;
            while start >= 2
                && words[start - 1].token == Token::Period
                && matches!(words[start - 2].token, Token::Word(_))
            {
                start -= 2;
            }
            Some(start)
        }
        Token::SingleQuotedString(_) | Token::Number(_, _) => Some(last),
        _ => None,
    }
}

/// Words before a parenthesis that are not a function's name.
fn is_keyword(word: &str) -> bool {
    [
        "SELECT", "WHERE", "AND", "OR", "NOT", "ON", "WHEN", "THEN", "ELSE", "IN",
    ]
    .iter()
    .any(|k| word.eq_ignore_ascii_case(k))
}
