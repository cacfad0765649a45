//! A running job's figures, read from the counters its operators share.

use std::sync::atomic::Ordering;

use runnel_engine::context::JobContext;

/// How far a job's sinks have seen event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "millis", rename_all = "snake_case")]
pub enum Watermark {
    /// No source has said anything about time yet.
    NotYet,
    At(i64),
    /// Every source has ended: every window has fired.
    EndOfInput,
}

impl Watermark {
    pub fn from_millis(ms: i64) -> Self {
        match ms {
            i64::MIN => Watermark::NotYet,
            i64::MAX => Watermark::EndOfInput,
            ms => Watermark::At(ms),
        }
    }

    /// As `runnel sql run` prints it: a SQL timestamp, `-` or `end of input`.
    pub fn display(self) -> String {
        match self {
            Watermark::NotYet => "-".to_string(),
            Watermark::EndOfInput => "end of input".to_string(),
            Watermark::At(ms) => chrono::DateTime::from_timestamp_millis(ms).map_or_else(
                || ms.to_string(),
                |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Figures {
    /// Rows the sources have read.
    pub records_in: u64,
    /// Rows the sinks have been given.
    pub records_out: u64,
    /// Rows older than the watermark when they arrived.
    pub late_records: u64,
    /// Rows (joins) and keys (aggregates) the operators hold.
    pub state_rows: u64,
    pub watermark: Watermark,
}

impl Figures {
    pub fn of(context: &JobContext) -> Self {
        Figures {
            records_in: context.records_in.load(Ordering::Relaxed),
            records_out: context.records_out.load(Ordering::Relaxed),
            late_records: context.late_records.load(Ordering::Relaxed),
            state_rows: context.state_rows.load(Ordering::Relaxed),
            watermark: Watermark::from_millis(context.watermark.load(Ordering::Relaxed)),
        }
    }

    /// One line, as `runnel sql run` prints it on stderr.
    pub fn status_line(&self) -> String {
        format!(
            "records in {}, out {}, late {}, watermark {}",
            self.records_in,
            self.records_out,
            self.late_records,
            self.watermark.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_print_as_sql_timestamps() {
        assert_eq!(Watermark::At(0).display(), "1970-01-01 00:00:00.000");
        assert_eq!(
            Watermark::from_millis(1_586_937_601_500).display(),
            "2020-04-15 08:00:01.500"
        );
        assert_eq!(Watermark::from_millis(i64::MIN).display(), "-");
        assert_eq!(Watermark::from_millis(i64::MAX).display(), "end of input");
    }
}
