//! Playback session tokens, HLS's and DASH's alike. A token is the whole
//! session (stream, mode, range, expiry), as base64url of its MAC and its
//! JSON: nothing is kept on the server, and the MAC, under a key drawn at
//! process start, keeps a client from forging a session or widening one
//! to another stream, range or protocol. A restart ends every session, as
//! expiry would.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use runnel_connectors::kinesis::remote::sigv4::hmac;
use serde::{Deserialize, Serialize};

use crate::auth::sigv4::same;
use crate::video::selector::{Clock, TimeRange};

const MAC_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Live,
    LiveReplay,
    OnDemand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiscontinuityMode {
    Always,
    Never,
    OnDiscontinuity,
}

/// Which GET routes a session's token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Hls,
    Dash,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Hls => "HLS",
            Protocol::Dash => "MPEG-DASH",
        })
    }
}

/// Where a dynamic DASH manifest's media timeline meets the wall clock:
/// the producer time presented at `wall_ms`. Fixed when the session is
/// made, so that every reload of the manifest places a fragment at the
/// same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub producer_ms: u64,
    pub wall_ms: u64,
}

/// HLS's ContainerFormat: which segments its media playlist names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Container {
    #[default]
    FragmentedMp4,
    MpegTs,
}

/// What only one protocol's answers depend on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    Hls {
        discontinuity: DiscontinuityMode,
        container: Container,
    },
    Dash {
        display_fragment_number: bool,
        anchor: Anchor,
    },
}

impl Format {
    pub fn protocol(&self) -> Protocol {
        match self {
            Format::Hls { .. } => Protocol::Hls,
            Format::Dash { .. } => Protocol::Dash,
        }
    }
}

/// What a session may play, and how its playlists or manifest are
/// written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub stream_id: u64,
    pub stream_name: String,
    pub mode: Mode,
    pub clock: Clock,
    /// LIVE_REPLAY and ON_DEMAND only.
    pub range: Option<TimeRange>,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub max_results: u32,
    pub display_timestamp: bool,
    /// The Info and Tracks the init segment is written from.
    pub header: u64,
    pub format: Format,
}

impl Session {
    /// HLS's segment format; DASH's is always fragmented MP4.
    pub fn container(&self) -> Container {
        match self.format {
            Format::Hls { container, .. } => container,
            Format::Dash { .. } => Container::FragmentedMp4,
        }
    }

    /// HLS's marking of gaps; a DASH timeline places each fragment at
    /// its own time instead.
    pub fn discontinuity(&self) -> DiscontinuityMode {
        match self.format {
            Format::Hls { discontinuity, .. } => discontinuity,
            Format::Dash { .. } => DiscontinuityMode::Never,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("The session token is not valid")]
    Invalid,
    #[error("The session token has expired")]
    Expired,
}

pub struct Sealer {
    key: [u8; 32],
}

impl Sealer {
    /// A sealer with a fresh random key (two v4 UUIDs: 244 bits from the
    /// OS's generator).
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Sealer { key }
    }

    #[cfg(test)]
    fn with_key(key: [u8; 32]) -> Self {
        Sealer { key }
    }

    pub fn seal(&self, session: &Session) -> String {
        let json = serde_json::to_vec(session).unwrap_or_default();
        let mut bytes = hmac(&self.key, &json).to_vec();
        bytes.extend_from_slice(&json);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The session `token` holds, if this process sealed it and it has
    /// not expired by `now_ms`.
    pub fn open(&self, token: &str, now_ms: u64) -> Result<Session, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Invalid)?;
        if bytes.len() <= MAC_LEN {
            return Err(TokenError::Invalid);
        }
        let (mac, json) = bytes.split_at(MAC_LEN);
        if !same(mac, hmac(&self.key, json)) {
            return Err(TokenError::Invalid);
        }
        let session: Session = serde_json::from_slice(json).map_err(|_| TokenError::Invalid)?;
        if now_ms >= session.expires_ms {
            return Err(TokenError::Expired);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            stream_id: 3,
            stream_name: "cam".into(),
            mode: Mode::OnDemand,
            clock: Clock::Producer,
            range: Some(TimeRange {
                clock: Clock::Producer,
                start_ms: 1_000,
                end_ms: Some(9_000),
            }),
            created_ms: 10_000,
            expires_ms: 310_000,
            max_results: 1000,
            display_timestamp: false,
            header: 0,
            format: Format::Hls {
                discontinuity: DiscontinuityMode::Never,
                container: Container::FragmentedMp4,
            },
        }
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let sealer = Sealer::with_key([7; 32]);
        let token = sealer.seal(&session());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token} must need no escaping in a URL"
        );
        assert_eq!(sealer.open(&token, 10_000), Ok(session()));
        assert_eq!(sealer.open(&token, 309_999), Ok(session()));
        assert_eq!(sealer.open(&token, 310_000), Err(TokenError::Expired));
    }

    #[test]
    fn a_changed_or_foreign_token_does_not_open() {
        let sealer = Sealer::with_key([7; 32]);
        let token = sealer.seal(&session());
        // Another stream's session, or the same one as MPEG-TS or DASH,
        // with this token's MAC.
        let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
        let mut widened = session();
        widened.stream_id = 4;
        widened.expires_ms = u64::MAX;
        let mut as_ts = session();
        as_ts.format = Format::Hls {
            discontinuity: DiscontinuityMode::Never,
            container: Container::MpegTs,
        };
        let mut as_dash = session();
        as_dash.format = Format::Dash {
            display_fragment_number: true,
            anchor: Anchor {
                producer_ms: 1_000,
                wall_ms: 10_000,
            },
        };
        for other in [widened, as_ts, as_dash] {
            let mut forged = bytes[..MAC_LEN].to_vec();
            forged.extend_from_slice(&serde_json::to_vec(&other).expect("json"));
            assert_eq!(
                sealer.open(&URL_SAFE_NO_PAD.encode(forged), 10_000),
                Err(TokenError::Invalid)
            );
        }
        // Any single byte changed.
        for at in [0, MAC_LEN - 1, MAC_LEN, bytes.len() - 1] {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            assert_eq!(
                sealer.open(&URL_SAFE_NO_PAD.encode(changed), 10_000),
                Err(TokenError::Invalid),
                "byte {at} changed"
            );
        }
        for junk in ["", "not a token", "AAAA"] {
            assert_eq!(sealer.open(junk, 10_000), Err(TokenError::Invalid));
        }
        // Another process's key.
        assert_eq!(
            Sealer::with_key([8; 32]).open(&token, 10_000),
            Err(TokenError::Invalid)
        );
        assert_ne!(Sealer::random().key, Sealer::random().key);
    }

    #[test]
    fn hmac_matches_rfc_4231_case_1_with_its_key_padded() {
        // RFC 4231 case 1's key is 20 bytes of 0x0b: zero-padded to 32 it
        // is the same HMAC key (keys are zero-padded to the block).
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&[0x0b; 20]);
        let mac: String = hmac(&key, b"Hi There")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            mac,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
