//! CPU time of this process (every thread, live or joined), from
//! `/proc/self/stat`, as Flink's nexmark harness reads its processes'.

/// Linux reports `utime` and `stime` in clock ticks of `USER_HZ`, which is
/// 100 on every architecture Linux ships (the ABI fixes it).
const TICKS_PER_SECOND: f64 = 100.0;

pub fn process_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    parse_stat(&stat).ok_or_else(|| anyhow::anyhow!("unexpected /proc/self/stat: {stat}"))
}

fn parse_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses; the
    // fields after its closing parenthesis start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_ticks() {
        let stat = "42 (run (x) y) R 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_stat(stat), Some(3.0));
        assert!(process_cpu_seconds().is_ok());
    }
}
