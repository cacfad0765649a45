//! GetMedia (a live tail from any start) and GetMediaForFragmentList: a
//! stream of MKV documents, one per fragment.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use runnel_video::mkv::write::{FragmentTags, document};
use runnel_video::{FragmentMeta, Stream, Video, fragment_number, parse_fragment_number};
use tokio::sync::mpsc;

use super::{Api, blocking, invalid, stream_ref, streamed};
use crate::aws::AwsError;
use crate::aws::request::Req;

/// Fragments read from the index at a time.
const BATCH: usize = 16;
/// How often a live reader with nothing to send checks that its client
/// and its stream are still there.
const LIVE_CHECK: Duration = Duration::from_secs(2);
/// GetMediaForFragmentList's bound on fragments per request.
const MAX_FRAGMENT_LIST: usize = 1000;

/// The document GetMedia sends for `fragment`.
fn render(
    video: &Video,
    stream: &Stream,
    fragment: &FragmentMeta,
) -> Result<Bytes, runnel_video::VideoError> {
    let stored = video.read_tagged(stream, fragment)?;
    let number = fragment_number(stream.id(), fragment.seq);
    let tags = FragmentTags {
        fragment_number: &number,
        server_timestamp_ms: fragment.server_ms,
        producer_timestamp_ms: fragment.producer_ms,
        millis_behind_now: runnel_video::now_ms().saturating_sub(fragment.server_ms),
        continuation_token: &number,
        producer: &stored.tags,
    };
    Ok(Bytes::from(document(&stored.header, &stored.body, &tags)))
}

/// A fragment number of `stream`, as its sequence.
fn seq_of(stream: &Stream, number: &str, field: &str) -> Result<u64, AwsError> {
    match parse_fragment_number(number) {
        Some((id, seq)) if id == stream.id() => Ok(seq),
        Some(_) => Err(AwsError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("{field} {number} is not a fragment of this stream"),
        )),
        None => Err(invalid(format!(
            "{field} {number:?} is not a fragment number"
        ))),
    }
}

/// Where GetMedia starts, as a sequence number.
async fn start_seq(
    video: &Arc<Video>,
    stream: &Arc<Stream>,
    selector: Req,
) -> Result<u64, AwsError> {
    let kind = selector.opt_str("StartSelectorType")?;
    match kind.as_deref() {
        Some("EARLIEST") => Ok(0),
        Some("NOW") => Ok(stream.persisted_until()),
        Some("FRAGMENT_NUMBER") => {
            let number = selector
                .opt_str("AfterFragmentNumber")?
                .ok_or_else(|| invalid("AfterFragmentNumber is required for FRAGMENT_NUMBER"))?;
            seq_of(stream, &number, "AfterFragmentNumber")
        }
        Some("CONTINUATION_TOKEN") => {
            let token = selector
                .opt_str("ContinuationToken")?
                .ok_or_else(|| invalid("ContinuationToken is required for CONTINUATION_TOKEN"))?;
            Ok(seq_of(stream, &token, "ContinuationToken")? + 1)
        }
        Some(kind @ ("SERVER_TIMESTAMP" | "PRODUCER_TIMESTAMP")) => {
            let at = selector
                .opt_time_ms("StartTimestamp")?
                .ok_or_else(|| invalid(format!("StartTimestamp is required for {kind}")))?;
            let producer = kind == "PRODUCER_TIMESTAMP";
            let (video, stream) = (video.clone(), stream.clone());
            // The fragment that contains the time, or else the first after it.
            blocking(move || {
                video.first_fragment_where(&stream, |f| {
                    let start = if producer { f.producer_ms } else { f.server_ms };
                    start + f.duration_ms > at || start >= at
                })
            })
            .await
        }
        other => Err(invalid(format!(
            "StartSelectorType {} must be one of FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, NOW, EARLIEST, CONTINUATION_TOKEN",
            other.unwrap_or("(none)")
        ))),
    }
}

