//! Flink's lookup and temporal joins, `JOIN t FOR SYSTEM_TIME AS OF
//! o.proc_time AS r ON ...`, against a bounded table: the clause is taken
//! out and the join runs as a regular (updating) join. For a table that does
//! not change while the job runs, which is what a bounded dimension table
//! is, every probe row meets the same rows either way. Against a table that
//! does change (a versioned table, a changelog, an unbounded source) a
//! regular join would join each row with every version, so the session
//! refuses those (`Temporal::table`).

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::Position;
use crate::front::tokens::{is_space, is_word, position};

/// A `FOR SYSTEM_TIME AS OF` clause that was taken out: the table it
/// followed and where the clause was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Temporal {
    pub table: String,
    pub position: Position,
}

pub fn rewrite(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, Vec<Temporal>) {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut clauses = Vec::new();
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
                let at = tokens[i..end]
                    .iter()
                    .find(|t| !is_space(t))
                    .map_or(tokens[i].clone(), Clone::clone);
                clauses.push(Temporal {
                    table,
                    position: position(&at),
                });
            }
            i = end;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    (out, clauses)
}

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
        rewrite(tokens)
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
            rewrite(tokens).1,
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
