//! Runs Nexmark queries one after another, each as its own embedded job
//! over a fresh generator, and reports one line (or JSON object) each.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use runnel_connectors::Connectors;
use runnel_jobs::{Cluster, Progress, human};
use serde::Serialize;

use super::cpu::process_cpu_seconds;
use crate::cli::NexmarkArgs;

/// The nexmark table and views, prepended to every query.
const DDL: &str = include_str!("../../../benches/nexmark/ddl.sql");

/// `(name, text)` of each query file of `benches/nexmark/queries/`.
macro_rules! queries {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../../benches/nexmark/queries/", $name, ".sql")))),*]
    };
}

/// The suite, built into the binary so that `runnel bench` runs anywhere.
const QUERIES: [(&str, &str); 23] = queries!(
    "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q10", "q11", "q12", "q13", "q14",
    "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22",
);

#[derive(Debug, Serialize)]
struct Measured {
    query: String,
    events: u64,
    wall_seconds: f64,
    cpu_seconds: f64,
    cores: f64,
    events_per_second: f64,
    events_per_second_per_core: f64,
    output_rows: u64,
    /// With `--checkpoint-interval`: what the checkpoints cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoints: Option<CheckpointFigures>,
}

#[derive(Debug, Serialize)]
struct CheckpointFigures {
    interval: String,
    completed: u64,
    mean_duration_ms: f64,
    max_duration_ms: u64,
    /// Of each checkpoint, the time the sources were paused; the commit
    /// runs beside the job.
    mean_paused_ms: f64,
    mean_bytes: f64,
    /// This run's events/s over the same query's without checkpoints.
    throughput_ratio: f64,
}

/// A query that did not run: rejected when submitted, or failed running.
#[derive(Debug, Serialize)]
struct NotRun {
    query: String,
    status: &'static str,
    error: String,
}

pub fn run(args: &NexmarkArgs) -> anyhow::Result<()> {
    let selected: Vec<(&str, &str)> = if args.query.eq_ignore_ascii_case("all") {
        QUERIES.to_vec()
    } else {
        let wanted = args.query.to_ascii_lowercase();
        let found = QUERIES
            .iter()
            .find(|(name, _)| *name == wanted)
            .ok_or_else(|| {
                anyhow::anyhow!("unknown query '{}'; available: q0 ... q22, all", args.query)
            })?;
        vec![*found]
    };
    let scratch = Scratch::new()?;
    let mut failed = 0;
    let checkpoints = match &args.checkpoint_interval {
        Some(interval) => Some((interval.clone(), CheckpointDir::open(scratch.path())?)),
        None => None,
    };
    for (name, sql) in selected {
        let script = script(sql, args, scratch.path());
        let plain = run_one(name, &script, args, None);
        let with_checkpoints = match (&plain, &checkpoints) {
            (Ok(plain), Some((interval, dir))) => {
                let script =
                    format!("SET 'execution.checkpointing.interval' = '{interval}';\n{script}");
                Some(run_one(name, &script, args, Some(dir)).map(|mut measured| {
                    measured.query = format!("{name}+cp");
                    if let Some(figures) = measured.checkpoints.as_mut() {
                        figures.interval = interval.clone();
                        figures.throughput_ratio =
                            measured.events_per_second / plain.events_per_second;
                    }
                    measured
                }))
            }
            _ => None,
        };
        for result in std::iter::once(plain).chain(with_checkpoints) {
            match result {
                Ok(measured) => report(&measured, args.json)?,
                Err(not_run) => {
                    if not_run.status == "failed" {
                        failed += 1;
                    }
                    report_not_run(&not_run, args.json)?;
                }
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} queries failed while running");
    }
    Ok(())
}

/// The generator without the engine: each worker's share drained on its
/// own thread, reported as a query named `generator`.
pub fn run_generator(args: &NexmarkArgs) -> anyhow::Result<()> {
    let rate = args.rate.to_string();
    let events = args.events.to_string();
    let generator = runnel_connectors::nexmark::Nexmark::from_pairs(&[
        ("first-event.rate", &rate),
        ("next-event.rate", &rate),
        ("events.num", &events),
    ])?;
    let workers = args.workers.max(1);
    let cpu_before = process_cpu_seconds()?;
    let started = Instant::now();
    let generated = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let mut reader = generator.events_by_kind(worker, workers);
                scope.spawn(move || -> Result<u64, runnel_connectors::ConnectorError> {
                    let mut rows = 0;
                    while let Some(batch) = reader.next_batch()? {
                        rows += batch.num_rows() as u64;
                    }
                    Ok(rows)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a generator thread panicked"))?
                    .map_err(anyhow::Error::from)
            })
            .sum::<anyhow::Result<u64>>()
    })?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = (process_cpu_seconds()? - cpu_before).max(0.01);
    report(
        &Measured {
            query: "generator".into(),
            events: generated,
            wall_seconds,
            cpu_seconds,
            cores: cpu_seconds / wall_seconds,
            events_per_second: generated as f64 / wall_seconds,
            events_per_second_per_core: generated as f64 / cpu_seconds,
            output_rows: generated,
            checkpoints: None,
        },
        args.json,
    )
}

/// The query with the shared DDL before it and the harness's parameters
/// filled in, as Flink's nexmark harness fills `${TPS}` and friends.
fn script(query: &str, args: &NexmarkArgs, scratch: &Path) -> String {
    format!("{DDL}\n{query}")
        .replace("${TPS}", &args.rate.to_string())
        .replace("${EVENTS_NUM}", &args.events.to_string())
        .replace("${OUTPUT_DIR}", &scratch.display().to_string())
}

