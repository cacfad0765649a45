//! A submitted job running on timely workers, in threads of its own.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use runnel_engine::checkpoint::{CheckpointConfig, CheckpointStorage, Coordinator};
use runnel_engine::connector::SinkProvider;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;

use crate::error::JobError;
use crate::figures::Figures;
use crate::submit::Submission;

pub struct RunningJob {
    context: Arc<JobContext>,
    handle: JoinHandle<Result<(), JobError>>,
    started: Instant,
}

/// Where a checkpointed job keeps its checkpoints, and whether it resumes
/// from the latest one.
pub struct Checkpointing {
    pub config: CheckpointConfig,
    pub storage: Arc<dyn CheckpointStorage>,
    pub resume: bool,
    /// State of the restored checkpoint that no operator takes is dropped
    /// instead of refusing the start.
    pub allow_non_restored_state: bool,
}

/// Starts `submission` on `cluster`; bare SELECT rows go to `results`.
/// The call returns at once; the job runs until its sources end, it is
/// stopped, or it fails.
pub fn start(
    submission: Submission,
    cluster: Cluster,
    results: Arc<dyn SinkProvider>,
    name: &str,
    checkpointing: Option<Checkpointing>,
) -> Result<RunningJob, JobError> {
    let context = Arc::new(JobContext::default());
    if let Some(checkpointing) = checkpointing {
        // A cluster's processes agree on the checkpoint to resume from
        // once connected, as the job starts.
        let coordinator = match cluster.processes {
            0 | 1 => Coordinator::new(
                checkpointing.config,
                checkpointing.storage,
                cluster.workers,
                checkpointing.resume,
            )
            .map_err(|e| JobError::Start(e.to_string()))?,
            _ => Coordinator::for_cluster(
                checkpointing.config,
                checkpointing.storage,
                cluster.workers,
                checkpointing.resume,
            ),
        };
        if checkpointing.allow_non_restored_state {
            coordinator.allow_non_restored_state();
        }
        let _ = context.checkpoints.set(Arc::new(coordinator));
    }
    let job_context = context.clone();
    let job = submission.job;
    let handle = std::thread::Builder::new()
        .name(format!("job {name}"))
        .spawn(move || {
            job.run(&cluster, job_context, results)
                .map_err(|e| JobError::Failed(e.to_string()))
        })
        .map_err(|e| JobError::Start(e.to_string()))?;
    Ok(RunningJob {
        context,
        handle,
        started: Instant::now(),
    })
}

impl RunningJob {
    pub fn context(&self) -> &Arc<JobContext> {
        &self.context
    }

    pub fn figures(&self) -> Figures {
        Figures::of(&self.context)
    }

    /// Ends the job as if its sources had ended: windows fire, sinks flush.
    pub fn stop(&self) {
        self.context.stop();
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits for the end of the job; its first error if it failed.
    pub fn wait(self) -> Result<(), JobError> {
        self.handle
            .join()
            .map_err(|_| JobError::Failed("the job's thread panicked".into()))?
    }
}
