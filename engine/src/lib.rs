//! Runnel's dataflow core: timely-dataflow workers whose timestamps are
//! event-time watermarks (`time`) and whose data are Arrow record batches
//! (`batch`).
//!
//! - Running a job: `runtime` (workers, cluster, exchange), `context`
//!   (the counters and the first error every operator shares), `connector`
//!   (what sources and sinks a planned job gets), `source`, `sink`,
//!   `lateness`.
//! - Operators: `stateless` (projections and filters), `window` (window
//!   kinds, assignment, aggregation, sessions), `join` (the kernel, the
//!   interval join, the append-only join, the event-time temporal join,
//!   the lookup join), `over` (OVER aggregations),
//!   `pattern` (MATCH_RECOGNIZE), `time_order` (rows held until the
//!   watermark passes their time, for both), `kept_rows` (rows kept by
//!   reference, for MATCH_RECOGNIZE and the temporal join),
//!   `rank` (per-closed-time
//!   functions, deduplication, append-only top-N), `grouped` (the
//!   append-only GROUP BY and its states), `updating` (differential
//!   operators and the state TTL).
//! - The changelog contract (`changelog`): a batch whose last column
//!   `__op` holds Flink's row kinds.

pub mod batch;
pub mod changelog;
pub mod checkpoint;
pub mod connector;
pub mod context;
pub mod error;
pub mod fast_hash;
pub mod grouped;
pub mod join;
pub mod kept_rows;
pub mod lateness;
pub mod over;
pub mod pattern;
pub mod rank;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod stateless;
pub mod time;
pub mod time_order;
pub mod updating;
pub mod window;

pub use error::EngineError;
