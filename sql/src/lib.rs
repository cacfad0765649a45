//! Runnel's SQL: Flink's dialect in, a dataflow job out.
//!
//! A script is tokenized and split into statements. `CREATE TABLE` is read
//! here (DataFusion has no `WATERMARK FOR`); queries have their window table
//! functions replaced by placeholder tables, are planned and optimized by
//! DataFusion, and the resulting `LogicalPlan` is rewritten into engine
//! operators.

mod catalog;
mod ddl;
mod error;
mod field_use;
mod functions;
mod job;
mod joins;
mod legacy_windows;
mod planner;
mod ranking;
mod reuse;
mod shared_exprs;
mod source_options;
mod temporal;
mod tokens;
mod types;
mod updating;
mod upsert;
mod windows;

pub use ddl::{TableDef, WatermarkDef};
pub use error::{Position, SqlError};
pub use job::{Job, Output, Pipeline, Session, Submitted, explain};
