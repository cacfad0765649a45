//! Flink's `CREATE TABLE`: physical columns, metadata columns, computed
//! columns, a `WATERMARK FOR`, a primary key and `WITH (...)` options.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Position, SqlError};
use crate::front::tokens::{
    interval_millis, is_word, matching_paren, position, render_spaced, solid, split_commas,
};
use crate::front::types::{parse_type, split_shift_right};

#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: String,
    /// The columns the connector gives, metadata columns among them in
    /// their declared places.
    pub physical: Vec<Field>,
    pub metadata: Vec<MetadataColumn>,
    /// `name AS expr`, as SQL text over the physical columns.
    pub computed: Vec<(String, String)>,
    pub watermark: Option<WatermarkDef>,
    pub primary_key: Vec<String>,
    /// `PARTITIONED BY (...)`: a filesystem sink writes `col=value/`
    /// directories of these.
    pub partition_keys: Vec<String>,
    pub options: BTreeMap<String, String>,
    pub position: Position,
}

/// `name TYPE METADATA [FROM 'key'] [VIRTUAL]`: a value the connector
/// knows of each record (its arrival time, its shard) rather than a field
/// of its payload.
#[derive(Debug, Clone)]
pub struct MetadataColumn {
    pub column: String,
    pub key: String,
    /// Read only: not part of the table's columns when it is written to.
    pub is_virtual: bool,
    pub position: Position,
}

#[derive(Debug, Clone)]
pub struct WatermarkDef {
    pub column: String,
    pub max_out_of_orderness: i64,
}

/// The head of `CREATE TABLE name [WITH (...)] AS <query>` (everything
/// before `AS`): a table whose columns the query will give.
pub fn parse_create_table_as(head: &[TokenWithSpan]) -> Result<TableDef, SqlError> {
    let tokens = solid(head);
    let at = after_name(&tokens)?;
    if let Some(open) = tokens.get(at).filter(|t| t.token == Token::LParen) {
        return Err(SqlError::at(
            "CREATE TABLE ... AS SELECT takes its columns from the query, not a column list",
            position(open),
        ));
    }
    parse_table(&with_empty_columns(&tokens, at), true)
}

/// The head of `CREATE TABLE name [(...)] [WITH (...)] LIKE base`
/// (everything before `LIKE`): the table's own part, whose column list
/// may be left out.
pub fn parse_create_table_like_head(head: &[TokenWithSpan]) -> Result<TableDef, SqlError> {
    let tokens = solid(head);
    let at = after_name(&tokens)?;
    if tokens.get(at).is_some_and(|t| t.token == Token::LParen) {
        return parse_table(&tokens, true);
    }
    parse_table(&with_empty_columns(&tokens, at), true)
}

/// Where the table name of `CREATE [TEMPORARY] TABLE [IF NOT EXISTS] name` ends.
fn after_name(tokens: &[TokenWithSpan]) -> Result<usize, SqlError> {
    let mut at = 1;
    if tokens.get(at).is_some_and(|t| is_word(t, "TEMPORARY")) {
        at += 1;
    }
    at += 1;
    if tokens.get(at).is_some_and(|t| is_word(t, "IF")) {
        at += 3;
    }
    table_name(tokens, &mut at)?;
    Ok(at)
}

/// `tokens` with an empty column list `()` put in at `at`.
fn with_empty_columns(tokens: &[TokenWithSpan], at: usize) -> Vec<TokenWithSpan> {
    let span = tokens
        .get(at.saturating_sub(1))
        .map_or(datafusion::sql::sqlparser::tokenizer::Span::empty(), |t| {
            t.span
        });
    let empty_columns = [Token::LParen, Token::RParen].map(|token| TokenWithSpan { token, span });
    let mut with_columns = tokens[..at].to_vec();
    with_columns.extend(empty_columns);
    with_columns.extend_from_slice(&tokens[at..]);
    with_columns
}

/// Parses `CREATE [TEMPORARY] TABLE [IF NOT EXISTS] name (...) [COMMENT '...']
/// [PARTITIONED BY (...)] WITH (...)` from whitespace-free tokens.
pub fn parse_create_table(tokens: &[TokenWithSpan]) -> Result<TableDef, SqlError> {
    parse_table(tokens, false)
}

