//! The server's jobs: submitted, run on their own timely workers, watched
//! until they end, kept in the data dir so that a job running when the
//! server went down runs again when it comes back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runnel_connectors::Connectors;
use runnel_engine::checkpoint::CheckpointStorage;
use runnel_engine::connector::SourceProvider;
use runnel_engine::context::JobContext;
use runnel_jobs::checkpoints::RocksCheckpoints;
use runnel_jobs::{Checkpointing, Cluster, JobError, RunningJob};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::restart::RestartStrategy;
use super::results::{ResultRow, ResultsSink};
use super::store::JobStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Running,
    Restarting,
    Finished,
    Failed,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Restarting => "RESTARTING",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Stopped => "STOPPED",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Finished | Status::Failed | Status::Stopped)
    }
}

/// What is kept of a job in the data dir.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Definition {
    pub id: String,
    pub name: String,
    pub sql: String,
    pub parallelism: usize,
    pub created_ms: u64,
    pub status: Status,
    pub error: Option<String>,
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    /// From the script's `restart-strategy.*` settings.
    #[serde(default)]
    pub restart: RestartStrategy,
    /// How often the job has been restarted after failing.
    #[serde(default)]
    pub restarts: u32,
    /// The savepoint the job started from.
    #[serde(default)]
    pub from_savepoint: Option<String>,
    /// Whether savepoint state no operator takes is dropped.
    #[serde(default)]
    pub allow_non_restored_state: bool,
    /// Settings in force before the SQL's own `SET`s (an application's
    /// checkpoint configuration).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// How a submitted job starts: from a savepoint, by name, and with
/// settings its SQL may override.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub savepoint: Option<String>,
    pub allow_non_restored_state: bool,
    pub settings: BTreeMap<String, String>,
}

/// A script refused at submit, with where in it.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub message: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl Refusal {
    fn plain(message: impl Into<String>) -> Self {
        Refusal {
            message: message.into(),
            line: None,
            column: None,
        }
    }

    fn of(error: JobError) -> Self {
        match error {
            JobError::Rejected(runnel_sql::SqlError::Invalid { message, position }) => Refusal {
                line: position.map(|p| p.line),
                column: position.map(|p| p.column),
                message: match position {
                    Some(p) => format!("{message} at {p}"),
                    None => message,
                },
            },
            other => Refusal::plain(other.to_string()),
        }
    }
}

pub struct ManagedJob {
    pub plan: String,
    /// A bare SELECT's column names, which its result rows leave out.
    pub columns: Vec<String>,
    state: Mutex<JobState>,
    results: broadcast::Sender<Arc<ResultRow>>,
    sources: Vec<(String, Arc<dyn SourceProvider>)>,
}

struct JobState {
    definition: Definition,
    running: Option<RunningJob>,
    context: Option<Arc<JobContext>>,
    stop_requested: bool,
}

/// A job as its JSON shows it, read at one instant.
pub struct Snapshot {
    pub definition: Definition,
    pub context: Option<Arc<JobContext>>,
}

impl ManagedJob {
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state();
        Snapshot {
            definition: state.definition.clone(),
            context: state.context.clone(),
        }
    }

    pub fn sources(&self) -> &[(String, Arc<dyn SourceProvider>)] {
        &self.sources
    }

    /// Asked to stop and not yet ended.
    pub fn is_stopping(&self) -> bool {
        let state = self.state();
        state.stop_requested && !state.definition.status.is_final()
    }

    pub fn follow(&self) -> broadcast::Receiver<Arc<ResultRow>> {
        self.results.subscribe()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Rows a follower of a job's results may fall behind by before it is
/// told how many it missed.
const NOTHING_TO_RUN: &str =
    "the script has nothing to run: give it an INSERT INTO, an EXECUTE STATEMENT SET or a SELECT";
const RESULTS_BUFFER: usize = 16 * 1024;
const WATCH_INTERVAL: Duration = Duration::from_millis(50);
const SAVEPOINT_TIMEOUT: Duration = Duration::from_secs(60);

pub struct JobManager {
    connectors: Connectors,
    default_parallelism: usize,
    jobs: Mutex<BTreeMap<String, Arc<ManagedJob>>>,
    store: JobStore,
    /// Checkpoints and savepoints are encrypted at rest under it.
    encryption_key: Option<runnel_jobs::at_rest::Key>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("job {0} not found")]
    NotFound(String),
    #[error("job {id} is {status}; {what}")]
    WrongStatus {
        id: String,
        status: &'static str,
        what: &'static str,
    },
    #[error("{0}")]
    Store(String),
}

