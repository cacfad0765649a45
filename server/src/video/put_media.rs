//! PutMedia: an endless chunked MKV body in, a line of JSON out for each
//! thing that happens to each fragment: `BUFFERING` when it begins,
//! `RECEIVED` when it is complete, `PERSISTED` once it is on disk, `ERROR`
//! (and the end of the response) when it cannot be taken, `IDLE` while
//! nothing happens.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use runnel_video::mkv::{Event, Fragment, MkvError, Parser};
use runnel_video::{PutSession, StreamRef, VideoError, fragment_number};
use serde_json::json;
use tokio::sync::mpsc;

use super::{Api, invalid, streamed};
use crate::aws::AwsError;

/// How long a PutMedia may go without an acknowledgement before an
/// `IDLE` one tells the producer the connection is alive.
const IDLE_AFTER: Duration = Duration::from_secs(3);

#[derive(Clone, Copy)]
enum Timecodes {
    Absolute,
    /// Relative to the producer's start, in epoch milliseconds.
    Relative(u64),
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn timecodes(headers: &HeaderMap) -> Result<Timecodes, AwsError> {
    let start = match header_str(headers, "x-amzn-producer-start-timestamp") {
        Some(text) => {
            let seconds: f64 = text
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| {
                    invalid(format!(
                        "x-amzn-producer-start-timestamp {text:?} is not epoch seconds"
                    ))
                })?;
            Some((seconds * 1000.0).round() as u64)
        }
        None => None,
    };
    match header_str(headers, "x-amzn-fragment-timecode-type") {
        Some("ABSOLUTE") => Ok(Timecodes::Absolute),
        Some("RELATIVE") => Ok(Timecodes::Relative(
            start.unwrap_or_else(runnel_video::now_ms),
        )),
        Some(other) => Err(invalid(format!(
            "x-amzn-fragment-timecode-type {other:?} must be ABSOLUTE or RELATIVE"
        ))),
        None => Err(invalid(
            "x-amzn-fragment-timecode-type must be given (ABSOLUTE or RELATIVE)",
        )),
    }
}

pub async fn put_media(
    api: Arc<Api>,
    request: crate::aws::RestRequest,
) -> Result<Response, AwsError> {
    let headers = &request.headers;
    let reference = match (
        header_str(headers, "x-amzn-stream-name"),
        header_str(headers, "x-amzn-stream-arn"),
    ) {
        (Some(name), _) => StreamRef::Name(name.to_string()),
        (None, Some(arn)) => StreamRef::Arn(arn.to_string()),
        (None, None) => {
            return Err(invalid(
                "x-amzn-stream-name or x-amzn-stream-arn must be given",
            ));
        }
    };
    let timecodes = timecodes(headers)?;
    let stream = api.video.stream(&reference)?;
    let session = api.video.begin_put(&stream);
    let mut body = request.body;
    let mut first = None;
    if header_str(headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        // hyper answers `100 Continue` when the body is first read: read it
        // before answering, so that the 200 follows the 100 as the client
        // waits for.
        first = match body.frame().await {
            Some(Ok(frame)) => frame.into_data().ok(),
            Some(Err(error)) => {
                return Err(invalid(format!("The body could not be read: {error}")));
            }
            None => None,
        };
    }
    let (acks, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(ingest(api, session, first, body, acks, timecodes));
    Ok(streamed(rx, "application/json"))
}

fn ack(event: &str, timecode_ms: Option<i64>, number: Option<&str>) -> Bytes {
    line(json!({ "EventType": event }), timecode_ms, number)
}

fn error_ack(error_id: u32, timecode_ms: Option<i64>, number: Option<&str>) -> Bytes {
    let event =
        json!({ "EventType": "ERROR", "ErrorId": error_id, "ErrorCode": error_code(error_id) });
    line(event, timecode_ms, number)
}

/// An acknowledgement as one line of JSON, with the fragment it is about.
fn line(mut event: serde_json::Value, timecode_ms: Option<i64>, number: Option<&str>) -> Bytes {
    if let Some(timecode) = timecode_ms {
        event["FragmentTimecode"] = json!(timecode);
    }
    if let Some(number) = number {
        event["FragmentNumber"] = json!(number);
    }
    Bytes::from(format!("{event}\n"))
}

/// Kinesis Video's names for its `ErrorId`s. AWS's reference marks 4005
/// ("more than one track") deprecated and gives the tracks limit 4012;
/// Runnel sends only the latter.
fn error_code(error_id: u32) -> &'static str {
    match error_id {
        4000 => "STREAM_READ_ERROR",
        4001 => "MAX_FRAGMENT_SIZE_REACHED",
        4002 => "MAX_FRAGMENT_DURATION_REACHED",
        4003 => "MAX_CONNECTION_DURATION_REACHED",
        4004 => "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS",
        4005 => "MORE_THAN_ALLOWED_TRACKS_FOUND",
        4006 => "INVALID_MKV_DATA",
        4007 => "INVALID_PRODUCER_TIMESTAMP",
        4008 => "STREAM_NOT_ACTIVE",
        4009 => "FRAGMENT_METADATA_LIMIT_REACHED",
        4010 => "TRACK_NUMBER_MISMATCH",
        4011 => "FRAMES_MISSING_FOR_TRACK",
        4012 => "MORE_THAN_ALLOWED_TRACKS_FOUND",
        5001 => "ARCHIVAL_ERROR",
        _ => "INTERNAL_ERROR",
    }
}