/// `columns_from_query`: CREATE TABLE ... AS, whose columns come later.
fn parse_table(tokens: &[TokenWithSpan], columns_from_query: bool) -> Result<TableDef, SqlError> {
    let tokens = split_shift_right(solid(tokens));
    let start = tokens
        .first()
        .map(position)
        .unwrap_or(Position { line: 1, column: 1 });
    let mut at = 1; // CREATE
    if tokens.get(at).is_some_and(|t| is_word(t, "TEMPORARY")) {
        at += 1;
    }
    at += 1; // TABLE
    if tokens.get(at).is_some_and(|t| is_word(t, "IF")) {
        at += 3;
    }
    let name = table_name(&tokens, &mut at)?;
    let open = at;
    if tokens.get(open).is_none_or(|t| t.token != Token::LParen) {
        return Err(SqlError::at(
            "expected ( after the table name",
            here(&tokens, open, start),
        ));
    }
    let close = matching_paren(&tokens, open)
        .ok_or_else(|| SqlError::at("unclosed column list", position(&tokens[open])))?;
    let mut table = TableDef::empty(name, start);
    if close > open + 1 || !columns_from_query {
        for entry in split_commas(&tokens[open + 1..close]) {
            column_entry(entry, &mut table, start)?;
        }
    }
    at = close + 1;
    while let Some(token) = tokens.get(at) {
        if is_word(token, "COMMENT") {
            at += 2;
        } else if is_word(token, "PARTITIONED") {
            let open = at + 2;
            let close = matching_paren(&tokens, open)
                .ok_or_else(|| SqlError::at("unclosed PARTITIONED BY", position(token)))?;
            for column in &tokens[open + 1..close] {
                let Token::Word(word) = &column.token else {
                    continue;
                };
                if !table.physical.iter().any(|f| f.name() == &word.value) {
                    return Err(SqlError::at(
                        format!(
                            "partition column {} is not a physical column of {}",
                            word.value, table.name
                        ),
                        position(column),
                    ));
                }
                table.partition_keys.push(word.value.clone());
            }
            at = close + 1;
        } else if is_word(token, "WITH") {
            let open = at + 1;
            let close = matching_paren(&tokens, open)
                .ok_or_else(|| SqlError::at("unclosed WITH (...)", position(token)))?;
            for option in split_commas(&tokens[open + 1..close]) {
                match option {
                    [key, eq, value] if eq.token == Token::Eq => match (&key.token, &value.token) {
                        (Token::SingleQuotedString(k), Token::SingleQuotedString(v)) => {
                            table.options.insert(k.clone(), v.clone());
                        }
                        _ => {
                            return Err(SqlError::at("options are 'key' = 'value'", position(key)));
                        }
                    },
                    [] => {}
                    [first, ..] => {
                        return Err(SqlError::at("options are 'key' = 'value'", position(first)));
                    }
                }
            }
            at = close + 1;
        } else {
            return Err(SqlError::at(
                format!("unexpected {} in CREATE TABLE", token.token),
                position(token),
            ));
        }
    }
    if table.physical.is_empty() && !columns_from_query {
        return Err(SqlError::at(
            format!("table {} has no physical columns", table.name),
            start,
        ));
    }
    Ok(table)
}

fn here(tokens: &[TokenWithSpan], at: usize, fallback: Position) -> Position {
    tokens.get(at).map(position).unwrap_or(fallback)
}

pub(crate) fn table_name(tokens: &[TokenWithSpan], at: &mut usize) -> Result<String, SqlError> {
    let mut parts = Vec::new();
    loop {
        match tokens.get(*at).map(|t| &t.token) {
            Some(Token::Word(w)) => parts.push(w.value.clone()),
            _ => return Err(SqlError::invalid("expected a table name")),
        }
        *at += 1;
        if tokens.get(*at).is_some_and(|t| t.token == Token::Period) {
            *at += 1;
        } else {
            break;
        }
    }
    // catalog.database.table: Runnel has one namespace, the last part names it.
    Ok(parts.pop().unwrap_or_default())
}

