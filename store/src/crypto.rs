//! Encryption at rest: ChaCha20 (RFC 8439) keyed from Runnel's configured
//! key, for stream records, video fragments and checkpoints.
//!
//! Each owner (a stream, a video stream, ...) gets its own subkey: the
//! first keystream block under a nonce of its id and its domain, so a
//! Kinesis stream and a video stream with the same id never share one.
//! Within an owner each value is encrypted under a nonce its writer keeps
//! unique ((shard, counter) for records, (segment, offset) for fragments),
//! so no keystream is ever reused. Written here rather than pulled in
//! because the workspace's chacha20 is built without its cipher feature,
//! and enabling it would rebuild the crates above it.

pub const KEY_LEN: usize = 32;

fn quarter_round(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

fn block(key: &[u8; KEY_LEN], counter: u32, nonce: &[u8; 12]) -> [u8; 64] {
    let mut state = [0u32; 16];
    state[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for i in 0..8 {
        state[4 + i] =
            u32::from_le_bytes([key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]]);
    }
    state[12] = counter;
    for i in 0..3 {
        state[13 + i] = u32::from_le_bytes([
            nonce[4 * i],
            nonce[4 * i + 1],
            nonce[4 * i + 2],
            nonce[4 * i + 3],
        ]);
    }
    let mut working = state;
    for _ in 0..10 {
        quarter_round(&mut working, 0, 4, 8, 12);
        quarter_round(&mut working, 1, 5, 9, 13);
        quarter_round(&mut working, 2, 6, 10, 14);
        quarter_round(&mut working, 3, 7, 11, 15);
        quarter_round(&mut working, 0, 5, 10, 15);
        quarter_round(&mut working, 1, 6, 11, 12);
        quarter_round(&mut working, 2, 7, 8, 13);
        quarter_round(&mut working, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for i in 0..16 {
        out[4 * i..4 * i + 4].copy_from_slice(&working[i].wrapping_add(state[i]).to_le_bytes());
    }
    out
}

fn xor_keystream(key: &[u8; KEY_LEN], nonce: &[u8; 12], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for (i, chunk) in data.chunks(64).enumerate() {
        // Values are far below 2^32 blocks of 64 bytes (a record 10 MiB,
        // a fragment 50 MB).
        let keystream = block(key, 1 + i as u32, nonce);
        out.extend(chunk.iter().zip(keystream.iter()).map(|(d, k)| d ^ k));
    }
    out
}

/// Whose subkey: the domain is part of its derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Kinesis stream records (the derivation records were first written
    /// with, kept so they stay readable).
    Records,
    VideoFragments,
    Checkpoints,
}

impl Domain {
    fn tag(self) -> [u8; 4] {
        match self {
            Domain::Records => [0xff; 4],
            Domain::VideoFragments => *b"kvs1",
            Domain::Checkpoints => *b"ckp1",
        }
    }
}

fn stream_key(key: &[u8; KEY_LEN], domain: Domain, stream: u64) -> [u8; KEY_LEN] {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&stream.to_le_bytes());
    nonce[8..].copy_from_slice(&domain.tag());
    let first = block(key, 0, &nonce);
    let mut sub = [0u8; KEY_LEN];
    sub.copy_from_slice(&first[..KEY_LEN]);
    sub
}

/// Encrypts or decrypts (the same operation) one record's data.
pub fn apply(key: &[u8; KEY_LEN], stream: u64, shard: u32, counter: u64, data: &[u8]) -> Vec<u8> {
    apply_in(key, Domain::Records, stream, shard, counter, data)
}

/// Encrypts or decrypts one value of `owner` in `domain`; `(high, low)` must
/// never repeat within the owner. Values up to 256 GiB (2^32 blocks).
pub fn apply_in(
    key: &[u8; KEY_LEN],
    domain: Domain,
    owner: u64,
    high: u32,
    low: u64,
    data: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(&high.to_le_bytes());
    nonce[4..].copy_from_slice(&low.to_le_bytes());
    xor_keystream(&stream_key(key, domain, owner), &nonce, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_function_matches_rfc_8439() {
        let mut key = [0u8; KEY_LEN];
        for (i, k) in key.iter_mut().enumerate() {
            *k = i as u8;
        }
        let nonce = [0, 0, 0, 9, 0, 0, 0, 0x4a, 0, 0, 0, 0];
        let out = block(&key, 1, &nonce);
        assert_eq!(
            out[..16],
            [
                0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20,
                0x71, 0xc4
            ]
        );
    }

    #[test]
    fn records_round_trip_and_differ_per_position() {
        let key = [7u8; KEY_LEN];
        let data = vec![42u8; 200];
        let a = apply(&key, 1, 0, 5, &data);
        assert_ne!(a, data);
        assert_ne!(a, apply(&key, 1, 0, 6, &data));
        assert_ne!(a, apply(&key, 2, 0, 5, &data));
        assert_eq!(apply(&key, 1, 0, 5, &a), data);
    }
}
