//! ListFragments: the index of a stream, by timestamp range, a page at a
//! time.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use runnel_video::fragment_number;
use serde_json::json;

use super::selector::{Clock, TimeRange};
use super::{Api, blocking, invalid, seconds, stream_ref};
use crate::aws::request::Req;
use crate::aws::{AwsError, codec};

const MAX_RESULTS: i64 = 1000;

pub async fn list_fragments(api: &Arc<Api>, mut req: Req) -> Result<Response, AwsError> {
    let limit = req
        .int_range("MaxResults", "maxResults", 1, MAX_RESULTS)?
        .unwrap_or(MAX_RESULTS) as usize;
    let token = req.opt_str("NextToken")?;
    let selector = req.opt_object("FragmentSelector")?;
    let reference = stream_ref(&mut req)?;
    let range = match selector {
        Some(selector) => {
            let clock = Clock::read(&selector, None)?;
            let range = selector
                .opt_object("TimestampRange")?
                .ok_or_else(|| invalid("FragmentSelector needs a TimestampRange"))?;
            Some(TimeRange::read(clock, &range, true)?)
        }
        None => None,
    };
    let from = match &token {
        Some(text) => STANDARD
            .decode(text)
            .ok()
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| invalid("NextToken is not a token ListFragments issued"))?,
        None => 0,
    };
    let stream = api.video.stream(&reference)?;
    let video = api.video.clone();
    let (page, next) = blocking(move || {
        let mut page = Vec::new();
        for fragment in video.fragments_from(&stream, from)? {
            let fragment = fragment?;
            if !range.is_none_or(|r| r.contains(&fragment)) {
                continue;
            }
            if page.len() == limit {
                return Ok((page, Some(fragment.seq)));
            }
            page.push(json!({
                "FragmentNumber": fragment_number(stream.id(), fragment.seq),
                "FragmentSizeInBytes": fragment.at.len,
                "ProducerTimestamp": seconds(fragment.producer_ms),
                "ServerTimestamp": seconds(fragment.server_ms),
                "FragmentLengthInMilliseconds": fragment.duration_ms,
            }));
        }
        Ok((page, None))
    })
    .await?;
    let mut out = json!({ "Fragments": page });
    if let Some(next) = next {
        out["NextToken"] = json!(STANDARD.encode(next.to_be_bytes()));
    }
    Ok(codec::json_ok(out.to_string()))
}