/// Where `--checkpoint-interval` runs keep their checkpoints: a RocksDB
/// store as the server's, so that each checkpoint is a synced write.
struct CheckpointDir {
    store: runnel_store::Store,
}

impl CheckpointDir {
    fn open(scratch: &Path) -> anyhow::Result<Self> {
        let store = runnel_store::Store::open(
            &scratch.join("checkpoints"),
            &[runnel_jobs::checkpoints::CF_CHECKPOINTS],
        )?;
        Ok(CheckpointDir { store })
    }

    fn checkpointing(
        &self,
        name: &str,
        config: runnel_engine::checkpoint::CheckpointConfig,
    ) -> runnel_jobs::Checkpointing {
        let storage =
            runnel_jobs::checkpoints::RocksCheckpoints::new(self.store.db().clone(), name, None);
        runnel_jobs::Checkpointing {
            config,
            storage: Arc::new(storage),
            resume: false,
            allow_non_restored_state: false,
        }
    }
}

fn run_one(
    name: &str,
    script: &str,
    args: &NexmarkArgs,
    checkpoints: Option<&CheckpointDir>,
) -> Result<Measured, NotRun> {
    let not_run = |status, error: String| NotRun {
        query: name.to_string(),
        status,
        error,
    };
    let submission = runnel_jobs::submit_blocking(script, Arc::new(Connectors::default()))
        .map_err(|e| not_run("rejected", e.to_string()))?;
    let results = runnel_connectors::results_sink("blackhole")
        .map_err(|e| not_run("failed", e.to_string()))?;
    // A query over two views of the generator whose scans do not share a
    // source reads the events once per source.
    let sources = submission.sources_of("nexmark").max(1) as u64;
    let cpu_before = process_cpu_seconds().map_err(|e| not_run("failed", e.to_string()))?;
    let started = Instant::now();
    let checkpointing = match (checkpoints, submission.checkpoint.clone()) {
        (Some(dir), Some(config)) => Some(dir.checkpointing(name, config)),
        _ => None,
    };
    let job = runnel_jobs::start(
        submission,
        Cluster::local(args.workers),
        results,
        name,
        checkpointing,
    )
    .map_err(|e| not_run("failed", e.to_string()))?;
    let context = job.context().clone();
    let progress = (!args.quiet)
        .then(|| Progress::bar(context.clone(), name.to_string(), args.events * sources));
    let result = job.wait();
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds =
        process_cpu_seconds().map_err(|e| not_run("failed", e.to_string()))? - cpu_before;
    drop(progress);
    result.map_err(|e| not_run("failed", e.to_string()))?;
    let events = args.events;
    // A run shorter than a clock tick still used some CPU.
    let cpu_seconds = cpu_seconds.max(0.01);
    let cores = cpu_seconds / wall_seconds;
    Ok(Measured {
        query: name.to_string(),
        events,
        wall_seconds,
        cpu_seconds,
        cores,
        events_per_second: events as f64 / wall_seconds,
        events_per_second_per_core: events as f64 / cpu_seconds,
        output_rows: runnel_jobs::Figures::of(&context).records_out,
        checkpoints: context.checkpoints.get().map(|coordinator| {
            let history = coordinator.history();
            let completed = history.last().map_or(0, |c| c.id);
            let n = history.len().max(1) as f64;
            CheckpointFigures {
                interval: String::new(),
                completed,
                mean_duration_ms: history.iter().map(|c| c.duration_ms as f64).sum::<f64>() / n,
                max_duration_ms: history.iter().map(|c| c.duration_ms).max().unwrap_or(0),
                mean_paused_ms: history.iter().map(|c| c.paused_ms as f64).sum::<f64>() / n,
                mean_bytes: history.iter().map(|c| c.bytes as f64).sum::<f64>() / n,
                throughput_ratio: 1.0,
            }
        }),
    })
}

fn report(measured: &Measured, json: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        writeln!(stdout, "{}", serde_json::to_string(measured)?)?;
    } else {
        writeln!(
            stdout,
            "{:<4} {:>8} events  {:>7.2} s wall  {:>7.2} s cpu  {:>4.2} cores  {:>8} ev/s  {:>8} ev/s/core  {:>8} rows out",
            measured.query,
            human(measured.events as f64),
            measured.wall_seconds,
            measured.cpu_seconds,
            measured.cores,
            human(measured.events_per_second),
            human(measured.events_per_second_per_core),
            human(measured.output_rows as f64),
        )?;
        if let Some(c) = &measured.checkpoints {
            writeln!(
                stdout,
                "     checkpoints every {}: {} taken, {:.1} ms mean ({:.1} ms paused), {} ms max, {} bytes mean; {:.2}x the throughput without",
                c.interval,
                c.completed,
                c.mean_duration_ms,
                c.mean_paused_ms,
                c.max_duration_ms,
                human(c.mean_bytes),
                c.throughput_ratio
            )?;
        }
    }
    Ok(())
}

fn report_not_run(not_run: &NotRun, json: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        writeln!(stdout, "{}", serde_json::to_string(not_run)?)?;
    } else {
        let error = not_run.error.replace('\n', " ");
        writeln!(stdout, "{:<4} {}: {error}", not_run.query, not_run.status)?;
    }
    Ok(())
}

/// A directory for the queries that write files (q10) or read a side
/// table (q13), removed when the suite ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("runnel-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Flink's side_input_gen: keys 0..9999, each with its own value.
        let side: String = (0..10_000).map(|k| format!("{k},{k}\n")).collect();
        std::fs::write(dir.join("side_input.csv"), side)?;
        Ok(Scratch(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
