//! Flink's restart strategies, set in the script as Flink's keys are:
//! `SET 'restart-strategy.type' = 'fixed-delay'` and its options. Without
//! checkpoints (as here, so far) Flink restarts nothing unless told to, and
//! neither does Runnel. A restarted job reads its sources from their
//! initial positions again.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RestartStrategy {
    #[default]
    None,
    FixedDelay {
        attempts: u32,
        delay_ms: u64,
    },
    ExponentialDelay {
        initial_ms: u64,
        max_ms: u64,
        multiplier: f64,
        /// Flink's default is to try without end.
        attempts: Option<u32>,
    },
}

impl RestartStrategy {
    /// The strategy the script's settings name, or why they cannot be used.
    pub fn from_settings(settings: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |key: &str| settings.get(&format!("restart-strategy.{key}"));
        let duration = |key: &str, default: u64| -> Result<u64, String> {
            get(key).map_or(Ok(default), |text| {
                runnel_connectors::options::parse_duration(text)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .ok_or_else(|| {
                    format!(
                        "'restart-strategy.{key}' must be a duration such as '10 s', got '{text}'"
                    )
                })
            })
        };
        let count = |key: &str| -> Result<Option<u32>, String> {
            get(key)
                .map(|text| {
                    text.trim().parse::<u32>().map_err(|_| {
                        format!("'restart-strategy.{key}' must be a whole number, got '{text}'")
                    })
                })
                .transpose()
        };
        let Some(kind) = get("type") else {
            return Ok(RestartStrategy::None);
        };
        match kind.to_ascii_lowercase().as_str() {
            "none" | "off" | "disable" => Ok(RestartStrategy::None),
            "fixed-delay" | "fixeddelay" => Ok(RestartStrategy::FixedDelay {
                attempts: count("fixed-delay.attempts")?.unwrap_or(1),
                delay_ms: duration("fixed-delay.delay", 1_000)?,
            }),
            "exponential-delay" => {
                let multiplier = match get("exponential-delay.backoff-multiplier") {
                    None => 1.5,
                    Some(text) => text
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|m| m.is_finite() && *m >= 1.0)
                        .ok_or_else(|| format!("'restart-strategy.exponential-delay.backoff-multiplier' must be a number of at least 1, got '{text}'"))?,
                };
                Ok(RestartStrategy::ExponentialDelay {
                    initial_ms: duration("exponential-delay.initial-backoff", 1_000)?,
                    max_ms: duration("exponential-delay.max-backoff", 60_000)?,
                    multiplier,
                    attempts: count("exponential-delay.attempts-before-reset-backoff")?,
                })
            }
            other => Err(format!(
                "restart-strategy.type '{other}' is not supported; use none, fixed-delay or exponential-delay"
            )),
        }
    }

    /// How long to wait before restart number `restarts + 1`, or `None`
    /// when the job is to stay failed.
    pub fn next_delay(&self, restarts: u32) -> Option<Duration> {
        match self {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay_ms } => {
                (restarts < *attempts).then(|| Duration::from_millis(*delay_ms))
            }
            RestartStrategy::ExponentialDelay {
                initial_ms,
                max_ms,
                multiplier,
                attempts,
            } => {
                if attempts.is_some_and(|a| restarts >= a) {
                    return None;
                }
                let delay = *initial_ms as f64 * multiplier.powi(restarts.min(64) as i32);
                Some(Duration::from_millis(delay.min(*max_ms as f64) as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("restart-strategy.{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn strategies_read_as_flink_names_them() {
        assert_eq!(
            RestartStrategy::from_settings(&BTreeMap::new()),
            Ok(RestartStrategy::None)
        );
        let fixed = RestartStrategy::from_settings(&settings(&[
            ("type", "fixed-delay"),
            ("fixed-delay.attempts", "2"),
            ("fixed-delay.delay", "100 ms"),
        ]))
        .unwrap();
        assert_eq!(fixed.next_delay(0), Some(Duration::from_millis(100)));
        assert_eq!(fixed.next_delay(1), Some(Duration::from_millis(100)));
        assert_eq!(fixed.next_delay(2), None);
        let exponential = RestartStrategy::from_settings(&settings(&[
            ("type", "exponential-delay"),
            ("exponential-delay.initial-backoff", "1 s"),
            ("exponential-delay.max-backoff", "3 s"),
            ("exponential-delay.backoff-multiplier", "2"),
        ]))
        .unwrap();
        assert_eq!(exponential.next_delay(0), Some(Duration::from_secs(1)));
        assert_eq!(exponential.next_delay(1), Some(Duration::from_secs(2)));
        assert_eq!(exponential.next_delay(5), Some(Duration::from_secs(3)));
        assert!(
            RestartStrategy::from_settings(&settings(&[("type", "sometimes")]))
                .unwrap_err()
                .contains("sometimes")
        );
        assert!(
            RestartStrategy::from_settings(&settings(&[
                ("type", "fixed-delay"),
                ("fixed-delay.delay", "soon")
            ]))
            .is_err()
        );
    }
}
