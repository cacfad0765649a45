//! The engine's one integration-test binary.

mod support;
mod window_aggregation;
