//! Flink SQL types to Arrow types.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Position, SqlError};
use crate::front::tokens::position;

/// Parses one type from `tokens` (whitespace-free) starting at `*at`.
pub fn parse_type(tokens: &[TokenWithSpan], at: &mut usize) -> Result<DataType, SqlError> {
    let here = tokens
        .get(*at)
        .map(position)
        .unwrap_or(Position { line: 0, column: 0 });
    let Some(Token::Word(word)) = tokens.get(*at).map(|t| &t.token) else {
        return Err(SqlError::at("expected a type", here));
    };
    let name = word.value.to_ascii_uppercase();
    *at += 1;
    let args = parse_args(tokens, at)?;
    let data_type = match name.as_str() {
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "TINYINT" => DataType::Int8,
        "SMALLINT" => DataType::Int16,
        "INT" | "INTEGER" => DataType::Int32,
        "BIGINT" => DataType::Int64,
        "FLOAT" | "REAL" => DataType::Float32,
        "DOUBLE" => {
            if tokens
                .get(*at)
                .is_some_and(|t| crate::front::tokens::is_word(t, "PRECISION"))
            {
                *at += 1;
            }
            DataType::Float64
        }
        "DECIMAL" | "DEC" | "NUMERIC" => {
            let precision = args.first().copied().unwrap_or(10) as u8;
            let scale = args.get(1).copied().unwrap_or(0) as i8;
            DataType::Decimal128(precision, scale)
        }
        "STRING" | "VARCHAR" | "CHAR" => DataType::Utf8,
        "BYTES" | "VARBINARY" | "BINARY" => DataType::Binary,
        "DATE" => DataType::Date32,
        "TIME" => {
            if next_words(tokens, at, &["WITH", "LOCAL", "TIME", "ZONE"]) {
                return Err(SqlError::at(
                    "TIME WITH LOCAL TIME ZONE is not supported (Flink refuses it too)",
                    here,
                ));
            }
            next_words(tokens, at, &["WITHOUT", "TIME", "ZONE"]);
            time(args.first().copied()).map_err(|message| SqlError::at(message, here))?
        }
        "TIMESTAMP" => {
            if next_words(tokens, at, &["WITH", "LOCAL", "TIME", "ZONE"]) {
                timestamp(&args, Some("UTC"))
            } else {
                next_words(tokens, at, &["WITHOUT", "TIME", "ZONE"]);
                timestamp(&args, None)
            }
        }
        "TIMESTAMP_LTZ" => timestamp(&args, Some("UTC")),
        "ARRAY" => {
            expect(tokens, at, Token::Lt)?;
            let item = parse_type(tokens, at)?;
            close_angle(tokens, at)?;
            DataType::List(Arc::new(Field::new("element", item, true)))
        }
        "MAP" => {
            expect(tokens, at, Token::Lt)?;
            let key = parse_type(tokens, at)?;
            expect(tokens, at, Token::Comma)?;
            let value = parse_type(tokens, at)?;
            close_angle(tokens, at)?;
            let entries = Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", key, false),
                    Field::new("value", value, true),
                ])),
                false,
            );
            DataType::Map(Arc::new(entries), false)
        }
        "ROW" => {
            expect(tokens, at, Token::Lt)?;
            let mut fields = Vec::new();
            loop {
                let Some(Token::Word(field)) = tokens.get(*at).map(|t| &t.token) else {
                    return Err(SqlError::at("expected a ROW field name", here));
                };
                *at += 1;
                let field_type = parse_type(tokens, at)?;
                fields.push(Field::new(&field.value, field_type, true));
                if tokens.get(*at).is_some_and(|t| t.token == Token::Comma) {
                    *at += 1;
                } else {
                    break;
                }
            }
            close_angle(tokens, at)?;
            DataType::Struct(Fields::from(fields))
        }
        other => return Err(SqlError::at(format!("unsupported type {other}"), here)),
    };
    Ok(data_type)
}

/// Flink's TIME(`precision`): a TIME(0) in seconds of the day, a TIME(3)
/// in milliseconds, so that the type tells how a value casts to text.
/// Flink computes every TIME in milliseconds, so other precisions, which
/// cut a fraction elsewhere than either, are refused.
pub fn time(precision: Option<u64>) -> Result<DataType, String> {
    match precision {
        None | Some(0) => Ok(DataType::Time32(TimeUnit::Second)),
        Some(3) => Ok(DataType::Time32(TimeUnit::Millisecond)),
        Some(p) => Err(format!(
            "TIME({p}) is not supported; TIME takes precision 0 (the default) or 3"
        )),
    }
}

