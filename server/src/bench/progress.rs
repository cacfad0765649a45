//! A progress line on stderr while a query runs: records read by the
//! sources so far against all they will read (the events times the number
//! of scans of the nexmark table), rows out, and the read rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use runnel_engine::context::JobContext;

pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Progress {
    /// `total`: the records the sources will have read at the end.
    pub fn start(label: String, total: u64, context: Arc<JobContext>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let mut ticks = 0u32;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                ticks += 1;
                if ticks.is_multiple_of(20) {
                    let read = context.records_in.load(Ordering::Relaxed);
                    let out = context.records_out.load(Ordering::Relaxed);
                    eprintln!(
                        "{label}: {} {} of {} records read, {} rows out, {}/s",
                        bar(read, total),
                        human(read as f64),
                        human(total as f64),
                        human(out as f64),
                        human(read as f64 / started.elapsed().as_secs_f64()),
                    );
                }
            }
        });
        Progress {
            stop,
            handle: Some(handle),
        }
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
