//! Reads a video stream's fragments from a sequence number on, as rows of
//! the fragments or the frames table; once caught up it waits for the
//! next persisted fragment.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::source::{BatchReader, Poll};
use runnel_video::mkv::{Header, frames_of};
use runnel_video::{FragmentMeta, Stream, StreamRef, Video, VideoError, fragment_number};
use tokio::sync::watch;

use super::Startup;
use super::columns::{Column, Columns, TableKind};

/// Fragments per batch: two-second fragments make a batch a few minutes
/// of one camera.
const FRAGMENTS_PER_BATCH: usize = 64;

/// The sequence a new job starts at.
pub fn start_seq(video: &Video, stream: &Stream, startup: Startup) -> Result<u64, VideoError> {
    match startup {
        Startup::Earliest => Ok(0),
        Startup::Latest => Ok(*stream.subscribe().borrow()),
        Startup::Timestamp(at) => {
            let mut from = 0;
            loop {
                let batch = video.fragments(stream, from, 1024)?;
                let Some(last) = batch.last() else {
                    return Ok(*stream.subscribe().borrow());
                };
                if let Some(found) = batch.iter().find(|f| f.producer_ms >= at) {
                    return Ok(found.seq);
                }
                from = last.seq + 1;
            }
        }
    }
}

/// The reader of a worker with nothing to read.
pub struct Finished;

impl BatchReader for Finished {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        Ok(Poll::Done)
    }
}

pub struct FragmentReader {
    video: Arc<Video>,
    name: String,
    stream: Option<Arc<Stream>>,
    persisted: Option<watch::Receiver<u64>>,
    columns: Arc<Columns>,
    schema: SchemaRef,
    next: u64,
}

fn failed(message: String) -> EngineError {
    EngineError::Connector {
        connector: "kinesis-video",
        message,
    }
}

impl FragmentReader {
    pub fn new(
        video: Arc<Video>,
        name: String,
        columns: Arc<Columns>,
        schema: SchemaRef,
        next: u64,
    ) -> Self {
        FragmentReader {
            video,
            name,
            stream: None,
            persisted: None,
            columns,
            schema,
            next,
        }
    }

    fn stream(&mut self) -> Result<Arc<Stream>, EngineError> {
        if let Some(stream) = &self.stream {
            return Ok(stream.clone());
        }
        let stream = self
            .video
            .stream(&StreamRef::Name(self.name.clone()))
            .map_err(|e| failed(format!("stream '{}': {e}", self.name)))?;
        self.persisted = Some(stream.subscribe());
        self.stream = Some(stream.clone());
        Ok(stream)
    }

    fn video_error(&self, error: VideoError) -> EngineError {
        failed(format!("stream '{}': {error}", self.name))
    }
}

impl BatchReader for FragmentReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        let stream = self.stream()?;
        if stream.is_deleted() {
            return Err(failed(format!("stream '{}' was deleted", self.name)));
        }
        // The watch says how far fragments are persisted: nothing past
        // `next` means nothing to read, without touching the index.
        if self
            .persisted
            .as_ref()
            .is_some_and(|p| *p.borrow() <= self.next)
        {
            return Ok(Poll::Idle);
        }
        let fragments = self
            .video
            .fragments(&stream, self.next, FRAGMENTS_PER_BATCH)
            .map_err(|e| self.video_error(e))?;
        let Some(last) = fragments.last() else {
            return Ok(Poll::Idle);
        };
        self.next = last.seq + 1;
        let rows = Rows::new(&self.video, &stream, &self.columns, &self.name);
        let columns = match self.columns.kind {
            TableKind::Fragments => rows.fragments(&fragments),
            TableKind::Frames => rows.frames(&fragments),
        }
        .map_err(|e| self.video_error(e))?;
        Ok(Poll::Batch(RecordBatch::try_new(
            self.schema.clone(),
            columns,
        )?))
    }
}

struct Rows<'a> {
    video: &'a Video,
    stream: &'a Stream,
    columns: &'a Columns,
    name: &'a str,
}

/// The first video track's size and codec.
fn picture(header: &Header) -> (Option<i32>, Option<i32>, Option<String>) {
    let track = header
        .tracks
        .iter()
        .find(|t| t.width.is_some())
        .or_else(|| header.tracks.first());
    match track {
        Some(track) => (
            track.width.and_then(|w| i32::try_from(w).ok()),
            track.height.and_then(|h| i32::try_from(h).ok()),
            Some(track.codec_id.clone()),
        ),
        None => (None, None, None),
    }
}

