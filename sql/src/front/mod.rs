//! The script as text, before DataFusion sees it: tokens with their
//! positions, `CREATE TABLE` with Flink's types, and the window and
//! temporal syntax that DataFusion does not read, rewritten.

pub(crate) mod approximate_literals;
pub(crate) mod create_like;
pub(crate) mod ddl;
pub(crate) mod decimal_default;
pub(crate) mod expression_names;
pub(crate) mod function_syntax;
pub(crate) mod intervals;
pub(crate) mod is_json;
pub(crate) mod json_clauses;
pub(crate) mod json_construct;
pub(crate) mod legacy_windows;
pub(crate) mod map_literal;
pub(crate) mod match_recognize;
pub(crate) mod overlaps;
pub(crate) mod predicates;
pub(crate) mod temporal;
pub(crate) mod time_literals;
pub(crate) mod tokens;
pub(crate) mod types;
pub(crate) mod unnest;
pub(crate) mod windows;
