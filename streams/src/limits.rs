//! Per-shard throughput limits, as token buckets holding one second's
//! worth: Kinesis's 1 MiB/s or 1,000 records/s in, 2 MiB/s and 5 calls/s out.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardLimits {
    pub write_bytes_per_sec: u64,
    pub write_records_per_sec: u64,
    pub read_bytes_per_sec: u64,
    pub get_records_per_sec: u64,
}

impl Default for ShardLimits {
    fn default() -> Self {
        ShardLimits {
            write_bytes_per_sec: 1024 * 1024,
            write_records_per_sec: 1000,
            read_bytes_per_sec: 2 * 1024 * 1024,
            get_records_per_sec: 5,
        }
    }
}

/// A bucket that refills continuously at `rate` per second up to `rate`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    pub fn new(rate: u64, now_ms: u64) -> Self {
        TokenBucket {
            rate: rate as f64,
            tokens: rate as f64,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last_ms = self.last_ms.max(now_ms);
    }

    pub fn available(&mut self, now_ms: u64) -> f64 {
        self.refill(now_ms);
        self.tokens
    }

    /// Takes `n` if they are there.
    pub fn try_take(&mut self, n: u64, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            true
        } else {
            false
        }
    }

    /// Takes `n` even into debt: reads are charged after the fact, and a
    /// large read makes the next calls wait.
    pub fn charge(&mut self, n: u64, now_ms: u64) {
        self.refill(now_ms);
        self.tokens -= n as f64;
    }
}

/// The write side of one shard: a record must fit in both buckets.
#[derive(Debug)]
pub struct WriteLimiter {
    bytes: TokenBucket,
    records: TokenBucket,
}

impl WriteLimiter {
    pub fn new(limits: &ShardLimits, multiplier: u64, now_ms: u64) -> Self {
        WriteLimiter {
            bytes: TokenBucket::new(limits.write_bytes_per_sec * multiplier, now_ms),
            records: TokenBucket::new(limits.write_records_per_sec * multiplier, now_ms),
        }
    }

    pub fn admit(&mut self, bytes: u64, now_ms: u64) -> bool {
        if self.bytes.available(now_ms) >= bytes as f64 && self.records.available(now_ms) >= 1.0 {
            self.bytes.charge(bytes, now_ms);
            self.records.charge(1, now_ms);
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
pub struct ReadLimiter {
    bytes: TokenBucket,
    calls: TokenBucket,
}

impl ReadLimiter {
    pub fn new(limits: &ShardLimits, now_ms: u64) -> Self {
        ReadLimiter {
            bytes: TokenBucket::new(limits.read_bytes_per_sec, now_ms),
            calls: TokenBucket::new(limits.get_records_per_sec, now_ms),
        }
    }

    /// A call is admitted while the byte bucket is not in debt.
    pub fn admit_call(&mut self, now_ms: u64) -> bool {
        self.bytes.available(now_ms) > 0.0 && self.calls.try_take(1, now_ms)
    }

    pub fn charge_bytes(&mut self, bytes: u64, now_ms: u64) {
        self.bytes.charge(bytes, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_beyond_a_thousand_records_a_second_are_refused_then_refilled() {
        let mut w = WriteLimiter::new(&ShardLimits::default(), 1, 0);
        let admitted = (0..1500).filter(|_| w.admit(10, 0)).count();
        assert_eq!(admitted, 1000);
        assert!(!w.admit(10, 0));
        assert!(w.admit(10, 100), "100 ms refills 100 records");
    }

    #[test]
    fn five_reads_a_second() {
        let mut r = ReadLimiter::new(&ShardLimits::default(), 0);
        assert_eq!((0..10).filter(|_| r.admit_call(0)).count(), 5);
        assert!(r.admit_call(200));
        r.charge_bytes(10 * 1024 * 1024, 200);
        assert!(
            !r.admit_call(2000),
            "a 10 MiB read leaves the bucket in debt"
        );
    }
}
