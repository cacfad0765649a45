//! The run's figures, as a table or one JSON object.

use serde_json::json;

use super::histogram::Histogram;

pub struct Report<'a> {
    pub endpoint: &'a str,
    pub stream: &'a str,
    pub shards: usize,
    pub rate: u64,
    pub record_size: usize,
    pub duration_s: f64,
    /// From the first intended put to the last answer.
    pub put_seconds: f64,
    /// From the first intended put to the last record read.
    pub get_seconds: f64,
    pub producers: usize,
    pub batch: usize,
    pub consumer: &'static str,
    pub sent: u64,
    pub acked: u64,
    pub throttled: u64,
    pub failed: u64,
    pub bytes_in: u64,
    /// Records read back, a record read twice counted twice.
    pub received: u64,
    pub distinct: u64,
    pub bytes_out: u64,
    pub put_latency: &'a Histogram,
    pub get_latency: &'a Histogram,
    pub first_error: Option<String>,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn latency_json(histogram: &Histogram) -> serde_json::Value {
    json!({
        "count": histogram.count(),
        "p50_ms": ms(histogram.quantile(0.5)),
        "p99_ms": ms(histogram.quantile(0.99)),
        "p999_ms": ms(histogram.quantile(0.999)),
        "max_ms": ms(histogram.max()),
    })
}

impl Report<'_> {
    fn in_per_second(&self, n: u64) -> f64 {
        n as f64 / self.put_seconds.max(1e-9)
    }

    fn out_per_second(&self, n: u64) -> f64 {
        n as f64 / self.get_seconds.max(1e-9)
    }

    /// What the rate asks for over the duration; None: as fast as answered.
    fn planned(&self) -> Option<u64> {
        (self.rate > 0).then(|| (self.rate as f64 * self.duration_s).round() as u64)
    }

    fn missing(&self) -> u64 {
        self.acked.saturating_sub(self.distinct)
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "endpoint": self.endpoint,
            "stream": self.stream,
            "shards": self.shards,
            "target_rate": self.rate,
            "record_size": self.record_size,
            "duration_s": self.duration_s,
            "producers": self.producers,
            "batch": self.batch,
            "consumer": self.consumer,
            "records": {
                "planned": self.planned(),
                "sent": self.sent, "acknowledged": self.acked, "throttled": self.throttled,
                "failed": self.failed, "received": self.received,
                "missing": self.missing(), "duplicates": self.received - self.distinct,
            },
            "put_seconds": self.put_seconds,
            "get_seconds": self.get_seconds,
            "in": {"records_per_s": self.in_per_second(self.acked), "mb_per_s": self.in_per_second(self.bytes_in) / 1e6},
            "out": {"records_per_s": self.out_per_second(self.received), "mb_per_s": self.out_per_second(self.bytes_out) / 1e6},
            "put_records_latency": latency_json(self.put_latency),
            "put_to_get_latency": latency_json(self.get_latency),
            "first_error": self.first_error,
        })
    }

    pub fn table(&self) -> String {
        let rate = if self.rate == 0 {
            "as fast as answered".to_string()
        } else {
            format!("{} records/s", self.rate)
        };
        let latency = |h: &Histogram| {
            format!(
                "p50 {:.1} ms  p99 {:.1} ms  p99.9 {:.1} ms  max {:.1} ms",
                ms(h.quantile(0.5)),
                ms(h.quantile(0.99)),
                ms(h.quantile(0.999)),
                ms(h.max())
            )
        };
        let mut out = format!(
            "{} stream {} ({} shards): {rate} of {} B for {:.0} s, {} producer(s), {} per PutRecords, {} consumer\n",
            self.endpoint,
            self.stream,
            self.shards,
            self.record_size,
            self.duration_s,
            self.producers,
            self.batch,
            self.consumer,
        );
        out += &format!(
            "  in   {:>10.0} records/s  {:>8.2} MB/s  (over {:.1} s to the last answer)\n  out  {:>10.0} records/s  {:>8.2} MB/s  (over {:.1} s to the last record read)\n",
            self.in_per_second(self.acked),
            self.in_per_second(self.bytes_in) / 1e6,
            self.put_seconds,
            self.out_per_second(self.received),
            self.out_per_second(self.bytes_out) / 1e6,
            self.get_seconds,
        );
        out += &format!(
            "  PutRecords latency (from the intended send): {}\n",
            latency(self.put_latency)
        );
        out += &format!("  put-to-get latency: {}\n", latency(self.get_latency));
        let planned = self
            .planned()
            .map_or(String::new(), |n| format!("planned {n}, "));
        out += &format!(
            "  records: {planned}sent {}, acknowledged {}, throttled {}, failed {}, received {}, missing {}, duplicates {}\n",
            self.sent,
            self.acked,
            self.throttled,
            self.failed,
            self.received,
            self.missing(),
            self.received - self.distinct,
        );
        if let Some(error) = &self.first_error {
            out += &format!("  first error: {error}\n");
        }
        out
    }
}
