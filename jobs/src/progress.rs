//! A line on stderr every so often while a job runs, from its figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use runnel_engine::context::JobContext;

use crate::figures::Figures;

/// Prints `line(figures, elapsed)` every `every` until dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// How often the printing thread looks whether it should stop: a job that
/// ends is not kept waiting for the next line.
const TICK: Duration = Duration::from_millis(50);

impl Progress {
    pub fn start(
        context: Arc<JobContext>,
        every: Duration,
        line: impl Fn(&Figures, Duration) -> String + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let mut next = every;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                let elapsed = started.elapsed();
                if elapsed >= next {
                    next += every;
                    eprintln!("{}", line(&Figures::of(&context), elapsed));
                }
            }
        });
        Progress {
            stop,
            handle: Some(handle),
        }
    }

    /// `runnel sql run`'s line: the job's status, every second.
    pub fn status(context: Arc<JobContext>) -> Self {
        Progress::start(context, Duration::from_secs(1), |figures, _| {
            figures.status_line()
        })
    }

    /// A bar of rows read against `total`, with rows out and the read rate.
    pub fn bar(context: Arc<JobContext>, label: String, total: u64) -> Self {
        Progress::start(context, Duration::from_secs(1), move |figures, elapsed| {
            let read = figures.records_in;
            format!(
                "{label}: {} {} of {} records read, {} rows out, {}/s",
                bar(read, total),
                human(read as f64),
                human(total as f64),
                human(figures.records_out as f64),
                human(read as f64 / elapsed.as_secs_f64()),
            )
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn bar(done: u64, total: u64) -> String {
    const WIDTH: usize = 20;
    let filled = if total == 0 {
        0
    } else {
        ((done.min(total) as f64 / total as f64) * WIDTH as f64) as usize
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
}

/// 1234567 -> "1.23M".
pub fn human(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_numbers_read_at_a_glance() {
        assert_eq!(bar(5, 10), "[##########..........]");
        assert_eq!(bar(20, 10), "[####################]");
        assert_eq!(human(2_345_678.0), "2.35M");
        assert_eq!(human(999.0), "999");
    }
}
