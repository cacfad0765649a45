//! `CREATE TABLE t2 (...) WITH (...) LIKE t1 [(like options)]`: a table
//! made from another's definition, merged as Flink merges them. Without
//! options Flink's default applies: `INCLUDING ALL OVERWRITING OPTIONS`.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::ddl::TableDef;
use super::tokens::{is_word, matching_paren, position, solid};
use crate::error::{Position, SqlError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    Including,
    Excluding,
    Overwriting,
}

/// What of the base table the new one takes, per feature.
#[derive(Debug, Clone, Copy)]
struct Strategies {
    constraints: Merge,
    partitions: Merge,
    generated: Merge,
    metadata: Merge,
    options: Merge,
    watermarks: Merge,
}

impl Default for Strategies {
    fn default() -> Self {
        Strategies {
            constraints: Merge::Including,
            partitions: Merge::Including,
            generated: Merge::Including,
            metadata: Merge::Including,
            options: Merge::Overwriting,
            watermarks: Merge::Including,
        }
    }
}

pub struct LikeClause {
    pub base: String,
    pub base_at: Position,
    strategies: Strategies,
}

/// Where a top-level `LIKE` splits a CREATE TABLE, if it has one.
pub fn split_like(tokens: &[TokenWithSpan]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ if depth == 0 && is_word(token, "LIKE") => return Some(i),
            _ => {}
        }
    }
    None
}

/// `LIKE base [(INCLUDING ALL EXCLUDING OPTIONS ...)]`, from `LIKE` on.
pub fn parse_like(tail: &[TokenWithSpan]) -> Result<LikeClause, SqlError> {
    let tokens = solid(tail);
    let like_at = tokens
        .first()
        .map(position)
        .unwrap_or(Position { line: 1, column: 1 });
    let mut at = 1;
    let base_at = tokens.get(at).map(position).unwrap_or(like_at);
    let base = super::ddl::table_name(&tokens, &mut at)
        .map_err(|_| SqlError::at("expected a table name after LIKE", like_at))?;
    let mut strategies = Strategies::default();
    if let Some(open) = tokens.get(at).filter(|t| t.token == Token::LParen) {
        let close = matching_paren(&tokens, at)
            .ok_or_else(|| SqlError::at("unclosed LIKE options", position(open)))?;
        let options = &tokens[at + 1..close];
        for pair in options.chunks(2) {
            let [how, what] = pair else {
                return Err(SqlError::at(
                    "LIKE options are pairs such as INCLUDING ALL or EXCLUDING OPTIONS",
                    position(&pair[0]),
                ));
            };
            apply(&mut strategies, how, what)?;
        }
        at = close + 1;
    }
    if let Some(extra) = tokens.get(at) {
        return Err(SqlError::at(
            format!("unexpected {} after LIKE {base}", extra.token),
            position(extra),
        ));
    }
    Ok(LikeClause {
        base,
        base_at,
        strategies,
    })
}

fn apply(
    strategies: &mut Strategies,
    how: &TokenWithSpan,
    what: &TokenWithSpan,
) -> Result<(), SqlError> {
    let merge = if is_word(how, "INCLUDING") {
        Merge::Including
    } else if is_word(how, "EXCLUDING") {
        Merge::Excluding
    } else if is_word(how, "OVERWRITING") {
        Merge::Overwriting
    } else {
        return Err(SqlError::at(
            "a LIKE option begins with INCLUDING, EXCLUDING or OVERWRITING",
            position(how),
        ));
    };
    let fixed = |merge: Merge| -> Result<Merge, SqlError> {
        match merge {
            Merge::Overwriting => Err(SqlError::at(
                "OVERWRITING is not a strategy for ALL, CONSTRAINTS or PARTITIONS (as in Flink)",
                position(how),
            )),
            other => Ok(other),
        }
    };
    if is_word(what, "ALL") {
        let all = fixed(merge)?;
        *strategies = Strategies {
            constraints: all,
            partitions: all,
            generated: all,
            metadata: all,
            options: all,
            watermarks: all,
        };
    } else if is_word(what, "CONSTRAINTS") {
        strategies.constraints = fixed(merge)?;
    } else if is_word(what, "PARTITIONS") {
        strategies.partitions = fixed(merge)?;
    } else if is_word(what, "GENERATED") {
        strategies.generated = merge;
    } else if is_word(what, "METADATA") {
        strategies.metadata = merge;
    } else if is_word(what, "OPTIONS") {
        strategies.options = merge;
    } else if is_word(what, "WATERMARKS") {
        strategies.watermarks = merge;
    } else {
        return Err(SqlError::at(
            "a LIKE option names ALL, CONSTRAINTS, PARTITIONS, GENERATED, METADATA, OPTIONS or WATERMARKS",
            position(what),
        ));
    }
    Ok(())
}

