//! The job runner's one integration-test binary: jobs submitted from
//! async code, their figures and plan, and a failing job ending alone.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test on unexpected errors"
)]

mod checkpoint_storage;
mod isolation;
mod submit;
