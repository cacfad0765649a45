//! Checkpoint and savepoint state encrypted at rest under the server's key
//! (`streams.encryption_key`), as stream records and video fragments are.
//!
//! Each value gets a random nonce, stored beside it: a checkpoint id can be
//! taken again after a crash with other state, so no counter the job keeps
//! is sure never to repeat. State written without a key has no trailer and
//! reads as it always did.

use std::borrow::Cow;

use runnel_engine::checkpoint::encoding::Reader;
use runnel_store::crypto::{Domain, KEY_LEN, apply_in};

pub type Key = [u8; KEY_LEN];

/// Marks a trailer of a 16-byte nonce: the value before it is encrypted.
const ENCRYPTED: u8 = 1;

/// The state as stored, and the trailer that goes after it. Without a
/// key the state is stored as it is, uncopied: it may be hundreds of MB.
pub fn seal<'a>(key: Option<&Key>, state: &'a [u8]) -> (Cow<'a, [u8]>, Vec<u8>) {
    let Some(key) = key else {
        return (Cow::Borrowed(state), Vec::new());
    };
    let nonce = *uuid::Uuid::new_v4().as_bytes();
    let mut trailer = Vec::with_capacity(17);
    trailer.push(ENCRYPTED);
    trailer.extend_from_slice(&nonce);
    (Cow::Owned(apply(key, &nonce, state)), trailer)
}

/// The state back from what `seal` stored; `rest` reads its trailer.
pub fn open(key: Option<&Key>, stored: &[u8], rest: &mut Reader<'_>) -> Result<Vec<u8>, String> {
    if rest.is_empty() {
        return Ok(stored.to_vec());
    }
    let mark = rest.take(1).map_err(|e| e.to_string())?;
    if mark != [ENCRYPTED] {
        return Err("checkpoint state has an unknown trailer".into());
    }
    let nonce: [u8; 16] = rest
        .take(16)
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "checkpoint state nonce is not 16 bytes".to_string())?;
    let key = key.ok_or_else(|| {
        "the checkpoint state is encrypted and no encryption key is configured (streams.encryption_key)"
            .to_string()
    })?;
    Ok(apply(key, &nonce, stored))
}

fn apply(key: &Key, nonce: &[u8; 16], bytes: &[u8]) -> Vec<u8> {
    let owner = u64::from_le_bytes(nonce[..8].try_into().unwrap_or_default());
    let high = u32::from_le_bytes(nonce[8..12].try_into().unwrap_or_default());
    let low = u64::from(u32::from_le_bytes(
        nonce[12..].try_into().unwrap_or_default(),
    ));
    apply_in(key, Domain::Checkpoints, owner, high, low, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_state_holds_no_plaintext_and_opens_only_with_the_key() {
        let key = [9u8; KEY_LEN];
        let state = b"window state of sensor-42 ".repeat(8);
        let (stored, trailer) = seal(Some(&key), &state);
        assert!(!stored.windows(9).any(|w| w == b"sensor-42"));
        assert_eq!(
            open(Some(&key), &stored, &mut Reader::new(&trailer)).unwrap(),
            state
        );
        assert!(open(None, &stored, &mut Reader::new(&trailer)).is_err());
        let (again, _) = seal(Some(&key), &state);
        assert_ne!(stored, again, "each seal takes a fresh nonce");
        let (plain, trailer) = seal(None, &state);
        assert!(trailer.is_empty());
        assert_eq!(
            open(Some(&key), &plain, &mut Reader::new(&trailer)).unwrap(),
            state
        );
    }
}