/// `derived` (the statement's own columns and clauses) over `base`.
pub fn merge(base: &TableDef, derived: TableDef, like: &LikeClause) -> Result<TableDef, SqlError> {
    let s = like.strategies;
    let at = derived.position;
    let clash = |what: &str| -> SqlError {
        SqlError::at(
            format!(
                "table {} and its LIKE base {} both define {what}; use EXCLUDING or OVERWRITING for it",
                derived.name, base.name
            ),
            at,
        )
    };
    let mut table = TableDef::empty(derived.name.clone(), at);
    // Physical columns always come over, the base's first; a metadata
    // column only as METADATA says.
    let overwritten_metadata = |name: &str| derived.metadata.iter().any(|m| m.column == name);
    for field in &base.physical {
        let metadata = base.metadata.iter().find(|m| &m.column == field.name());
        match metadata {
            None => table.physical.push(field.clone()),
            Some(_) if s.metadata == Merge::Excluding => {}
            Some(_) if s.metadata == Merge::Overwriting && overwritten_metadata(field.name()) => {}
            Some(column) => {
                table.physical.push(field.clone());
                table.metadata.push(column.clone());
            }
        }
    }
    for field in &derived.physical {
        if table.physical.iter().any(|f| f.name() == field.name()) {
            if derived.metadata.iter().any(|m| &m.column == field.name()) {
                return Err(clash(&format!("the metadata column {}", field.name())));
            }
            return Err(clash(&format!("the column {}", field.name())));
        }
        table.physical.push(field.clone());
    }
    table.metadata.extend(derived.metadata.iter().cloned());
    match s.generated {
        Merge::Excluding => {}
        Merge::Including => {
            if let Some((name, _)) = derived
                .computed
                .iter()
                .find(|(name, _)| base.computed.iter().any(|(b, _)| b == name))
            {
                return Err(clash(&format!("the computed column {name}")));
            }
            table.computed.extend(base.computed.iter().cloned());
        }
        Merge::Overwriting => table.computed.extend(
            base.computed
                .iter()
                .filter(|(name, _)| !derived.computed.iter().any(|(d, _)| d == name))
                .cloned(),
        ),
    }
    table.computed.extend(derived.computed.iter().cloned());
    table.watermark = match (s.watermarks, &base.watermark, &derived.watermark) {
        (Merge::Including, Some(_), Some(_)) => return Err(clash("a WATERMARK")),
        (Merge::Excluding, _, derived) => derived.clone(),
        (_, base, None) => base.clone(),
        (_, _, derived) => derived.clone(),
    };
    table.primary_key = match (
        s.constraints,
        base.primary_key.is_empty(),
        derived.primary_key.is_empty(),
    ) {
        (Merge::Including, false, false) => return Err(clash("a PRIMARY KEY")),
        (Merge::Including, false, true) => base.primary_key.clone(),
        _ => derived.primary_key.clone(),
    };
    table.partition_keys = match (
        s.partitions,
        base.partition_keys.is_empty(),
        derived.partition_keys.is_empty(),
    ) {
        (Merge::Including, false, false) => return Err(clash("PARTITIONED BY")),
        (Merge::Including, false, true) => base.partition_keys.clone(),
        _ => derived.partition_keys.clone(),
    };
    match s.options {
        Merge::Excluding => {}
        Merge::Including => {
            if let Some(key) = derived
                .options
                .keys()
                .find(|k| base.options.contains_key(*k))
            {
                return Err(clash(&format!("the option '{key}'")));
            }
            table.options = base.options.clone();
        }
        Merge::Overwriting => table.options = base.options.clone(),
    }
    table.options.extend(derived.options);
    Ok(table)
}
