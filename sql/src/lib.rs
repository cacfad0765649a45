//! Runnel's SQL: Flink's dialect in, a dataflow job out.
//!
//! - `front`: the script as text: tokens with positions, statements,
//!   `CREATE TABLE` (DataFusion has no `WATERMARK FOR`), Flink types, and
//!   the window and temporal syntax rewritten into what DataFusion reads
//!   (window calls become placeholder tables).
//! - `catalog`, `functions`: the tables, views and settings of a session,
//!   and Runnel's own SQL functions, as a DataFusion `SessionContext`.
//! - `plan`: DataFusion's optimized `LogicalPlan` rewritten into a tree of
//!   `Node`s, one per engine operator; the planner chooses each physical
//!   operator and refuses, with a position, what the engine cannot run.
//! - `session`: a script's statements in order, into one `Job`.
//! - `explain`: the tree as EXPLAIN prints it.
//! - `dataflow`: a `Job` built into a timely dataflow and run.

mod catalog;
mod catalog_listing;
mod dataflow;
mod error;
mod explain;
mod front;
mod functions;
use runnel_timefmt as java_format;
mod plan;
mod session;

pub use dataflow::{Job, Output, Pipeline};
pub use error::{Position, SqlError};
pub use explain::{explain, explain_pipeline};
pub use front::ddl::{TableDef, WatermarkDef};
/// Flink's functions and semantics in a DataFusion context, for batch
/// answers that mean what Runnel's do.
pub use functions::register as register_flink_functions;
pub use plan::{GroupOperator, Node, TopNOperator, checkpoint_refusal};
pub use session::{Session, Submitted};
