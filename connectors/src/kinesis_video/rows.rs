//! Rows of the two tables, wherever they were read (this server's store,
//! or another endpoint's API), as the table's declared columns.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use runnel_video::mkv::{Frame, Header};

use super::columns::{Column, Columns};

pub struct FragmentRow {
    pub number: String,
    pub producer_ms: u64,
    pub server_ms: u64,
    pub duration_ms: u64,
    pub bytes: u64,
    pub frames: Option<u32>,
    pub keyframes: Option<u32>,
    pub picture: Picture,
}

#[derive(Default, Clone)]
pub struct Picture {
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub codec: Option<String>,
}

impl Picture {
    /// The first video track's size and codec.
    pub fn of(header: &Header) -> Picture {
        let track = header
            .tracks
            .iter()
            .find(|t| t.width.is_some())
            .or_else(|| header.tracks.first());
        match track {
            Some(track) => Picture {
                width: track.width.and_then(|w| i32::try_from(w).ok()),
                height: track.height.and_then(|h| i32::try_from(h).ok()),
                codec: Some(track.codec_id.clone()),
            },
            None => Picture::default(),
        }
    }
}

pub struct FrameRow {
    pub number: Arc<str>,
    pub ts_ms: i64,
    pub keyframe: bool,
    pub bytes: u32,
    pub track: u64,
    /// Only when the table declares `payload`.
    pub payload: Option<Vec<u8>>,
}

/// One fragment's frames as rows, read from its blocks (`body`); a frame's
/// time is `base_ms` plus its timecode.
pub fn push_frames(
    rows: &mut Vec<FrameRow>,
    number: &Arc<str>,
    base_ms: i64,
    frames: &[Frame],
    body: &[u8],
    wants_payload: bool,
) {
    rows.extend(frames.iter().map(|frame| {
        let start = frame.offset as usize;
        FrameRow {
            number: number.clone(),
            ts_ms: base_ms + frame.timecode_ms,
            keyframe: frame.keyframe,
            bytes: frame.len,
            track: frame.track,
            payload: wants_payload.then(|| {
                body.get(start..start + frame.len as usize)
                    .unwrap_or_default()
                    .to_vec()
            }),
        }
    }));
}

/// Whether rows need what only the fragments' media holds (their frames,
/// or their header's picture).
pub fn needs_media(columns: &Columns) -> bool {
    columns.kind == super::TableKind::Frames
        || [
            Column::Frames,
            Column::Keyframes,
            Column::Width,
            Column::Height,
            Column::Codec,
        ]
        .iter()
        .any(|c| columns.wants(*c))
}

pub fn fragment_arrays(columns: &Columns, stream: &str, rows: &[FragmentRow]) -> Vec<ArrayRef> {
    columns
        .columns
        .iter()
        .map(|column| match column {
            Column::Stream => strings(rows.iter().map(|_| Some(stream))),
            Column::FragmentNumber => strings(rows.iter().map(|r| Some(r.number.as_str()))),
            Column::ProducerTimestamp => times(rows.iter().map(|r| r.producer_ms as i64)),
            Column::ServerTimestamp => times(rows.iter().map(|r| r.server_ms as i64)),
            Column::DurationMs => longs(rows.iter().map(|r| r.duration_ms)),
            Column::Bytes => longs(rows.iter().map(|r| r.bytes)),
            Column::Frames => ints(
                rows.iter()
                    .map(|r| r.frames.and_then(|n| i32::try_from(n).ok())),
            ),
            Column::Keyframes => ints(
                rows.iter()
                    .map(|r| r.keyframes.and_then(|n| i32::try_from(n).ok())),
            ),
            Column::Width => ints(rows.iter().map(|r| r.picture.width)),
            Column::Height => ints(rows.iter().map(|r| r.picture.height)),
            Column::Codec => strings(rows.iter().map(|r| r.picture.codec.as_deref())),
            // Columns of the frames table are refused for this one at submit.
            _ => strings(rows.iter().map(|_| None)),
        })
        .collect()
}

pub fn frame_arrays(columns: &Columns, stream: &str, rows: &[FrameRow]) -> Vec<ArrayRef> {
    columns
        .columns
        .iter()
        .map(|column| -> ArrayRef {
            match column {
                Column::Stream => strings(rows.iter().map(|_| Some(stream))),
                Column::FragmentNumber => strings(rows.iter().map(|r| Some(&*r.number))),
                Column::Ts => times(rows.iter().map(|r| r.ts_ms)),
                Column::Keyframe => {
                    let mut builder = BooleanBuilder::with_capacity(rows.len());
                    rows.iter().for_each(|r| builder.append_value(r.keyframe));
                    Arc::new(builder.finish())
                }
                Column::FrameBytes => ints(rows.iter().map(|r| i32::try_from(r.bytes).ok())),
                Column::Track => ints(rows.iter().map(|r| i32::try_from(r.track).ok())),
                Column::Payload => {
                    let mut builder = BinaryBuilder::new();
                    rows.iter()
                        .for_each(|r| builder.append_option(r.payload.as_deref()));
                    Arc::new(builder.finish())
                }
                _ => strings(rows.iter().map(|_| None)),
            }
        })
        .collect()
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut builder = StringBuilder::new();
    values.for_each(|v| builder.append_option(v));
    Arc::new(builder.finish())
}

fn times(values: impl Iterator<Item = i64>) -> ArrayRef {
    let mut builder = TimestampMillisecondBuilder::new();
    values.for_each(|v| builder.append_value(v));
    Arc::new(builder.finish())
}

fn longs(values: impl Iterator<Item = u64>) -> ArrayRef {
    let mut builder = Int64Builder::new();
    values.for_each(|v| builder.append_value(i64::try_from(v).unwrap_or(i64::MAX)));
    Arc::new(builder.finish())
}

fn ints(values: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    let mut builder = Int32Builder::new();
    values.for_each(|v| builder.append_option(v));
    Arc::new(builder.finish())
}