/// The fragment being received: its number and when it began.
struct Current {
    seq: u64,
    number: String,
    timecode_ms: i64,
    server_ms: u64,
}

struct Ingest {
    api: Arc<Api>,
    session: Arc<PutSession>,
    acks: mpsc::Sender<Bytes>,
    timecodes: Timecodes,
    current: Option<Current>,
}

/// Why an ingest stops early: the acknowledgement to send, if any.
struct Stop(Option<Bytes>);

async fn ingest(
    api: Arc<Api>,
    session: PutSession,
    first: Option<Bytes>,
    mut body: Body,
    acks: mpsc::Sender<Bytes>,
    timecodes: Timecodes,
) {
    let mut parser = Parser::new(api.video.config().limits);
    let mut ingest = Ingest {
        api,
        session: Arc::new(session),
        acks,
        timecodes,
        current: None,
    };
    let mut idle = tokio::time::interval(IDLE_AFTER);
    idle.reset();
    // Kinesis Video's bound on a connection's life: the producer is told
    // (4003) and reconnects; what it had persisted stays.
    let over = tokio::time::sleep(ingest.api.video.config().max_put_connection);
    tokio::pin!(over);
    let early = match first {
        Some(bytes) => ingest.take(&mut parser, &bytes).await.err(),
        None => None,
    };
    let stop = match early {
        Some(stop) => stop,
        None => loop {
            tokio::select! {
                frame = body.frame() => {
                    idle.reset();
                    let events = match frame {
                        None => match parser.finish() {
                            Ok(events) => {
                                match ingest.handle(events).await {
                                    Ok(()) => break Stop(None),
                                    Err(stop) => break stop,
                                }
                            }
                            Err(error) => break ingest.mkv_error(&error),
                        },
                        Some(Err(error)) => {
                            tracing::debug!(%error, "PutMedia body ended with an error");
                            break Stop(Some(error_ack(4000, ingest.timecode(), ingest.number())));
                        }
                        Some(Ok(frame)) => {
                            if let Some(data) = frame.data_ref()
                                && let Err(stop) = ingest.take(&mut parser, data).await
                            {
                                break stop;
                            }
                            Vec::new()
                        }
                    };
                    if let Err(stop) = ingest.handle(events).await {
                        break stop;
                    }
                }
                _ = idle.tick() => {
                    if ingest.acks.send(ack("IDLE", None, None)).await.is_err() {
                        break Stop(None);
                    }
                }
                () = &mut over => {
                    tracing::debug!("a PutMedia connection reached its longest life");
                    break Stop(Some(error_ack(4003, ingest.timecode(), ingest.number())));
                }
            }
            if !ingest.session.is_current() {
                // A newer PutMedia to this stream took over.
                break Stop(None);
            }
            if ingest.acks.is_closed() {
                break Stop(None);
            }
        },
    };
    if let Stop(Some(line)) = stop {
        let _ = ingest.acks.send(line).await;
    }
}

