//! Times as playlists and manifests write them: ISO 8601 dates and
//! durations, to the millisecond.

/// A date in UTC with milliseconds: `2023-11-14T22:13:20.000Z`.
pub fn date_time(ms: u64) -> Option<String> {
    let at = chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)?;
    Some(at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// A duration in seconds only (`PT3723.500S`), the one form every DASH
/// reader parses alike: ffmpeg's reads each component with `%f`, so
/// hours and minutes would gain nothing.
pub fn duration(ms: u64) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations_keep_milliseconds() {
        assert_eq!(
            date_time(1_700_000_002_033).as_deref(),
            Some("2023-11-14T22:13:22.033Z")
        );
        assert_eq!(date_time(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(date_time(u64::MAX), None);
        assert_eq!(duration(0), "PT0.000S");
        assert_eq!(duration(3_723_500), "PT3723.500S");
    }
}
