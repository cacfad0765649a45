//! The `runnel` binary.

mod analytics;
mod auth;
mod aws;
mod bench;
mod cli;
mod cli_http;
mod config;
mod console;
mod firehose;
mod http;
mod jobs_cli;
mod kinesis;
mod listener;
mod logging;
mod metrics;
mod serve;
mod sql_run;
mod streams_cli;
mod tls;
mod video;

use clap::Parser;

use crate::cli::{BenchCommand, Cli, Command, SqlCommand};

/// glibc's malloc took a quarter of the CPU of state-heavy queries (Nexmark
/// q18: row bytes allocated and freed per event). jemalloc's thread caches
/// make that a fraction, and its slow decay of dirty pages keeps a busy job
/// from faulting in (and zeroing) fresh pages (mimalloc's 10 ms purge did).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("runnel: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Server(args) => {
            let config = config::ServerConfig::resolve(args)?;
            logging::init(config.log_format, &config.log)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve::run(config))
        }
        Command::Streams(args) => streams_cli::run(args),
        Command::Jobs(args) => jobs_cli::run(args),
        Command::Sql(SqlCommand::Run(args)) => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter("warn")
                .try_init()
                .ok();
            sql_run::run(args)
        }
        Command::Bench(BenchCommand::Nexmark(args)) => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter("warn")
                .try_init()
                .ok();
            bench::nexmark(args)
        }
        Command::Bench(BenchCommand::Streams(args)) => bench::streams::run(args),
    }
}
