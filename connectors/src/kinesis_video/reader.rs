//! Reads a video stream's fragments from a sequence number on, as rows of
//! the fragments or the frames table; once caught up it waits for the
//! next persisted fragment.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::source::{BatchReader, Poll};
use runnel_video::mkv::frames_of;
use runnel_video::{
    FragmentMeta, Stream, StreamRef, Video, VideoError, fragment_number, unpack_frames,
};
use tokio::sync::watch;

use super::Startup;
use super::columns::{Columns, TableKind};
use super::rows::{
    FragmentRow, FrameNeeds, FrameRow, Picture, fragment_arrays, frame_arrays, needs_media,
    push_frames,
};

/// Fragments per batch: two-second fragments make a batch a few minutes
/// of one camera.
const FRAGMENTS_PER_BATCH: usize = 64;

/// The sequence a new job starts at.
pub fn start_seq(video: &Video, stream: &Stream, startup: Startup) -> Result<u64, VideoError> {
    match startup {
        Startup::Earliest => Ok(0),
        Startup::Latest => Ok(stream.persisted_until()),
        Startup::Timestamp(at) => video.first_fragment_where(stream, |f| f.producer_ms >= at),
    }
}

/// The reader of a worker with nothing to read.
pub struct Finished;

impl BatchReader for Finished {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        Ok(Poll::Done)
    }

    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(Some(Vec::new()))
    }

    fn restore_position(&mut self, _position: &[u8]) -> Result<(), EngineError> {
        Ok(())
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
        let columns = arrays(&self.video, &stream, &self.columns, &self.name, &fragments)
            .map_err(|e| self.video_error(e))?;
        Ok(Poll::Batch(RecordBatch::try_new(
            self.schema.clone(),
            columns,
        )?))
    }

    /// The sequence number of the next fragment to read.
    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(Some(self.next.to_le_bytes().to_vec()))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        let bytes: [u8; 8] = position.try_into().map_err(|_| {
            failed(format!(
                "a checkpoint position of {} bytes, not 8",
                position.len()
            ))
        })?;
        self.next = u64::from_le_bytes(bytes);
        Ok(())
    }
}

/// Rows of this server's fragments, read from its store.
fn arrays(
    video: &Video,
    stream: &Stream,
    columns: &Columns,
    name: &str,
    fragments: &[FragmentMeta],
) -> Result<Vec<ArrayRef>, VideoError> {
    match columns.kind {
        TableKind::Fragments => {
            let media = needs_media(columns);
            let mut rows = Vec::with_capacity(fragments.len());
            for fragment in fragments {
                let picture = if media {
                    Picture::of(&*video.header(stream, fragment.header)?)
                } else {
                    Picture::default()
                };
                rows.push(FragmentRow {
                    number: fragment_number(stream.id(), fragment.seq),
                    producer_ms: fragment.producer_ms,
                    server_ms: fragment.server_ms,
                    duration_ms: fragment.duration_ms,
                    bytes: fragment.at.len,
                    frames: Some(fragment.frames),
                    keyframes: Some(fragment.keyframes),
                    picture,
                });
            }
            Ok(fragment_arrays(columns, name, &rows))
        }
        TableKind::Frames => {
            let needs = FrameNeeds::of(columns);
            let mut rows = Vec::new();
            for fragment in fragments {
                // Without `payload` or `mean_luma`, the index says all a
                // row needs.
                let indexed = (!needs.bytes())
                    .then(|| unpack_frames(&fragment.frame_index))
                    .flatten()
                    .filter(|frames| frames.len() == fragment.frames as usize);
                if let Some(frames) = indexed {
                    let number: Arc<str> = fragment_number(stream.id(), fragment.seq).into();
                    rows.extend(frames.into_iter().map(|frame| FrameRow {
                        number: number.clone(),
                        ts_ms: fragment.producer_ms as i64 + i64::from(frame.offset_ms),
                        keyframe: frame.keyframe,
                        bytes: frame.len,
                        track: u64::from(frame.track),
                        payload: None,
                        mean_luma: None,
                    }));
                    continue;
                }
                // The stored header is the Tracks the fragment was put
                // under: its avcC is what a keyframe decodes with.
                let (header, body) = video.read(stream, fragment)?;
                let frames = frames_of(&body, header.timecode_scale)
                    .map_err(|e| VideoError::Corrupt(e.to_string()))?;
                let number: Arc<str> = fragment_number(stream.id(), fragment.seq).into();
                // Stored frames' times are relative to their fragment.
                let base_ms = fragment.producer_ms as i64;
                push_frames(&mut rows, &number, base_ms, &header, &frames, &body, needs);
            }
            Ok(frame_arrays(columns, name, &rows))
        }
    }
}
