//! End-to-end tests of the `runnel` binary; one test binary for the crate.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test on unexpected errors"
)]

mod analytics_jobs;
mod at_rest;
mod auth;
mod aws_routing;
mod bench;
mod checkpoint_crash;
mod cli;
mod config;
mod console;
mod firehose_crash;
mod firehose_e2e;
mod firehose_s3;
mod harness;
mod kinesis_cbor;
mod kinesis_crash;
mod kinesis_e2e;
mod kinesis_subscribe;
mod lifecycle;
mod seaweed;
mod sql_run;
mod streams_cli;
mod tls;
mod video;
