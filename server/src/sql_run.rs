//! `runnel sql run`: a SQL script as one job, embedded, no server needed.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use runnel_connectors::Connectors;
use runnel_jobs::{Cluster, Progress, RunningJob};

use crate::cli::SqlRunArgs;

pub fn run(args: SqlRunArgs) -> anyhow::Result<()> {
    let script = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let cluster = cluster(&args)?;
    let submission = runnel_jobs::submit_blocking(&script, Arc::new(Connectors::default()))
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let mut stdout = std::io::stdout().lock();
    for text in &submission.explained {
        writeln!(stdout, "{text}")?;
    }
    drop(stdout);
    if submission.is_empty() {
        return Ok(());
    }
    let results = runnel_connectors::results_sink("print")?;
    let name = args.file.display().to_string();
    let started = std::time::Instant::now();
    // The store stays open (and locked) until the job ends.
    let (checkpointing, _checkpoint_store) = checkpointing(&args, &submission)?;
    let job = runnel_jobs::start(submission, cluster, results, &name, checkpointing)?;
    let progress = (!args.quiet).then(|| Progress::status(job.context().clone()));
    stop_on_ctrl_c(&job);
    let context = job.context().clone();
    let result = job.wait();
    drop(progress);
    result.map_err(|e| anyhow::anyhow!("job failed: {e}"))?;
    if !args.quiet {
        let figures = runnel_jobs::Figures::of(&context);
        eprintln!(
            "{} in {:.2}s",
            figures.status_line(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The script's checkpoints go to `--checkpoint-dir`; without it they
/// are kept in memory, which a restarted process does not see.
fn checkpointing(
    args: &SqlRunArgs,
    submission: &runnel_jobs::Submission,
) -> anyhow::Result<(
    Option<runnel_jobs::Checkpointing>,
    Option<runnel_store::Store>,
)> {
    let Some(config) = submission.checkpoint.clone() else {
        if args.checkpoint_dir.is_some() {
            anyhow::bail!(
                "--checkpoint-dir needs the script to SET 'execution.checkpointing.interval'"
            );
        }
        return Ok((None, None));
    };
    let mut opened = None;
    let storage: Arc<dyn runnel_engine::checkpoint::CheckpointStorage> = match &args.checkpoint_dir
    {
        Some(dir) => {
            // Processes of a cluster on one machine may share the dir.
            let own;
            let dir = match args.processes {
                0 | 1 => dir,
                _ => {
                    own = dir.join(format!("process-{}", args.process_id));
                    &own
                }
            };
            let store = runnel_store::Store::open(dir, &[runnel_jobs::checkpoints::CF_CHECKPOINTS])
                .with_context(|| format!("cannot open the checkpoint dir {}", dir.display()))?;
            let checkpoints = runnel_jobs::checkpoints::RocksCheckpoints::new(
                store.db().clone(),
                "sql-run",
                None,
            );
            if !args.from_checkpoint {
                checkpoints.clear()?;
            }
            opened = Some(store);
            Arc::new(checkpoints)
        }
        None => Arc::new(runnel_engine::checkpoint::MemoryStorage::default()),
    };
    let checkpointing = runnel_jobs::Checkpointing {
        config,
        storage,
        resume: args.from_checkpoint,
        allow_non_restored_state: false,
    };
    Ok((Some(checkpointing), opened))
}

fn cluster(args: &SqlRunArgs) -> anyhow::Result<Cluster> {
    let hosts = match &args.hosts {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read hosts file {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    if args.processes > 1 && hosts.len() != args.processes {
        anyhow::bail!(
            "--processes {} needs a --hosts file with {} lines of host:port",
            args.processes,
            args.processes
        );
    }
    Ok(Cluster {
        workers: args.workers.max(1),
        processes: args.processes.max(1),
        process_id: args.process_id,
        hosts,
    })
}

/// The first Ctrl-C ends the job as if its sources had ended (windows fire,
/// files are flushed); a second one exits at once.
fn stop_on_ctrl_c(job: &RunningJob) {
    let context = job.context().clone();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping: the sources end now (Ctrl-C again to exit at once)");
                context.stop();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        });
    });
}