pub async fn get_media(api: Arc<Api>, mut req: Req) -> Result<Response, AwsError> {
    let selector = req.opt_object("StartSelector")?;
    let reference = stream_ref(&mut req)?;
    let Some(selector) = selector else {
        return Err(invalid("StartSelector must be specified"));
    };
    let stream = api.video.stream(&reference)?;
    let from = start_seq(&api.video, &stream, selector).await?;
    let reader = stream.acquire_reader().ok_or_else(|| {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "ConnectionLimitExceededException",
            format!(
                "The stream has {} GetMedia connections already",
                runnel_video::MAX_READERS
            ),
        )
    })?;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let video = api.video.clone();
    tokio::spawn(async move {
        let _reader = reader;
        tail(video, stream, from, tx).await;
    });
    Ok(streamed(rx, "video/webm"))
}

/// Sends fragments from `next` on, then each new one once it is
/// persisted, until the client goes or the stream is deleted.
async fn tail(video: Arc<Video>, stream: Arc<Stream>, mut next: u64, tx: mpsc::Sender<Bytes>) {
    let mut persisted = stream.subscribe();
    loop {
        let (v, s) = (video.clone(), stream.clone());
        let batch = match tokio::task::spawn_blocking(move || {
            let fragments = v.fragments(&s, next, BATCH)?;
            fragments
                .into_iter()
                .map(|f| Ok((f.seq, render(&v, &s, &f)?)))
                .collect::<Result<Vec<_>, runnel_video::VideoError>>()
        })
        .await
        {
            Ok(Ok(batch)) => batch,
            Ok(Err(error)) => {
                tracing::warn!(%error, "GetMedia could not read a fragment");
                return;
            }
            Err(_) => return,
        };
        if batch.is_empty() {
            if stream.is_deleted() || tx.is_closed() {
                return;
            }
            // Past the last persisted fragment: wait for the next one.
            let _ = tokio::time::timeout(LIVE_CHECK, persisted.changed()).await;
            continue;
        }
        for (seq, document) in batch {
            if tx.send(document).await.is_err() {
                return;
            }
            next = seq + 1;
        }
    }
}

pub async fn get_media_for_fragment_list(
    api: Arc<Api>,
    mut req: Req,
) -> Result<Response, AwsError> {
    let numbers = req.opt_str_list("Fragments")?.unwrap_or_default();
    if numbers.is_empty() || numbers.len() > MAX_FRAGMENT_LIST {
        req.problem(
            None,
            "fragments",
            &format!("Member must have between 1 and {MAX_FRAGMENT_LIST} items"),
        );
    }
    let reference = stream_ref(&mut req)?;
    let stream = api.video.stream(&reference)?;
    let seqs = numbers
        .iter()
        .map(|n| seq_of(&stream, n, "Fragment"))
        .collect::<Result<Vec<_>, _>>()?;
    let (video, s) = (api.video.clone(), stream.clone());
    let fragments = blocking(move || {
        seqs.iter()
            .map(|&seq| stored_fragment(&video, &s, seq))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let video = api.video.clone();
    tokio::spawn(async move {
        for fragment in fragments {
            let (v, s) = (video.clone(), stream.clone());
            let document =
                match tokio::task::spawn_blocking(move || render(&v, &s, &fragment)).await {
                    Ok(Ok(document)) => document,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "GetMediaForFragmentList could not read a fragment");
                        return;
                    }
                    Err(_) => return,
                };
            if tx.send(document).await.is_err() {
                return;
            }
        }
    });
    Ok(streamed(rx, "video/webm"))
}

fn stored_fragment(
    video: &Video,
    stream: &Stream,
    seq: u64,
) -> Result<FragmentMeta, runnel_video::VideoError> {
    video.fragment(stream, seq)?.ok_or_else(|| {
        runnel_video::VideoError::NotFound(format!(
            "Fragment {} was not found",
            fragment_number(stream.id(), seq)
        ))
    })
}