/// The precision of a TIME type `time` gives.
pub fn time_precision(unit: &TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        _ => 3,
    }
}

/// DataFusion's planner asks this first for the type of a CAST or a typed
/// literal: Flink's TIME and TIME(p) are `time`'s, not DataFusion's
/// TIME(9).
#[derive(Debug)]
pub struct FlinkTypePlanner;

impl datafusion::logical_expr::planner::TypePlanner for FlinkTypePlanner {
    fn plan_type_field(
        &self,
        sql_type: &datafusion::sql::sqlparser::ast::DataType,
    ) -> datafusion::common::Result<Option<datafusion::arrow::datatypes::FieldRef>> {
        use datafusion::sql::sqlparser::ast::{DataType as Sql, TimezoneInfo};
        match sql_type {
            Sql::Time(precision, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
                match time(*precision) {
                    Ok(data_type) => Ok(Some(Arc::new(Field::new("", data_type, true)))),
                    Err(message) => datafusion::common::plan_err!("{message}"),
                }
            }
            // `CAST(x AS TIMESTAMP_LTZ(3))`, which DataFusion does not name.
            Sql::Custom(name, modifiers)
                if name.to_string().eq_ignore_ascii_case("TIMESTAMP_LTZ") =>
            {
                let precision: Vec<u64> = match modifiers.as_slice() {
                    [] => Vec::new(),
                    [p] => match p.parse() {
                        Ok(p) => vec![p],
                        Err(_) => return datafusion::common::plan_err!("TIMESTAMP_LTZ({p})?"),
                    },
                    _ => return datafusion::common::plan_err!("TIMESTAMP_LTZ takes one precision"),
                };
                let data_type = timestamp(&precision, Some("UTC"));
                Ok(Some(Arc::new(Field::new("", data_type, true))))
            }
            _ => Ok(None),
        }
    }
}

fn timestamp(args: &[u64], zone: Option<&str>) -> DataType {
    // Flink's default precision is 6; Runnel keeps milliseconds unless more is asked for.
    let unit = match args.first() {
        Some(p) if *p > 6 => TimeUnit::Nanosecond,
        Some(p) if *p > 3 => TimeUnit::Microsecond,
        _ => TimeUnit::Millisecond,
    };
    DataType::Timestamp(unit, zone.map(Into::into))
}

fn parse_args(tokens: &[TokenWithSpan], at: &mut usize) -> Result<Vec<u64>, SqlError> {
    if tokens.get(*at).is_none_or(|t| t.token != Token::LParen) {
        return Ok(Vec::new());
    }
    *at += 1;
    let mut args = Vec::new();
    while let Some(token) = tokens.get(*at) {
        *at += 1;
        match &token.token {
            Token::Number(n, _) => args.push(
                n.parse()
                    .map_err(|_| SqlError::at("bad type argument", position(token)))?,
            ),
            Token::Comma => {}
            Token::RParen => return Ok(args),
            _ => return Err(SqlError::at("bad type argument", position(token))),
        }
    }
    Err(SqlError::invalid("unclosed type arguments"))
}

fn next_words(tokens: &[TokenWithSpan], at: &mut usize, words: &[&str]) -> bool {
    let matches = words.iter().enumerate().all(|(i, w)| {
        tokens
            .get(*at + i)
            .is_some_and(|t| crate::front::tokens::is_word(t, w))
    });
    if matches {
        *at += words.len();
    }
    matches
}

fn expect(tokens: &[TokenWithSpan], at: &mut usize, token: Token) -> Result<(), SqlError> {
    match tokens.get(*at) {
        Some(t) if t.token == token => {
            *at += 1;
            Ok(())
        }
        Some(t) => Err(SqlError::at(
            format!("expected {token} in type, found {}", t.token),
            position(t),
        )),
        None => Err(SqlError::invalid(format!("expected {token} in type"))),
    }
}

/// A `>` closing a type. Callers split `>>` into two `>` first.
fn close_angle(tokens: &[TokenWithSpan], at: &mut usize) -> Result<(), SqlError> {
    expect(tokens, at, Token::Gt)
}

/// `>>` closes two nested types; the tokenizer reads it as a shift.
pub fn split_shift_right(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    for token in tokens {
        if token.token == Token::ShiftRight {
            out.push(TokenWithSpan {
                token: Token::Gt,
                span: token.span,
            });
            out.push(TokenWithSpan {
                token: Token::Gt,
                span: token.span,
            });
        } else {
            out.push(token);
        }
    }
    out
}
