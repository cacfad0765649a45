//! `runnel bench nexmark`: the Nexmark suite over the in-process
//! generator, measured as Flink's nexmark harness measures (events over the
//! CPU time of the engine's process), or the events exported as JSON lines;
//! and `runnel bench streams`, a load tool for any Kinesis endpoint.

mod cpu;
mod export;
pub mod streams;
mod suite;

use crate::cli::NexmarkArgs;

pub fn nexmark(args: NexmarkArgs) -> anyhow::Result<()> {
    if args.events == 0 {
        anyhow::bail!("--events must be at least 1: a benchmark needs a bounded run");
    }
    if args.rate == 0 {
        anyhow::bail!("--rate must be at least 1 event per second");
    }
    match &args.export {
        Some(path) => export::run(path, &args),
        None if args.generator_only => suite::run_generator(&args),
        None => suite::run(&args),
    }
}
