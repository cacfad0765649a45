//! The connectors' one integration-test binary.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test on unexpected errors"
)]

mod checkpoints;
mod kinesis;
mod nexmark;