pub fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

impl JobManager {
    pub fn new(
        connectors: Connectors,
        default_parallelism: usize,
        store: JobStore,
        encryption_key: Option<runnel_jobs::at_rest::Key>,
    ) -> Arc<Self> {
        Arc::new(JobManager {
            connectors,
            default_parallelism: default_parallelism.max(1),
            jobs: Mutex::new(BTreeMap::new()),
            store,
            encryption_key,
        })
    }

    /// Where job `id` keeps its checkpoints; the records its exactly-once
    /// sinks held back are published with them.
    pub fn checkpoints_of(&self, id: &str) -> RocksCheckpoints {
        let publisher = self.connectors.services().streams.clone().map(|streams| {
            Arc::new(super::checkpoints::StreamsPublisher { streams })
                as Arc<dyn runnel_jobs::checkpoints::Publish>
        });
        RocksCheckpoints::new(self.store.db().clone(), id, publisher).with_key(self.encryption_key)
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<ManagedJob>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn default_parallelism(&self) -> usize {
        self.default_parallelism
    }

    /// Jobs kept in the data dir: those that were running start again,
    /// the rest are listed as they ended.
    pub async fn recover(self: &Arc<Self>) -> Result<(), ManagerError> {
        for definition in self.store.load().map_err(ManagerError::Store)? {
            let id = definition.id.clone();
            if definition.status.is_final() {
                let plan = String::new();
                self.jobs().insert(
                    id,
                    Arc::new(ManagedJob {
                        plan,
                        columns: Vec::new(),
                        state: Mutex::new(JobState {
                            definition,
                            running: None,
                            context: None,
                            stop_requested: false,
                        }),
                        results: broadcast::channel(1).0,
                        sources: Vec::new(),
                    }),
                );
                continue;
            }
            tracing::info!(job = %id, name = %definition.name, "restarting a job that was running");
            if let Err(refusal) = self.launch(definition.clone()).await {
                // The script planned once; what it reads may be gone now
                // (a deleted stream): the job fails, with the reason.
                let mut failed = definition;
                failed.status = Status::Failed;
                failed.error = Some(refusal.message);
                failed.ended_ms = Some(now_ms());
                self.store.save(&failed).map_err(ManagerError::Store)?;
                self.jobs().insert(
                    id,
                    Arc::new(ManagedJob {
                        plan: String::new(),
                        columns: Vec::new(),
                        state: Mutex::new(JobState {
                            definition: failed,
                            running: None,
                            context: None,
                            stop_requested: false,
                        }),
                        results: broadcast::channel(1).0,
                        sources: Vec::new(),
                    }),
                );
            }
        }
        Ok(())
    }

    /// Plans `sql` and starts it; nothing starts if it is refused.
    pub async fn submit(
        self: &Arc<Self>,
        sql: String,
        name: Option<String>,
        parallelism: Option<usize>,
        options: StartOptions,
    ) -> Result<Arc<ManagedJob>, Refusal> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        if let Some(savepoint) = &options.savepoint {
            self.seed_from_savepoint(&id, savepoint, parallelism)?;
        }
        let definition = Definition {
            name: name.unwrap_or_else(|| format!("job-{}", &id[..8])),
            id,
            sql,
            parallelism: parallelism.unwrap_or(self.default_parallelism).max(1),
            created_ms: now_ms(),
            status: Status::Running,
            error: None,
            started_ms: None,
            ended_ms: None,
            restart: RestartStrategy::None,
            restarts: 0,
            from_savepoint: options.savepoint,
            allow_non_restored_state: options.allow_non_restored_state,
            settings: options.settings,
        };
        self.launch(definition).await
    }

    /// Makes savepoint `name` the new job `id`'s latest checkpoint, so that
    /// it starts from it (and, after a crash before its own first one,
    /// starts from it again).
    fn seed_from_savepoint(
        &self,
        id: &str,
        name: &str,
        parallelism: Option<usize>,
    ) -> Result<(), Refusal> {
        let (info, state) = self
            .savepoints()
            .get(name)
            .map_err(Refusal::plain)?
            .ok_or_else(|| Refusal::plain(format!("savepoint '{name}' not found")))?;
        let parallelism = parallelism.unwrap_or(self.default_parallelism);
        if parallelism != info.parallelism {
            return Err(Refusal::plain(format!(
                "savepoint '{name}' was taken with parallelism {}; the job must run with the same, not {parallelism}",
                info.parallelism
            )));
        }
        self.checkpoints_of(id)
            .seed(&state)
            .map_err(|e| Refusal::plain(e.to_string()))
    }

