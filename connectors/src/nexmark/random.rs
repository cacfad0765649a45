//! `java.util.Random`, bit for bit: Flink's generator seeds one per event
//! with the event id, so using the same LCG gives the same ids, prices,
//! names and hot keys as Flink's nexmark source for the same event number.

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const ADDEND: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;

#[derive(Debug, Clone)]
pub struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    pub fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed as u64 ^ MULTIPLIER) & MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND)) & MASK;
        (self.seed >> (48 - bits)) as u32 as i32
    }

    /// `Random.nextInt()`.
    #[cfg(test)]
    pub fn next_i32(&mut self) -> i32 {
        self.next(32)
    }

    /// `Random.nextInt(bound)`; `bound` must be positive.
    pub fn next_int(&mut self, bound: i32) -> i32 {
        debug_assert!(bound > 0);
        let mut r = self.next(31);
        let m = bound - 1;
        if bound & m == 0 {
            return ((bound as i64 * r as i64) >> 31) as i32;
        }
        let mut u = r;
        loop {
            r = u % bound;
            if u.wrapping_sub(r).wrapping_add(m) >= 0 {
                return r;
            }
            u = self.next(31);
        }
    }

    /// `Random.nextLong()`.
    pub fn next_long(&mut self) -> i64 {
        ((self.next(32) as i64) << 32).wrapping_add(self.next(32) as i64)
    }

    /// `Random.nextDouble()`.
    pub fn next_double(&mut self) -> f64 {
        let high = (self.next(26) as i64) << 27;
        let low = self.next(27) as i64;
        (high + low) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Nexmark's `nextLong(random, n)`: an int draw when `n` fits one.
    pub fn next_long_below(&mut self, n: i64) -> i64 {
        let n = n.max(1);
        if n < i32::MAX as i64 {
            self.next_int(n as i32) as i64
        } else {
            (self.next_long() % n).wrapping_abs()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_java_util_random() {
        // Values printed by `new java.util.Random(42)`.
        let mut random = JavaRandom::new(42);
        assert_eq!(random.next_i32(), -1_170_105_035);
        assert_eq!(random.next_int(10), 3);
        let mut random = JavaRandom::new(42);
        assert_eq!(random.next_int(100), 30);
        assert_eq!(random.next_int(100), 63);
        let mut random = JavaRandom::new(7);
        assert_eq!(random.next_double(), 0.7306990420600421);
        assert_eq!(random.next_long(), -4_627_004_027_837_150_407);
        assert_eq!(random.next_int(26), 8);
    }
}
