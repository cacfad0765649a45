//! The `nexmark` connector's options, spelled as Flink's nexmark source
//! spells them, and the event-time model they define.

use crate::ConnectorError;
use crate::options::Options;

/// Flink's benchmark configuration runs at 10M events/s of event time.
const DEFAULT_RATE: f64 = 10_000_000.0;
/// Event time starts here rather than at the wall clock (Flink uses the
/// start time), so a seed gives the same events, windows included, every run.
pub const DEFAULT_BASE_TIME_MS: i64 = 1_577_836_800_000; // 2020-01-01 00:00:00 UTC

#[derive(Debug, Clone)]
pub struct NexmarkConfig {
    /// Total events over all workers; `None` is unbounded.
    pub events: Option<u64>,
    pub person_proportion: u64,
    pub auction_proportion: u64,
    pub bid_proportion: u64,
    pub avg_person_size: i32,
    pub avg_auction_size: i32,
    pub avg_bid_size: i32,
    pub hot_auction_ratio: i32,
    pub hot_bidders_ratio: i32,
    pub hot_sellers_ratio: i32,
    pub num_in_flight_auctions: i64,
    pub num_active_people: i64,
    pub seed: i64,
    pub base_time_ms: i64,
    /// Emit no faster than the event times advance on the wall clock.
    pub rate_limited: bool,
    timeline: Timeline,
}

/// Inter-event delays in microseconds: one rate, or Flink's SQUARE shape
/// alternating `first-event.rate` and `next-event.rate` every half period.
#[derive(Debug, Clone)]
struct Timeline {
    delays_us: Vec<f64>,
    step_ms: i64,
    events_per_epoch: u64,
}

impl NexmarkConfig {
    pub fn from_options(options: &Options) -> Result<Self, ConnectorError> {
        let first = positive_f64(options, "first-event.rate", DEFAULT_RATE)?;
        let next = positive_f64(options, "next-event.rate", first)?;
        match options.get("rate.shape").unwrap_or("SQUARE") {
            s if s.eq_ignore_ascii_case("SQUARE") => {}
            other => {
                return Err(ConnectorError::Option(format!(
                    "rate.shape '{other}' is not supported; available: SQUARE"
                )));
            }
        }
        let period_s = match options.get("rate.period") {
            None => 600,
            Some(v) => duration_seconds(v).ok_or_else(|| {
                ConnectorError::Option(format!(
                    "rate.period must be a duration such as '600 s' or '10 min', got '{v}'"
                ))
            })?,
        }
        .max(2);
        let step_s = period_s.div_ceil(2);
        let delays_us = if first == next {
            vec![1e6 / first]
        } else {
            vec![1e6 / first, 1e6 / next]
        };
        let events_per_epoch = delays_us
            .iter()
            .map(|d| (step_s as f64 * 1e6 / d) as u64)
            .sum::<u64>()
            .max(1);
        let proportion = |key: &str, default: u64| -> Result<u64, ConnectorError> {
            Ok(options.u64(key)?.unwrap_or(default))
        };
        let config = NexmarkConfig {
            events: options.u64("events.num")?.filter(|n| *n > 0),
            person_proportion: proportion("person.proportion", 1)?,
            auction_proportion: proportion("auction.proportion", 3)?,
            bid_proportion: proportion("bid.proportion", 46)?,
            avg_person_size: size(options, "person.avg-size", 200)?,
            avg_auction_size: size(options, "auction.avg-size", 500)?,
            avg_bid_size: size(options, "bid.avg-size", 100)?,
            hot_auction_ratio: ratio(options, "bid.hot-ratio.auctions", 2)?,
            hot_bidders_ratio: ratio(options, "bid.hot-ratio.bidders", 4)?,
            hot_sellers_ratio: ratio(options, "auction.hot-ratio.sellers", 4)?,
            num_in_flight_auctions: 100,
            num_active_people: 1000,
            seed: match options.get("seed") {
                None => 0,
                Some(v) => v.parse().map_err(|_| {
                    ConnectorError::Option(format!("seed must be a whole number, got '{v}'"))
                })?,
            },
            base_time_ms: match options.get("base-time") {
                None => DEFAULT_BASE_TIME_MS,
                Some(v) => v.parse().map_err(|_| {
                    ConnectorError::Option(format!(
                        "base-time must be milliseconds since the epoch, got '{v}'"
                    ))
                })?,
            },
            rate_limited: options.bool("rate.limited", false)?,
            timeline: Timeline {
                delays_us,
                step_ms: step_s as i64 * 1000,
                events_per_epoch,
            },
        };
        if config.person_proportion == 0 || config.auction_proportion == 0 {
            return Err(ConnectorError::Option(
                "person.proportion and auction.proportion must be at least 1".into(),
            ));
        }
        Ok(config)
    }

