//! Updating operators: results that change as input arrives (an
//! unwindowed GROUP BY, a regular join), run on differential-dataflow
//! arrangements and emitted as a changelog.
//!
//! A changelog batch is an ordinary batch whose last column, `__op`, holds
//! Flink's row kind for each row. Inside differential, rows are Arrow row
//! format bytes with `+1`/`-1` multiplicities.

pub mod append_aggregate;
pub mod append_top_n;
pub mod changelog;
pub mod expiry;
pub mod group_aggregate;
pub(crate) mod grouped;
pub mod join;
pub mod top_n;
