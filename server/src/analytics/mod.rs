//! Analytics: SQL jobs inside the server.
//!
//! - `manager`: submits, runs, watches, stops and removes jobs; jobs that
//!   were running when the server went down run again when it comes back.
//! - `restart`: Flink's restart strategies, from the script's settings.
//! - `store`: the jobs kept in the data dir (`jobs.definitions`).
//! - `results`: a bare SELECT's changelog rows, broadcast to followers.
//! - `rest`: `/v1/jobs`, with `describe` rendering a job and its figures.
//! - `kda`: the Kinesis Analytics V2 API, applications over the same jobs.

mod checkpoints;
mod describe;
pub mod kda;
mod manager;
mod rest;
mod restart;
mod results;
mod store;

pub use manager::JobManager;
pub use rest::routes;
pub use store::{COLUMN_FAMILIES, JobStore};
