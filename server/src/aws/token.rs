//! NextToken values for the paginated list operations: opaque base64 of
//! what the next page starts after, and when the token was issued.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// ListShards tokens expire after 300 seconds, as Kinesis's do.
pub const TOKEN_TTL_MS: u64 = 300_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PageToken {
    /// The stream the listing is of (empty for ListStreams).
    pub stream: String,
    /// The last item returned: a stream name, shard index or consumer name.
    pub after: String,
    pub issued_ms: u64,
}

impl PageToken {
    pub fn encode(&self) -> String {
        STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_slice(&STANDARD.decode(text).ok()?).ok()
    }
}