    pub fn savepoints(&self) -> runnel_jobs::savepoints::Savepoints {
        runnel_jobs::savepoints::Savepoints::new(self.store.db().clone(), self.encryption_key)
    }

    /// Takes a savepoint of a running checkpointed job: a checkpoint now,
    /// kept under `name` until deleted.
    pub async fn savepoint(
        &self,
        id: &str,
        name: Option<String>,
    ) -> Result<runnel_jobs::savepoints::SavepointInfo, ManagerError> {
        let job = self.get(id)?;
        let (definition, context) = {
            let state = job.state();
            (state.definition.clone(), state.context.clone())
        };
        let coordinator = context
            .as_ref()
            .filter(|_| definition.status == Status::Running)
            .and_then(|c| c.checkpoints.get().cloned())
            .ok_or_else(|| ManagerError::WrongStatus {
                id: id.to_string(),
                status: definition.status.as_str(),
                what: "a savepoint is taken of a running job with checkpointing on (SET 'execution.checkpointing.interval')",
            })?;
        let target = coordinator.trigger();
        let deadline = std::time::Instant::now() + SAVEPOINT_TIMEOUT;
        let (failures_before, _) = coordinator.failures();
        while coordinator.history().last().is_none_or(|c| c.id < target) {
            let (failures, last) = coordinator.failures();
            if failures > failures_before || std::time::Instant::now() > deadline {
                return Err(ManagerError::Store(format!(
                    "the savepoint of job {id} did not complete: {}",
                    last.unwrap_or_else(|| "timed out".into())
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let checkpoints = self.checkpoints_of(id);
        let state = checkpoints
            .latest()
            .map_err(|e| ManagerError::Store(e.to_string()))?
            .ok_or_else(|| ManagerError::Store("the savepoint's checkpoint is gone".into()))?;
        // Incremental states resolved: a savepoint outlives the
        // checkpoints its deltas build on.
        let state = runnel_engine::checkpoint::chain::standalone(&checkpoints, &state)
            .map_err(|e| ManagerError::Store(e.to_string()))?;
        let info = runnel_jobs::savepoints::SavepointInfo {
            name: name.unwrap_or_else(|| format!("savepoint-{}-{}", definition.name, state.id)),
            job_id: id.to_string(),
            job_name: definition.name.clone(),
            checkpoint_id: state.id,
            created_ms: now_ms(),
            bytes: state.state.len() as u64,
            parallelism: definition.parallelism,
        };
        self.savepoints()
            .put(&info, &state)
            .map_err(ManagerError::Store)?;
        Ok(info)
    }

    /// Takes a savepoint, then ends the job without draining it (nothing
    /// after the savepoint is written), as Flink's stop-with-savepoint.
    pub async fn stop_with_savepoint(
        &self,
        id: &str,
        name: Option<String>,
    ) -> Result<(Arc<ManagedJob>, runnel_jobs::savepoints::SavepointInfo), ManagerError> {
        let info = self.savepoint(id, name).await?;
        let job = self.get(id)?;
        {
            let mut state = job.state();
            state.stop_requested = true;
            if let Some(running) = &state.running {
                running.context().cancel();
            }
        }
        Ok((job, info))
    }

    /// Starts the job and watches it until it ends.
    async fn launch(self: &Arc<Self>, definition: Definition) -> Result<Arc<ManagedJob>, Refusal> {
        let job = self.start_job(definition).await?;
        let manager = self.clone();
        let watched = job.clone();
        tokio::spawn(async move { manager.watch(watched).await });
        Ok(job)
    }

    /// Plans and starts the job under its id; nobody watches it yet.
    async fn start_job(&self, mut definition: Definition) -> Result<Arc<ManagedJob>, Refusal> {
        let submission = runnel_jobs::submit_with_defaults(
            definition.sql.clone(),
            Arc::new(self.connectors.clone()),
            definition.settings.clone(),
        )
        .await
        .map_err(Refusal::of)?;
        if submission.is_empty() {
            return Err(Refusal::plain(NOTHING_TO_RUN));
        }
        definition.restart =
            RestartStrategy::from_settings(&submission.settings).map_err(Refusal::plain)?;
        let plan = submission.plan();
        let columns = submission
            .job
            .pipelines
            .iter()
            .find(|p| matches!(p.output, runnel_sql::Output::Results))
            .map(|p| p.schema.fields().iter().map(|f| f.name().clone()).collect())
            .unwrap_or_default();
        let sources = submission.source_providers();
        let (results, _) = broadcast::channel(RESULTS_BUFFER);
        let cluster = Cluster {
            workers: definition.parallelism,
            processes: 1,
            process_id: 0,
            hosts: Vec::new(),
        };
        let sink = Arc::new(ResultsSink::new(results.clone()));
        // A job resumes from its own latest checkpoint: after a restart of
        // the server or by its restart strategy; a new job has none.
        if definition.from_savepoint.is_some() && submission.checkpoint.is_none() {
            return Err(Refusal::plain(
                "a job started from a savepoint needs checkpointing on: SET 'execution.checkpointing.interval'",
            ));
        }
        let checkpointing = submission.checkpoint.clone().map(|config| Checkpointing {
            config,
            storage: Arc::new(self.checkpoints_of(&definition.id)),
            resume: true,
            allow_non_restored_state: definition.allow_non_restored_state,
        });
        let running =
            runnel_jobs::start(submission, cluster, sink, &definition.name, checkpointing)
                .map_err(|e| Refusal::plain(e.to_string()))?;
        definition.status = Status::Running;
        definition.started_ms = Some(now_ms());
        definition.ended_ms = None;
        definition.error = None;
        self.store.save(&definition).map_err(Refusal::plain)?;
        let id = definition.id.clone();
        let job = Arc::new(ManagedJob {
            plan,
            columns,
            state: Mutex::new(JobState {
                definition,
                context: Some(running.context().clone()),
                running: Some(running),
                stop_requested: false,
            }),
            results,
            sources,
        });
        self.jobs().insert(id, job.clone());
        Ok(job)
    }

    /// Waits for the job's end and records how it ended; a failed job
    /// whose restart strategy allows it runs again, watched here still.
    async fn watch(self: Arc<Self>, mut job: Arc<ManagedJob>) {
        loop {
            while !job
                .state()
                .running
                .as_ref()
                .is_none_or(RunningJob::is_finished)
            {
                tokio::time::sleep(WATCH_INTERVAL).await;
            }
            let Some(running) = job.state().running.take() else {
                return;
            };
            let result = tokio::task::spawn_blocking(move || running.wait())
                .await
                .unwrap_or_else(|e| Err(JobError::Failed(format!("the job's thread failed: {e}"))));
            let (definition, restart_after) = {
                let mut state = job.state();
                let stopped = state.stop_requested;
                let definition = &mut state.definition;
                definition.ended_ms = Some(now_ms());
                let mut restart_after = None;
                match result {
                    Ok(()) if stopped => definition.status = Status::Stopped,
                    Ok(()) => definition.status = Status::Finished,
                    Err(error) => {
                        definition.error = Some(error.to_string());
                        restart_after = (!stopped)
                            .then(|| definition.restart.next_delay(definition.restarts))
                            .flatten();
                        definition.status = if restart_after.is_some() {
                            Status::Restarting
                        } else {
                            Status::Failed
                        };
                    }
                }
                (definition.clone(), restart_after)
            };
            if let Some(delay) = restart_after {
                match self.restart(&job, definition, delay).await {
                    Some(again) => {
                        job = again;
                        continue;
                    }
                    None => return,
                }
            }
            tracing::info!(job = %definition.id, status = definition.status.as_str(), error = ?definition.error, "job ended");
            if let Err(error) = self.store.save(&definition) {
                tracing::error!(%error, job = %definition.id, "cannot record the job's end");
            }
            return;
        }
    }

    /// Every job's figures, for `/metrics`.
    pub fn figures(&self) -> Vec<crate::metrics::JobFigures> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = now_ms() as i64;
        self.list()
            .iter()
            .map(|job| {
                let Snapshot {
                    definition,
                    context,
                } = job.snapshot();
                let load = |f: fn(&JobContext) -> u64| context.as_deref().map_or(0, f);
                let watermark = context.as_deref().map(|c| c.watermark.load(Relaxed));
                crate::metrics::JobFigures {
                    running: !definition.status.is_final(),
                    rows_in: load(|c| c.records_in.load(Relaxed)),
                    rows_out: load(|c| c.records_out.load(Relaxed)),
                    late_rows: load(|c| c.late_records.load(Relaxed)),
                    state_rows: load(|c| c.state_rows.load(Relaxed)),
                    watermark_lag_ms: watermark
                        .filter(|w| *w != i64::MIN && *w != i64::MAX)
                        .map(|w| now.saturating_sub(w)),
                    id: definition.id,
                    name: definition.name,
                }
            })
            .collect()
    }

    /// Runs a failed job again after `delay`, as its restart strategy
    /// says; a stop asked for meanwhile ends it instead. The job as it runs
    /// again, if it does.
    async fn restart(
        &self,
        job: &Arc<ManagedJob>,
        failed: Definition,
        delay: Duration,
    ) -> Option<Arc<ManagedJob>> {
        tracing::warn!(job = %failed.id, error = ?failed.error, restarts = failed.restarts, ?delay, "job failed; restarting");
        if let Err(error) = self.store.save(&failed) {
            tracing::error!(%error, job = %failed.id, "cannot record the job's restart");
        }
        tokio::time::sleep(delay).await;
        if job.state().stop_requested {
            let mut state = job.state();
            state.definition.status = Status::Stopped;
            if let Err(error) = self.store.save(&state.definition) {
                tracing::error!(%error, job = %failed.id, "cannot record the job's stop");
            }
            return None;
        }
        let mut again = failed;
        again.restarts += 1;
        match self.start_job(again.clone()).await {
            Ok(job) => Some(job),
            Err(refusal) => {
                again.status = Status::Failed;
                again.error = Some(refusal.message);
                again.ended_ms = Some(now_ms());
                if let Err(error) = self.store.save(&again) {
                    tracing::error!(%error, job = %again.id, "cannot record the job's end");
                }
                job.state().definition = again;
                None
            }
        }
    }

    /// Plans `sql` as `submit` would, and starts nothing.
    pub async fn plan_only(
        &self,
        sql: String,
        settings: BTreeMap<String, String>,
    ) -> Result<(), String> {
        let submission =
            runnel_jobs::submit_with_defaults(sql, Arc::new(self.connectors.clone()), settings)
                .await
                .map_err(|e| Refusal::of(e).message)?;
        if submission.is_empty() {
            return Err(NOTHING_TO_RUN.to_string());
        }
        RestartStrategy::from_settings(&submission.settings)?;
        Ok(())
    }

    /// Waits (a bounded while) for a job to end.
    pub async fn wait_ended(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline
            && self
                .get(id)
                .is_ok_and(|job| !job.snapshot().definition.status.is_final())
        {
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    }

    pub fn list(&self) -> Vec<Arc<ManagedJob>> {
        self.jobs().values().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Result<Arc<ManagedJob>, ManagerError> {
        self.jobs()
            .get(id)
            .cloned()
            .ok_or_else(|| ManagerError::NotFound(id.to_string()))
    }

    /// Ends the job as the first Ctrl-C of `runnel sql run` does: sources
    /// end, windows fire, sinks flush. The job is STOPPED once it has.
    pub fn stop(&self, id: &str) -> Result<Arc<ManagedJob>, ManagerError> {
        let job = self.get(id)?;
        {
            let mut state = job.state();
            if state.definition.status.is_final() {
                return Err(ManagerError::WrongStatus {
                    id: id.to_string(),
                    status: state.definition.status.as_str(),
                    what: "only a running job can be stopped",
                });
            }
            state.stop_requested = true;
            if let Some(running) = &state.running {
                running.stop();
            }
        }
        Ok(job)
    }

    /// Removes a job that has ended.
    pub fn delete(&self, id: &str) -> Result<(), ManagerError> {
        let job = self.get(id)?;
        let status = job.state().definition.status;
        if !status.is_final() {
            return Err(ManagerError::WrongStatus {
                id: id.to_string(),
                status: status.as_str(),
                what: "stop it before deleting it",
            });
        }
        self.store.delete(id).map_err(ManagerError::Store)?;
        self.jobs().remove(id);
        Ok(())
    }
}
