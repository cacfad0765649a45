//! The 128-bit hash space shards divide among themselves.

use md5::{Digest, Md5};

/// Where a partition key lands: MD5 of its UTF-8 bytes as a big-endian u128.
pub fn partition_hash(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// `n` ranges of `floor(2^128 / n)` keys each, the last one ending at
/// `2^128 - 1`, as CreateStream lays shards out.
pub fn uniform_ranges(n: u32) -> Vec<(u128, u128)> {
    if n <= 1 {
        return vec![(0, u128::MAX)];
    }
    let n128 = u128::from(n);
    // floor(2^128 / n) without 2^128: it is one more than floor((2^128-1)/n)
    // exactly when n divides 2^128.
    let step = u128::MAX / n128 + u128::from(n.is_power_of_two());
    (0..n128)
        .map(|i| {
            let start = i * step;
            let end = if i + 1 == n128 {
                u128::MAX
            } else {
                (i + 1) * step - 1
            };
            (start, end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_shards_split_the_space_at_two_to_the_127() {
        let r = uniform_ranges(2);
        assert_eq!(r[0], (0, (1u128 << 127) - 1));
        assert_eq!(r[1], (1u128 << 127, u128::MAX));
    }

    #[test]
    fn ranges_are_contiguous_and_cover_everything() {
        for n in [1, 3, 5, 7, 16, 100] {
            let r = uniform_ranges(n);
            assert_eq!(r.len(), n as usize);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[r.len() - 1].1, u128::MAX);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
        // Three shards get floor(2^128/3) keys each, as Kinesis lays them out.
        assert_eq!(
            uniform_ranges(3)[1].0.to_string(),
            "113427455640312821154458202477256070485"
        );
    }

    #[test]
    fn md5_routing_matches_kinesis() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(
            partition_hash("a"),
            0x0cc1_75b9_c0f1_b6a8_31c3_99e2_6977_2661
        );
    }
}
