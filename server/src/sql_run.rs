//! `runnel sql run`: a SQL script as one job, embedded, no server needed.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use runnel_connectors::Connectors;
use runnel_engine::context::JobContext;
use runnel_engine::runtime::Cluster;
use runnel_sql::Session;

use crate::cli::SqlRunArgs;

pub fn run(args: SqlRunArgs) -> anyhow::Result<()> {
    let script = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let cluster = cluster(&args)?;
    let connectors = Arc::new(Connectors);
    let mut session = Session::new(connectors.clone());
    let submitted = session
        .submit(&script)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let mut stdout = std::io::stdout().lock();
    for text in &submitted.explained {
        writeln!(stdout, "{text}")?;
    }
    drop(stdout);
    if submitted.job.is_empty() {
        return Ok(());
    }
    let results =
        runnel_connectors::sink_provider([("connector".to_string(), "print".to_string())].into())?;
    let context = Arc::new(JobContext::default());
    let progress = (!args.quiet).then(|| spawn_progress(context.clone()));
    stop_on_ctrl_c(context.clone());
    let started = Instant::now();
    let result = submitted.job.run(&cluster, context.clone(), results);
    if let Some((stop, handle)) = progress {
        stop.store(true, Ordering::Relaxed);
        let _ = handle.join();
    }
    result.map_err(|e| anyhow::anyhow!("job failed: {e}"))?;
    if !args.quiet {
        eprintln!(
            "{} in {:.2}s",
            status_line(&context),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
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

fn status_line(context: &JobContext) -> String {
    let watermark = context.watermark.load(Ordering::Relaxed);
    let watermark = match watermark {
        i64::MIN => "-".to_string(),
        i64::MAX => "end of input".to_string(),
        ms => sql_timestamp(ms),
    };
    format!(
        "records in {}, out {}, late {}, watermark {watermark}",
        context.records_in.load(Ordering::Relaxed),
        context.records_out.load(Ordering::Relaxed),
        context.late_records.load(Ordering::Relaxed),
    )
}

fn sql_timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
    )
}

fn spawn_progress(
    context: Arc<JobContext>,
) -> (
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut ticks = 0u32;
        while !flag.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            ticks += 1;
            if ticks.is_multiple_of(10) {
                eprintln!("{}", status_line(&context));
            }
        }
    });
    (stop, handle)
}

/// The first Ctrl-C ends the job as if its sources had ended (windows fire,
/// files are flushed); a second one exits at once.
fn stop_on_ctrl_c(context: Arc<JobContext>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_print_as_sql_timestamps() {
        assert_eq!(sql_timestamp(0), "1970-01-01 00:00:00.000");
        assert_eq!(sql_timestamp(1_586_937_601_500), "2020-04-15 08:00:01.500");
    }
}
