//! The engine's one integration-test binary.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test on unexpected errors"
)]

mod checkpoint_differential;
mod checkpoint_operators;
mod checkpoint_ordered;
mod checkpoint_patterns;
mod checkpoints;
mod sources;
mod support;
mod window_aggregation;
