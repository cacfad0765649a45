//! The SQL crate's one integration-test binary: the sqllogictest files and
//! the join oracle tests.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test on unexpected errors"
)]

mod changelog_source;
mod create_table_as;
mod flink_functions;
mod front_fuzz;
mod jdbc;
mod joins;
mod keep_only;
mod late_rows;
mod match_recognize;
mod nexmark;
mod over;
#[path = "../../../firehose/tests/it/postgres.rs"]
#[allow(dead_code, reason = "the Redshift tests use the rest of the helper")]
mod postgres;
mod slt;
mod state_ttl;
mod support;
mod temporal_join;
mod temporal_sort;
mod updating;
mod wall_clock;
