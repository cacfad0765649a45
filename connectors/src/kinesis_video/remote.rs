//! A video stream of another endpoint (`aws.endpoint`: another Runnel, or
//! AWS), read through its API as any Kinesis Video consumer does:
//! GetDataEndpoint once, then ListFragments for what is new and
//! GetMediaForFragmentList for their media, parsed as PutMedia's is.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::source::{BatchReader, Poll};
use runnel_video::mkv::{Event, Fragment, Limits, Parser};
use serde_json::{Value, json};

use super::Startup;
use super::columns::{Columns, TableKind};
use super::rows::{
    FragmentRow, FrameNeeds, Picture, fragment_arrays, frame_arrays, needs_media, push_frames,
};
use crate::ConnectorError;
use crate::kinesis::remote::{Api, RemoteError, RemoteKinesis};
use crate::options::Options;

/// How long a caught-up reader waits before listing again.
const LIST_PAUSE: Duration = Duration::from_millis(500);
/// Fragments whose media one GetMediaForFragmentList fetches.
const MEDIA_BATCH: usize = 16;
/// ListFragments' largest page.
const PAGE: usize = 1000;

/// The stream's data endpoint client, once the stream is known to exist.
pub fn connect(
    endpoint: &str,
    region: &str,
    stream: &str,
    options: &Options,
) -> Result<Arc<RemoteKinesis>, ConnectorError> {
    let refused = |e: RemoteError| {
        ConnectorError::Option(format!(
            "kinesis-video stream '{stream}' at {endpoint}: {e}"
        ))
    };
    let control = RemoteKinesis::for_api(Api::Video, endpoint, region, options)?;
    let answer = control
        .post(
            "/getDataEndpoint",
            &json!({"StreamName": stream, "APIName": "LIST_FRAGMENTS"}),
        )
        .map_err(refused)?;
    let data = serde_json::from_slice::<Value>(&answer)
        .ok()
        .and_then(|v| v["DataEndpoint"].as_str().map(str::to_string))
        .ok_or_else(|| {
            ConnectorError::Option(format!(
                "kinesis-video stream '{stream}': GetDataEndpoint gave no DataEndpoint"
            ))
        })?;
    Ok(Arc::new(RemoteKinesis::for_api(
        Api::Video,
        &data,
        region,
        options,
    )?))
}

struct Listed {
    number: String,
    order: u128,
    bytes: u64,
    producer_ms: u64,
    server_ms: u64,
    duration_ms: u64,
}

pub struct RemoteReader {
    client: Arc<RemoteKinesis>,
    name: String,
    columns: Arc<Columns>,
    schema: SchemaRef,
    startup: Startup,
    /// Listed from this server time on; fragments up to `last` are read.
    since_ms: u64,
    last: Option<u128>,
    pending: VecDeque<Listed>,
    rest_until: Option<Instant>,
}

fn seconds_ms(value: &Value) -> u64 {
    value
        .as_f64()
        .map_or(0, |s| (s * 1000.0).round().max(0.0) as u64)
}

fn failed(message: String) -> EngineError {
    EngineError::Connector {
        connector: "kinesis-video",
        message,
    }
}

impl RemoteReader {
    pub fn new(
        client: Arc<RemoteKinesis>,
        name: String,
        columns: Arc<Columns>,
        schema: SchemaRef,
        startup: Startup,
        submitted_ms: u64,
    ) -> Self {
        RemoteReader {
            client,
            name,
            columns,
            schema,
            since_ms: if startup == Startup::Latest {
                submitted_ms
            } else {
                0
            },
            startup,
            last: None,
            pending: VecDeque::new(),
            rest_until: None,
        }
    }

    fn error(&self, e: RemoteError) -> EngineError {
        failed(format!("stream '{}': {e}", self.name))
    }