impl Ingest {
    fn timecode(&self) -> Option<i64> {
        self.current.as_ref().map(|c| c.timecode_ms)
    }

    fn number(&self) -> Option<&str> {
        self.current.as_ref().map(|c| c.number.as_str())
    }

    fn mkv_error(&self, error: &MkvError) -> Stop {
        tracing::debug!(%error, "PutMedia refused its MKV");
        Stop(Some(error_ack(
            error.error_id(),
            self.timecode(),
            self.number(),
        )))
    }

    /// Parses the next bytes of the body and acts on what they completed;
    /// an error in them is acknowledged after the fragments that ended
    /// before it.
    async fn take(&mut self, parser: &mut Parser, bytes: &[u8]) -> Result<(), Stop> {
        let (events, error) = parser.push_events(bytes);
        self.handle(events).await?;
        match error {
            Some(error) => Err(self.mkv_error(&error)),
            None => Ok(()),
        }
    }

    async fn send(&self, line: Bytes) -> Result<(), Stop> {
        self.acks.send(line).await.map_err(|_| Stop(None))
    }

    async fn handle(&mut self, events: Vec<Event>) -> Result<(), Stop> {
        for event in events {
            match event {
                Event::FragmentStarted { timecode_ms } => {
                    let seq = self.api.video.reserve_seq(&self.session);
                    let number = fragment_number(self.session.stream().id(), seq);
                    self.current = Some(Current {
                        seq,
                        number,
                        timecode_ms,
                        server_ms: runnel_video::now_ms(),
                    });
                    if self.producer_ms(timecode_ms).is_none() {
                        return Err(Stop(Some(error_ack(
                            4007,
                            Some(timecode_ms),
                            self.number(),
                        ))));
                    }
                    self.send(ack("BUFFERING", Some(timecode_ms), self.number()))
                        .await?;
                }
                Event::Fragment(fragment) => self.store(fragment).await?,
            }
        }
        Ok(())
    }

    /// The producer's time of a fragment, in epoch milliseconds.
    fn producer_ms(&self, timecode_ms: i64) -> Option<u64> {
        let ms = match self.timecodes {
            Timecodes::Absolute => timecode_ms,
            Timecodes::Relative(start) => i64::try_from(start).ok()?.checked_add(timecode_ms)?,
        };
        u64::try_from(ms).ok()
    }

    async fn store(&mut self, fragment: Fragment) -> Result<(), Stop> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        self.send(ack(
            "RECEIVED",
            Some(current.timecode_ms),
            Some(&current.number),
        ))
        .await?;
        let producer_ms = self.producer_ms(fragment.timecode_ms).unwrap_or(0);
        let video = self.api.video.clone();
        let session = self.session.clone();
        let seq = current.seq;
        let server_ms = current.server_ms;
        let stored = tokio::task::spawn_blocking(move || {
            video.persist(&session, seq, &fragment, producer_ms, server_ms)
        })
        .await;
        let line = match stored {
            Ok(Ok(_)) => ack(
                "PERSISTED",
                Some(current.timecode_ms),
                Some(&current.number),
            ),
            Ok(Err(VideoError::NotActive(_) | VideoError::NotFound(_))) => {
                return Err(Stop(Some(error_ack(
                    4008,
                    Some(current.timecode_ms),
                    Some(&current.number),
                ))));
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "a PutMedia fragment could not be stored");
                return Err(Stop(Some(error_ack(
                    5001,
                    Some(current.timecode_ms),
                    Some(&current.number),
                ))));
            }
            Err(error) => {
                tracing::error!(%error, "a PutMedia store task failed");
                return Err(Stop(Some(error_ack(
                    5000,
                    Some(current.timecode_ms),
                    Some(&current.number),
                ))));
            }
        };
        self.send(line).await
    }
}
