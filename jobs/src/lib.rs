//! Runnel's job runner: the one place where a submitted script becomes a
//! running job. `runnel sql run`, `runnel bench nexmark` and the server's
//! job manager all go through it.
//!
//! - `submit`: a script planned into a `Submission` (the job, its EXPLAINs,
//!   what its plan reads), from async code or not.
//! - `run`: a submission started on timely workers in threads of its own
//!   (`RunningJob`): stop it, read its figures, wait for its end. A job
//!   that fails or panics ends alone; the caller gets the error.
//! - `figures`: what a job has done so far, read from its context.
//! - `progress`: a line on stderr every so often while a job runs.
//! - `checkpoints`: a job's checkpoints in RocksDB, large states in files
//!   beside it (`state_files`); `savepoints`, those kept by name.

pub mod at_rest;
pub mod checkpoints;
mod error;
mod figures;
mod progress;
mod run;
pub mod savepoints;
mod state_files;
mod submit;

pub use error::JobError;
pub use figures::{Figures, Watermark};
pub use progress::{Progress, human};
pub use run::{Checkpointing, RunningJob, start};
pub use runnel_engine::runtime::Cluster;
pub use submit::{Submission, submit, submit_blocking, submit_with_defaults};
