//! A script planned into a job. Planning runs DataFusion's planner, whose
//! futures are not `Send`; `submit` gives it a blocking thread so that a
//! server handler can await it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use runnel_engine::checkpoint::CheckpointConfig;
use runnel_engine::connector::{ConnectorFactory, SourceProvider};
use runnel_sql::{Job, Node, Session, explain_pipeline};

use crate::error::JobError;

/// A planned script: nothing runs until it is started.
pub struct Submission {
    pub job: Job,
    /// The text of each EXPLAIN statement, in order.
    pub explained: Vec<String>,
    /// What the script's `SET` statements set, for whoever runs the job
    /// (a restart strategy, for the server).
    pub settings: std::collections::BTreeMap<String, String>,
    /// What `SET 'execution.checkpointing.*'` asked for.
    pub checkpoint: Option<CheckpointConfig>,
}

impl Submission {
    /// Whether the script had nothing to run (only DDL, SET and EXPLAIN).
    pub fn is_empty(&self) -> bool {
        self.job.is_empty()
    }

    /// Every pipeline of the job as EXPLAIN prints it.
    pub fn plan(&self) -> String {
        self.job
            .pipelines
            .iter()
            .map(explain_pipeline)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How many source operators of connector `name` the job runs: a
    /// table scanned by several parts of a plan and read by one shared
    /// source counts once.
    pub fn sources_of(&self, name: &str) -> usize {
        let mut shared = HashSet::new();
        self.job
            .pipelines
            .iter()
            .map(|p| sources_in(&p.node, name, &mut shared))
            .sum()
    }
}

impl Submission {
    /// Each source the job reads, by table name, once each: what reports
    /// its positions while the job runs.
    pub fn source_providers(&self) -> Vec<(String, Arc<dyn SourceProvider>)> {
        let mut found = Vec::new();
        let mut shared = HashSet::new();
        for pipeline in &self.job.pipelines {
            providers_in(&pipeline.node, &mut shared, &mut found);
        }
        found
    }
}

fn providers_in(
    node: &Node,
    shared: &mut HashSet<usize>,
    found: &mut Vec<(String, Arc<dyn SourceProvider>)>,
) {
    match node {
        Node::Source {
            table, provider, ..
        } => found.push((table.name.clone(), provider.clone())),
        Node::Shared { id, input } => {
            if shared.insert(*id) {
                providers_in(input, shared, found);
            }
        }
        other => {
            for input in other.inputs() {
                providers_in(input, shared, found);
            }
        }
    }
}

fn sources_in(node: &Node, connector: &str, shared: &mut HashSet<usize>) -> usize {
    match node {
        Node::Source { table, .. } => {
            usize::from(table.options.get("connector").map(String::as_str) == Some(connector))
        }
        Node::Shared { id, input } => {
            if shared.insert(*id) {
                sources_in(input, connector, shared)
            } else {
                0
            }
        }
        other => other
            .inputs()
            .into_iter()
            .map(|n| sources_in(n, connector, shared))
            .sum(),
    }
}

/// Plans `script` from async code: the planner runs on a blocking thread
/// with a runtime of its own.
pub async fn submit(
    script: String,
    connectors: Arc<dyn ConnectorFactory>,
) -> Result<Submission, JobError> {
    submit_with_defaults(script, connectors, BTreeMap::new()).await
}

/// As `submit`, with settings in force before the script's first
/// statement (a Kinesis Analytics application's checkpoint
/// configuration); the script's own `SET`s override them.
pub async fn submit_with_defaults(
    script: String,
    connectors: Arc<dyn ConnectorFactory>,
    defaults: BTreeMap<String, String>,
) -> Result<Submission, JobError> {
    tokio::task::spawn_blocking(move || plan(&script, connectors, defaults))
        .await
        .map_err(|e| JobError::Start(format!("the planner stopped: {e}")))?
}

/// Plans `script` from a thread that is not inside an async runtime.
pub fn submit_blocking(
    script: &str,
    connectors: Arc<dyn ConnectorFactory>,
) -> Result<Submission, JobError> {
    plan(script, connectors, BTreeMap::new())
}

fn plan(
    script: &str,
    connectors: Arc<dyn ConnectorFactory>,
    defaults: BTreeMap<String, String>,
) -> Result<Submission, JobError> {
    let mut session = Session::new(connectors);
    session.catalog.settings.extend(defaults);
    let submitted = session
        .submit_blocking(script)
        .map_err(JobError::Rejected)?;
    let settings = session.catalog.settings.clone();
    let checkpoint = CheckpointConfig::from_settings(&settings)
        .map_err(|e| JobError::Rejected(runnel_sql::SqlError::Plan(e)))?;
    if checkpoint.is_some()
        && let Some(reason) = runnel_sql::checkpoint_refusal(&submitted.job)
    {
        return Err(JobError::Rejected(runnel_sql::SqlError::Plan(format!(
            "{reason}: run it without 'execution.checkpointing.interval', or change the query"
        ))));
    }
    Ok(Submission {
        job: submitted.job,
        explained: submitted.explained,
        settings,
        checkpoint,
    })
}