    /// Events per second of event time at the slower of the two rates.
    pub fn slowest_rate(&self) -> f64 {
        let longest = self.timeline.delays_us.iter().copied().fold(0.0, f64::max);
        1e6 / longest
    }

    pub fn total_proportion(&self) -> u64 {
        self.person_proportion + self.auction_proportion + self.bid_proportion
    }

    /// Event time of event number `n`: the base time plus `n` inter-event
    /// delays, as Flink's `timestampAndInterEventDelayUsForEvent` computes it.
    pub fn timestamp(&self, n: u64) -> i64 {
        let t = &self.timeline;
        if let [delay] = t.delays_us[..] {
            return self.base_time_ms + (n as f64 * delay) as i64 / 1000;
        }
        let epoch = (n / t.events_per_epoch) as i64;
        let mut rest = n % t.events_per_epoch;
        let mut offset_ms = 0;
        for delay in &t.delays_us {
            let in_step = (t.step_ms as f64 * 1000.0 / delay) as u64;
            if rest < in_step {
                return self.base_time_ms
                    + epoch * t.step_ms * t.delays_us.len() as i64
                    + offset_ms
                    + (rest as f64 * delay) as i64 / 1000;
            }
            rest -= in_step;
            offset_ms += t.step_ms;
        }
        self.base_time_ms + (epoch + 1) * t.step_ms * t.delays_us.len() as i64
    }
}

fn positive_f64(options: &Options, key: &str, default: f64) -> Result<f64, ConnectorError> {
    match options.get(key) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
            _ => Err(ConnectorError::Option(format!(
                "{key} must be a positive number of events per second, got '{v}'"
            ))),
        },
    }
}

fn ratio(options: &Options, key: &str, default: i32) -> Result<i32, ConnectorError> {
    match options.u64(key)? {
        None => Ok(default),
        Some(n) if (1..=i32::MAX as u64).contains(&n) => Ok(n as i32),
        Some(n) => Err(ConnectorError::Option(format!(
            "{key} must be at least 1, got {n}"
        ))),
    }
}

/// Flink's memory sizes: `200`, `200b`, `1kb`.
fn size(options: &Options, key: &str, default: i32) -> Result<i32, ConnectorError> {
    let Some(v) = options.get(key) else {
        return Ok(default);
    };
    let lower = v.trim().to_ascii_lowercase();
    let (digits, unit) = lower.split_at(
        lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len()),
    );
    let multiplier = match unit.trim() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" => 1024,
        _ => 0,
    };
    match digits.parse::<i64>() {
        Ok(n) if multiplier > 0 && n * multiplier <= i32::MAX as i64 => Ok((n * multiplier) as i32),
        _ => Err(ConnectorError::Option(format!(
            "{key} must be a size such as '100b', got '{v}'"
        ))),
    }
}

/// Flink's duration syntax for the few units a rate period uses.
fn duration_seconds(v: &str) -> Option<u64> {
    let lower = v.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let n: u64 = lower[..split].parse().ok()?;
    let factor = match lower[split..].trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        _ => return None,
    };
    Some(n * factor)
}