    /// Fragments listed since the last look that were not read yet, in
    /// order.
    fn list(&mut self) -> Result<(), EngineError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"StreamName": self.name, "MaxResults": PAGE});
            match &token {
                Some(token) => body["NextToken"] = json!(token),
                None => {
                    body["FragmentSelector"] = json!({
                        "FragmentSelectorType": "SERVER_TIMESTAMP",
                        "TimestampRange": {
                            "StartTimestamp": self.since_ms as f64 / 1000.0,
                            // Far enough ahead to take whatever arrives meanwhile.
                            "EndTimestamp": (runnel_video::now_ms() + 86_400_000) as f64 / 1000.0,
                        }
                    });
                }
            }
            let answer = self
                .client
                .post("/listFragments", &body)
                .map_err(|e| self.error(e))?;
            let page: Value = serde_json::from_slice(&answer)
                .map_err(|e| failed(format!("ListFragments: {e}")))?;
            for fragment in page["Fragments"].as_array().into_iter().flatten() {
                let Some(number) = fragment["FragmentNumber"].as_str() else {
                    continue;
                };
                let Ok(order) = number.parse::<u128>() else {
                    continue;
                };
                found.push(Listed {
                    number: number.to_string(),
                    order,
                    bytes: fragment["FragmentSizeInBytes"].as_u64().unwrap_or(0),
                    producer_ms: seconds_ms(&fragment["ProducerTimestamp"]),
                    server_ms: seconds_ms(&fragment["ServerTimestamp"]),
                    duration_ms: fragment["FragmentLengthInMilliseconds"]
                        .as_u64()
                        .unwrap_or(0),
                });
            }
            token = page["NextToken"].as_str().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        // ListFragments answers in no particular order.
        found.sort_by_key(|f| f.order);
        let last = self.last;
        let from_ms = match self.startup {
            Startup::Timestamp(at) => at,
            _ => 0,
        };
        self.pending.extend(
            found
                .into_iter()
                .filter(|f| last.is_none_or(|l| f.order > l) && f.producer_ms >= from_ms),
        );
        Ok(())
    }

    /// The fragments' media, parsed, in the order asked for.
    fn media(&self, listed: &[Listed]) -> Result<Vec<Fragment>, EngineError> {
        let numbers: Vec<&str> = listed.iter().map(|f| f.number.as_str()).collect();
        let bytes = self
            .client
            .post(
                "/getMediaForFragmentList",
                &json!({"StreamName": self.name, "Fragments": numbers}),
            )
            .map_err(|e| self.error(e))?;
        // Each fragment is its own document; a new EBML header starts the
        // next, which the parser takes as a new segment.
        let mut parser = Parser::new(Limits::default());
        let mut events = parser
            .push(&bytes)
            .map_err(|e| failed(format!("GetMediaForFragmentList: {e}")))?;
        events.extend(
            parser
                .finish()
                .map_err(|e| failed(format!("GetMediaForFragmentList: {e}")))?,
        );
        let fragments: Vec<Fragment> = events
            .into_iter()
            .filter_map(|e| match e {
                Event::Fragment(f) => Some(f),
                Event::FragmentStarted { .. } => None,
            })
            .collect();
        if fragments.len() != listed.len() {
            return Err(failed(format!(
                "GetMediaForFragmentList gave {} fragments for {} asked",
                fragments.len(),
                listed.len()
            )));
        }
        Ok(fragments)
    }
}

impl BatchReader for RemoteReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        if self.pending.is_empty() {
            if self.rest_until.is_some_and(|until| Instant::now() < until) {
                return Ok(Poll::Idle);
            }
            self.list()?;
            if self.pending.is_empty() {
                self.rest_until = Some(Instant::now() + LIST_PAUSE);
                return Ok(Poll::Idle);
            }
        }
        let take = self.pending.len().min(MEDIA_BATCH);
        let listed: Vec<Listed> = self.pending.drain(..take).collect();
        if let Some(newest) = listed.last() {
            self.last = Some(newest.order);
        }
        if let Some(latest) = listed.iter().map(|f| f.server_ms).max() {
            self.since_ms = self.since_ms.max(latest);
        }
        let media = if needs_media(&self.columns) {
            Some(self.media(&listed)?)
        } else {
            None
        };
        let columns = match self.columns.kind {
            TableKind::Fragments => {
                let rows: Vec<FragmentRow> = listed
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let fragment = media.as_ref().and_then(|m| m.get(i));
                        FragmentRow {
                            number: f.number.clone(),
                            producer_ms: f.producer_ms,
                            server_ms: f.server_ms,
                            duration_ms: f.duration_ms,
                            bytes: f.bytes,
                            frames: fragment.map(|m| m.frames.len() as u32),
                            keyframes: fragment
                                .map(|m| m.frames.iter().filter(|f| f.keyframe).count() as u32),
                            picture: fragment.map(|m| Picture::of(&m.header)).unwrap_or_default(),
                        }
                    })
                    .collect();
                fragment_arrays(&self.columns, &self.name, &rows)
            }
            TableKind::Frames => {
                let needs = FrameNeeds::of(&self.columns);
                let mut rows = Vec::new();
                for (f, fragment) in listed.iter().zip(media.iter().flatten()) {
                    let number: Arc<str> = f.number.as_str().into();
                    // Parsed frames' times are the Cluster's, which is the
                    // fragment's producer time on the endpoint's own clock.
                    let base_ms = f.producer_ms as i64 - fragment.timecode_ms;
                    // Each document of GetMediaForFragmentList carries its
                    // Info and Tracks, so a keyframe decodes here as it
                    // does from this server's store.
                    let (frames, body) = (&fragment.frames, &fragment.body);
                    let header = &fragment.header;
                    push_frames(&mut rows, &number, base_ms, header, frames, body, needs);
                }
                frame_arrays(&self.columns, &self.name, &rows)
            }
        };
        Ok(Poll::Batch(RecordBatch::try_new(
            self.schema.clone(),
            columns,
        )?))
    }

    /// The server time listed from and the last fragment read: listed
    /// but unread fragments are listed again after a restore.
    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        let mut position = self.since_ms.to_le_bytes().to_vec();
        if let Some(last) = self.last {
            position.extend_from_slice(&last.to_le_bytes());
        }
        Ok(Some(position))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        let corrupt = || failed(format!("a checkpoint position of {} bytes", position.len()));
        let (since, last) = match position.len() {
            8 => (position, None),
            24 => {
                let (since, last) = position.split_at(8);
                (since, Some(last))
            }
            _ => return Err(corrupt()),
        };
        self.since_ms = u64::from_le_bytes(since.try_into().map_err(|_| corrupt())?);
        self.last = match last {
            Some(bytes) => Some(u128::from_le_bytes(
                bytes.try_into().map_err(|_| corrupt())?,
            )),
            None => None,
        };
        self.pending.clear();
        Ok(())
    }
}
