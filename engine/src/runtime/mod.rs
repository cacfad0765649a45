//! Runs a dataflow on timely workers: threads in this process, or a cluster
//! of processes through timely's own networking.

pub mod cluster_net;
pub mod exchange;
pub mod partition;

use std::sync::Arc;
use std::time::Duration;

use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use crate::context::JobContext;
use crate::error::EngineError;
use crate::time::Watermark;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Worker threads per process.
    pub workers: usize,
    pub processes: usize,
    pub process_id: usize,
    /// `host:port` of every process, in process-id order.
    pub hosts: Vec<String>,
}

impl Cluster {
    pub fn local(workers: usize) -> Self {
        Cluster {
            workers: workers.max(1),
            processes: 1,
            process_id: 0,
            hosts: Vec::new(),
        }
    }

    /// Allocators for this process's workers (connecting to the cluster
    /// first, if there is one).
    fn allocators(&self) -> Result<crate::runtime::cluster_net::Networked, EngineError> {
        if self.processes > 1 {
            if self.hosts.len() != self.processes {
                return Err(EngineError::Plan(format!(
                    "a cluster of {} processes needs {} hosts, got {}",
                    self.processes,
                    self.processes,
                    self.hosts.len()
                )));
            }
            if self.process_id >= self.processes {
                return Err(EngineError::Plan(format!(
                    "process id {} is out of range for {} processes",
                    self.process_id, self.processes
                )));
            }
            return crate::runtime::cluster_net::connect(
                &self.hosts,
                self.process_id,
                self.workers,
            );
        }
        let communication = if self.workers > 1 {
            timely::CommunicationConfig::Process(self.workers)
        } else {
            timely::CommunicationConfig::Thread
        };
        let (builders, guard) = communication.try_build().map_err(EngineError::Runtime)?;
        Ok((builders, guard, Vec::new()))
    }
}

/// Operators schedule their own wake-ups (a source's next poll, a
/// timer); this bound only lets an idle worker see that its job was
/// aborted by another thread. A short one costs an idle job CPU on every
/// worker.
const PARK_AT_MOST: Duration = Duration::from_millis(100);

/// Builds the dataflow on every worker with `build` and steps it until the
/// returned probe is done (every source has ended). Returns the job's first
/// error, if any.
pub fn run<F>(cluster: &Cluster, context: Arc<JobContext>, build: F) -> Result<(), EngineError>
where
    F: Fn(&mut Worker, Arc<JobContext>) -> Result<ProbeHandle<Watermark>, EngineError>
        + Send
        + Sync
        + 'static,
{
    let (allocators, network, control) = cluster.allocators()?;
    if let Some(coordinator) = context.checkpoints.get()
        && cluster.processes > 1
    {
        coordinator.join_cluster(control, cluster.process_id, &|| context.aborted())?;
    }
    let worker_context = context.clone();
    let config = timely::WorkerConfig::default();
    let guards = timely::execute::execute_from(allocators, network, config, move |worker| {
        // A panic in an operator ends this job, not the process: the
        // worker says so and every other worker of the job leaves its loop.
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let checkpoints = worker_context.checkpoints.get().cloned();
            if let Some(coordinator) = &checkpoints {
                coordinator.install(worker);
            }
            let built = build(worker, worker_context.clone()).and_then(|probe| {
                if let Some(coordinator) = &checkpoints {
                    coordinator.check_restored()?;
                }
                Ok(probe)
            });
            match (built, &checkpoints) {
                (Ok(probe), None) => {
                    while !probe.done() && !worker_context.aborted() {
                        worker.step_or_park(Some(PARK_AT_MOST));
                        take_decode_error(&worker_context);
                    }
                }
                (Ok(probe), Some(coordinator)) => {
                    run_checkpointed(worker, &probe, coordinator, &worker_context)
                }
                (Err(error), _) => worker_context.abort(error),
            }
            crate::checkpoint::worker::uninstall();
        }));
        if let Err(panic) = stepped {
            worker_context.abort(EngineError::Panic(panic_message(panic.as_ref())));
        }
        // Timely steps a worker's dataflows until they complete; an aborted
        // one never will, so it is dropped (its operators with it).
        if worker_context.aborted() {
            for dataflow in worker.installed_dataflows() {
                worker.drop_dataflow(dataflow);
            }
        }
    })
    .map_err(EngineError::Runtime)?;
    // Timely's network threads panic when another process is gone, and
    // joining them re-raises it: the job's own error says why.
    let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join()));
    let results = match joined {
        Ok(results) => results,
        Err(panic) => {
            return Err(context.take_error().unwrap_or_else(|| {
                EngineError::Runtime(format!(
                    "the cluster's network failed: {}",
                    panic_message(panic.as_ref())
                ))
            }));
        }
    };
    for result in results {
        result.map_err(EngineError::Runtime)?;
    }
    match context.take_error() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

fn take_decode_error(context: &JobContext) {
    if let Some(error) = crate::batch::take_decode_error() {
        context.abort(EngineError::Runtime(error));
    }
}

/// The worker loop of a checkpointed job: between steps, every worker
/// joins the rounds the coordinator calls; the last round, once every
/// worker's input has ended, commits what exactly-once sinks still hold.
fn run_checkpointed(
    worker: &mut Worker,
    probe: &ProbeHandle<Watermark>,
    coordinator: &crate::checkpoint::Coordinator,
    context: &JobContext,
) {
    let mut reported_done = false;
    // The newest checkpoint this worker's sinks heard is durable.
    let mut notified = 0;
    run_rounds(
        worker,
        probe,
        coordinator,
        context,
        &mut notified,
        &mut reported_done,
    );
    // A commit still running belongs to this job: it ends first.
    coordinator.settle();
}

fn run_rounds(
    worker: &mut Worker,
    probe: &ProbeHandle<Watermark>,
    coordinator: &crate::checkpoint::Coordinator,
    context: &JobContext,
    notified: &mut u64,
    reported_done: &mut bool,
) {
    let index = worker.index();
    while !context.aborted() {
        if let Err(error) = coordinator
            .catch_up(notified)
            .and_then(|()| coordinator.check_peers())
        {
            context.abort(error);
            return;
        }
        if coordinator.due(index, probe.done(), reported_done) {
            match coordinator.round(worker, context, notified) {
                Ok(crate::checkpoint::coordinator::AfterRound::Finished) => return,
                // At least one step between rounds, in which the sources
                // (woken as the pause ended) read again.
                Ok(crate::checkpoint::coordinator::AfterRound::Continue) => {
                    worker.step_or_park(Some(Duration::ZERO));
                }
                Err(error) => context.abort(error),
            }
            continue;
        }
        worker.step_or_park(Some(if *reported_done {
            Duration::from_millis(1)
        } else {
            PARK_AT_MOST
        }));
        take_decode_error(context);
    }
}

/// The text a panic was raised with, when it has one.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a worker panicked".to_string())
}