fn column_entry(
    entry: &[TokenWithSpan],
    table: &mut TableDef,
    start: Position,
) -> Result<(), SqlError> {
    let Some(first) = entry.first() else {
        return Err(SqlError::at("empty column definition", start));
    };
    if is_word(first, "WATERMARK") {
        return watermark(entry, table);
    }
    if is_word(first, "PRIMARY") {
        let open = entry
            .iter()
            .position(|t| t.token == Token::LParen)
            .ok_or_else(|| SqlError::at("expected PRIMARY KEY (...)", position(first)))?;
        let close = matching_paren(entry, open)
            .ok_or_else(|| SqlError::at("unclosed PRIMARY KEY", position(first)))?;
        table.primary_key = entry[open + 1..close]
            .iter()
            .filter_map(|t| match &t.token {
                Token::Word(w) => Some(w.value.clone()),
                _ => None,
            })
            .collect();
        if !entry[close + 1..].iter().any(|t| is_word(t, "ENFORCED")) {
            return Err(SqlError::at(
                "Flink supports only PRIMARY KEY ... NOT ENFORCED",
                position(first),
            ));
        }
        return Ok(());
    }
    let Token::Word(name) = &first.token else {
        return Err(SqlError::at(
            format!("expected a column name, found {}", first.token),
            position(first),
        ));
    };
    if entry.get(1).is_some_and(|t| is_word(t, "AS")) {
        table
            .computed
            .push((name.value.clone(), render_spaced(&entry[2..])));
        return Ok(());
    }
    let mut at = 1;
    let data_type = parse_type(entry, &mut at)?;
    let mut nullable = true;
    while let Some(token) = entry.get(at) {
        if is_word(token, "NOT") && entry.get(at + 1).is_some_and(|t| is_word(t, "NULL")) {
            nullable = false;
            at += 2;
        } else if is_word(token, "COMMENT") {
            at += 2;
        } else if is_word(token, "METADATA") {
            let mut key = name.value.clone();
            at += 1;
            if entry.get(at).is_some_and(|t| is_word(t, "FROM")) {
                match entry.get(at + 1).map(|t| &t.token) {
                    Some(Token::SingleQuotedString(text)) => key = text.clone(),
                    _ => {
                        return Err(SqlError::at(
                            "expected METADATA FROM '<key>'",
                            position(token),
                        ));
                    }
                }
                at += 2;
            }
            let is_virtual = entry.get(at).is_some_and(|t| is_word(t, "VIRTUAL"));
            if is_virtual {
                at += 1;
            }
            table.metadata.push(MetadataColumn {
                column: name.value.clone(),
                key,
                is_virtual,
                position: position(first),
            });
        } else {
            return Err(SqlError::at(
                format!("unexpected {} in column {}", token.token, name.value),
                position(token),
            ));
        }
    }
    table
        .physical
        .push(Field::new(&name.value, data_type, nullable));
    Ok(())
}

/// `WATERMARK FOR col AS col [- INTERVAL ...]`.
fn watermark(entry: &[TokenWithSpan], table: &mut TableDef) -> Result<(), SqlError> {
    let at = position(&entry[0]);
    let column = match entry {
        [_, for_, column, as_, ..] if is_word(for_, "FOR") && is_word(as_, "AS") => {
            match &column.token {
                Token::Word(w) => w.value.clone(),
                _ => {
                    return Err(SqlError::at(
                        "expected WATERMARK FOR <column> AS <expression>",
                        at,
                    ));
                }
            }
        }
        _ => {
            return Err(SqlError::at(
                "expected WATERMARK FOR <column> AS <expression>",
                at,
            ));
        }
    };
    let expr = &entry[4..];
    let max_out_of_orderness = match expr {
        [c] if matches!(&c.token, Token::Word(w) if w.value == column) => 0,
        [c, minus, interval @ ..]
            if matches!(&c.token, Token::Word(w) if w.value == column)
                && minus.token == Token::Minus =>
        {
            interval_millis(interval)?
        }
        _ => {
            return Err(SqlError::at(
                format!(
                    "watermark must be `{column}` or `{column} - INTERVAL ...` (bounded out-of-orderness)"
                ),
                expr.first().map(position).unwrap_or(at),
            ));
        }
    };
    table.watermark = Some(WatermarkDef {
        column,
        max_out_of_orderness,
    });
    Ok(())
}

impl TableDef {
    /// A table of that name with nothing in it yet.
    pub fn empty(name: String, position: Position) -> Self {
        TableDef {
            name,
            physical: Vec::new(),
            metadata: Vec::new(),
            computed: Vec::new(),
            watermark: None,
            primary_key: Vec::new(),
            partition_keys: Vec::new(),
            options: BTreeMap::new(),
            position,
        }
    }

    pub fn physical_type(&self, column: &str) -> Option<&DataType> {
        self.physical
            .iter()
            .find(|f| f.name() == column)
            .map(Field::data_type)
    }
}
