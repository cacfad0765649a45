//! Runs Nexmark queries one after another, each as its own embedded job
//! over a fresh generator, and reports one line (or JSON object) each.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use runnel_connectors::Connectors;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_sql::Session;
use serde::Serialize;

use super::cpu::process_cpu_seconds;
use super::progress::{Progress, human};
use crate::cli::NexmarkArgs;

/// The nexmark table and views, prepended to every query.
const DDL: &str = include_str!("../../../benches/nexmark/ddl.sql");

/// The suite, built into the binary so that `runnel bench` runs anywhere.
const QUERIES: [(&str, &str); 23] = [
    (
        "q0",
        include_str!("../../../benches/nexmark/queries/q0.sql"),
    ),
    (
        "q1",
        include_str!("../../../benches/nexmark/queries/q1.sql"),
    ),
    (
        "q2",
        include_str!("../../../benches/nexmark/queries/q2.sql"),
    ),
    (
        "q3",
        include_str!("../../../benches/nexmark/queries/q3.sql"),
    ),
    (
        "q4",
        include_str!("../../../benches/nexmark/queries/q4.sql"),
    ),
    (
        "q5",
        include_str!("../../../benches/nexmark/queries/q5.sql"),
    ),
    (
        "q6",
        include_str!("../../../benches/nexmark/queries/q6.sql"),
    ),
    (
        "q7",
        include_str!("../../../benches/nexmark/queries/q7.sql"),
    ),
    (
        "q8",
        include_str!("../../../benches/nexmark/queries/q8.sql"),
    ),
    (
        "q9",
        include_str!("../../../benches/nexmark/queries/q9.sql"),
    ),
    (
        "q10",
        include_str!("../../../benches/nexmark/queries/q10.sql"),
    ),
    (
        "q11",
        include_str!("../../../benches/nexmark/queries/q11.sql"),
    ),
    (
        "q12",
        include_str!("../../../benches/nexmark/queries/q12.sql"),
    ),
    (
        "q13",
        include_str!("../../../benches/nexmark/queries/q13.sql"),
    ),
    (
        "q14",
        include_str!("../../../benches/nexmark/queries/q14.sql"),
    ),
    (
        "q15",
        include_str!("../../../benches/nexmark/queries/q15.sql"),
    ),
    (
        "q16",
        include_str!("../../../benches/nexmark/queries/q16.sql"),
    ),
    (
        "q17",
        include_str!("../../../benches/nexmark/queries/q17.sql"),
    ),
    (
        "q18",
        include_str!("../../../benches/nexmark/queries/q18.sql"),
    ),
    (
        "q19",
        include_str!("../../../benches/nexmark/queries/q19.sql"),
    ),
    (
        "q20",
        include_str!("../../../benches/nexmark/queries/q20.sql"),
    ),
    (
        "q21",
        include_str!("../../../benches/nexmark/queries/q21.sql"),
    ),
    (
        "q22",
        include_str!("../../../benches/nexmark/queries/q22.sql"),
    ),
];

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
    for (name, sql) in selected {
        let script = script(sql, args, scratch.path());
        match run_one(name, &script, args) {
            Ok(measured) => report(&measured, args.json)?,
            Err(not_run) => {
                if not_run.status == "failed" {
                    failed += 1;
                }
                report_not_run(&not_run, args.json)?;
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

fn run_one(name: &str, script: &str, args: &NexmarkArgs) -> Result<Measured, NotRun> {
    let not_run = |status, error: String| NotRun {
        query: name.to_string(),
        status,
        error,
    };
    let mut session = Session::new(Arc::new(Connectors));
    let submitted = session
        .submit(script)
        .map_err(|e| not_run("rejected", e.to_string()))?;
    let results = runnel_connectors::sink_provider(
        [("connector".to_string(), "blackhole".to_string())].into(),
    )
    .map_err(|e| not_run("failed", e.to_string()))?;
    let cluster = Cluster {
        workers: args.workers.max(1),
        processes: 1,
        process_id: 0,
        hosts: Vec::new(),
    };
    let context = Arc::new(JobContext::default());
    // A query over two views (q8) reads the generated events once per view.
    let scans = submitted
        .job
        .pipelines
        .iter()
        .map(|p| runnel_sql::explain(&p.node, 0).matches("[nexmark]").count() as u64)
        .sum::<u64>()
        .max(1);
    let progress = (!args.quiet)
        .then(|| Progress::start(name.to_string(), args.events * scans, context.clone()));
    let cpu_before = process_cpu_seconds().map_err(|e| not_run("failed", e.to_string()))?;
    let started = Instant::now();
    let result = submitted.job.run(&cluster, context.clone(), results);
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
        output_rows: context
            .records_out
            .load(std::sync::atomic::Ordering::Relaxed),
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