impl Rows<'_> {
    fn new<'a>(
        video: &'a Video,
        stream: &'a Stream,
        columns: &'a Columns,
        name: &'a str,
    ) -> Rows<'a> {
        Rows {
            video,
            stream,
            columns,
            name,
        }
    }

    fn fragments(&self, fragments: &[FragmentMeta]) -> Result<Vec<ArrayRef>, VideoError> {
        let needs_header = [Column::Width, Column::Height, Column::Codec]
            .iter()
            .any(|c| self.columns.wants(*c));
        let mut pictures = Vec::with_capacity(fragments.len());
        for fragment in fragments {
            pictures.push(if needs_header {
                picture(&*self.video.header(self.stream, fragment.header)?)
            } else {
                (None, None, None)
            });
        }
        let arrays = self
            .columns
            .columns
            .iter()
            .map(|column| -> ArrayRef {
                let each = fragments.iter().zip(&pictures);
                match column {
                    Column::Stream => {
                        strings(fragments.iter().map(|_| Some(self.name.to_string())))
                    }
                    Column::FragmentNumber => strings(
                        fragments
                            .iter()
                            .map(|f| Some(fragment_number(self.stream.id(), f.seq))),
                    ),
                    Column::ProducerTimestamp => times(fragments.iter().map(|f| f.producer_ms)),
                    Column::ServerTimestamp => times(fragments.iter().map(|f| f.server_ms)),
                    Column::DurationMs => longs(fragments.iter().map(|f| f.duration_ms)),
                    Column::Bytes => longs(fragments.iter().map(|f| f.at.len)),
                    Column::Frames => ints(fragments.iter().map(|f| i32::try_from(f.frames).ok())),
                    Column::Keyframes => {
                        ints(fragments.iter().map(|f| i32::try_from(f.keyframes).ok()))
                    }
                    Column::Width => ints(each.map(|(_, p)| p.0)),
                    Column::Height => ints(each.map(|(_, p)| p.1)),
                    Column::Codec => strings(each.map(|(_, p)| p.2.clone())),
                    // Frames-table columns are refused for this table when it is declared.
                    _ => strings(fragments.iter().map(|_| None)),
                }
            })
            .collect();
        Ok(arrays)
    }

    fn frames(&self, fragments: &[FragmentMeta]) -> Result<Vec<ArrayRef>, VideoError> {
        let wants_payload = self.columns.wants(Column::Payload);
        let mut numbers = StringBuilder::new();
        let mut ts = TimestampMillisecondBuilder::new();
        let mut keyframe = BooleanBuilder::new();
        let mut bytes = Int32Builder::new();
        let mut track = Int32Builder::new();
        let mut payload = BinaryBuilder::new();
        let mut rows = 0usize;
        for fragment in fragments {
            let (header, body) = self.video.read(self.stream, fragment)?;
            let frames = frames_of(&body, header.timecode_scale)
                .map_err(|e| VideoError::Corrupt(e.to_string()))?;
            let number = fragment_number(self.stream.id(), fragment.seq);
            for frame in frames {
                rows += 1;
                numbers.append_value(&number);
                ts.append_value(fragment.producer_ms as i64 + frame.timecode_ms);
                keyframe.append_value(frame.keyframe);
                bytes.append_value(i32::try_from(frame.len).unwrap_or(i32::MAX));
                track.append_value(i32::try_from(frame.track).unwrap_or(i32::MAX));
                if wants_payload {
                    let start = frame.offset as usize;
                    let end = start + frame.len as usize;
                    payload.append_value(body.get(start..end).unwrap_or_default());
                }
            }
        }
        let (numbers, ts, keyframe, bytes, track, payload): (
            ArrayRef,
            ArrayRef,
            ArrayRef,
            ArrayRef,
            ArrayRef,
            ArrayRef,
        ) = (
            Arc::new(numbers.finish()),
            Arc::new(ts.finish()),
            Arc::new(keyframe.finish()),
            Arc::new(bytes.finish()),
            Arc::new(track.finish()),
            Arc::new(payload.finish()),
        );
        Ok(self
            .columns
            .columns
            .iter()
            .map(|column| match column {
                Column::Stream => strings((0..rows).map(|_| Some(self.name.to_string()))),
                Column::FragmentNumber => numbers.clone(),
                Column::Ts => ts.clone(),
                Column::Keyframe => keyframe.clone(),
                Column::FrameBytes => bytes.clone(),
                Column::Track => track.clone(),
                Column::Payload => payload.clone(),
                _ => strings((0..rows).map(|_| None)),
            })
            .collect())
    }
}

fn strings(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    let mut builder = StringBuilder::new();
    for value in values {
        builder.append_option(value);
    }
    Arc::new(builder.finish())
}

fn times(values: impl Iterator<Item = u64>) -> ArrayRef {
    let mut builder = TimestampMillisecondBuilder::new();
    for value in values {
        builder.append_value(i64::try_from(value).unwrap_or(i64::MAX));
    }
    Arc::new(builder.finish())
}

fn longs(values: impl Iterator<Item = u64>) -> ArrayRef {
    let mut builder = Int64Builder::new();
    for value in values {
        builder.append_value(i64::try_from(value).unwrap_or(i64::MAX));
    }
    Arc::new(builder.finish())
}

fn ints(values: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    let mut builder = Int32Builder::new();
    for value in values {
        builder.append_option(value);
    }
    Arc::new(builder.finish())
}
