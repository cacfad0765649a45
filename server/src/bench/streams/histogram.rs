//! Latencies in microseconds, in log-linear buckets (16 per power of two,
//! so a percentile is within about 6% of the value): constant memory
//! however long the run, and cheap to merge.

const SUB_BUCKETS: usize = 16;
const BUCKETS: usize = 64 * SUB_BUCKETS;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(value: u64) -> usize {
    if value < SUB_BUCKETS as u64 {
        return value as usize;
    }
    let power = 63 - value.leading_zeros() as usize;
    let sub = ((value >> (power - 4)) & (SUB_BUCKETS as u64 - 1)) as usize;
    ((power - 3) * SUB_BUCKETS + sub).min(BUCKETS - 1)
}

/// The highest value bucket `index` holds.
fn upper(index: usize) -> u64 {
    if index < SUB_BUCKETS {
        return index as u64;
    }
    let power = index / SUB_BUCKETS + 3;
    let sub = (index % SUB_BUCKETS) as u64;
    ((SUB_BUCKETS as u64 + sub + 1) << (power - 4)) - 1
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.counts[bucket(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0 to 1), in microseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return upper(index).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_bucket_width() {
        let mut histogram = Histogram::default();
        for micros in 1..=10_000 {
            histogram.record(micros);
        }
        for (q, exact) in [(0.5, 5_000.0), (0.99, 9_900.0), (0.999, 9_990.0)] {
            let got = histogram.quantile(q) as f64;
            assert!((got - exact).abs() / exact < 0.07, "q{q}: {got} vs {exact}");
        }
        assert_eq!(histogram.quantile(1.0), 10_000);
        let mut other = Histogram::default();
        other.record(1_000_000);
        histogram.merge(&other);
        assert_eq!(histogram.max(), 1_000_000);
        assert_eq!(histogram.count(), 10_001);
        for value in [0, 1, 15, 16, 17, 1 << 20, u64::MAX / 2] {
            assert!(upper(bucket(value)) >= value, "{value}");
        }
    }
}
