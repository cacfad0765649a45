//! End-to-end tests of the `runnel` binary; one test binary for the crate.

mod aws_routing;
mod cli;
mod config;
mod harness;
mod lifecycle;
mod sql_run;
