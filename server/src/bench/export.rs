//! `runnel bench nexmark --export FILE`: the generator's events as JSON
//! lines, in event-number order, for other engines to read.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use runnel_connectors::nexmark::{Nexmark, write_json_lines};

use crate::cli::NexmarkArgs;

pub fn run(path: &Path, args: &NexmarkArgs) -> anyhow::Result<()> {
    let rate = args.rate.to_string();
    let events = args.events.to_string();
    let generator = Nexmark::from_pairs(&[
        ("first-event.rate", &rate),
        ("next-event.rate", &rate),
        ("events.num", &events),
    ])?;
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let started = Instant::now();
    let mut reader = generator.events(0, 1);
    let mut written = 0u64;
    let mut reported = Instant::now();
    while let Some(batch) = reader.next_batch()? {
        write_json_lines(&batch, &mut out)?;
        written += batch.num_rows() as u64;
        if !args.quiet && reported.elapsed().as_secs() >= 1 {
            reported = Instant::now();
            eprintln!("export: {written} of {} events", args.events);
        }
    }
    out.flush()
        .and_then(|()| out.get_ref().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if !args.quiet {
        eprintln!(
            "export: {written} events to {} in {:.2}s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
