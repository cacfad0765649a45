//! Rows of the two tables, wherever they were read (this server's store,
//! or another endpoint's API), as the table's declared columns.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMillisecondBuilder,
};
use runnel_video::images::keyframe_mean_luma;
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
    /// Only when the table declares `mean_luma`; see [`mean_luma`].
    pub mean_luma: Option<f64>,
}

/// What a fragment's frames are read with: which columns need their bytes.
#[derive(Debug, Clone, Copy)]
pub struct FrameNeeds {
    pub payload: bool,
    pub mean_luma: bool,
}

impl FrameNeeds {
    pub fn of(columns: &Columns) -> Self {
        FrameNeeds {
            payload: columns.wants(Column::Payload),
            mean_luma: columns.wants(Column::MeanLuma),
        }
    }

    /// Whether the frames' bytes must be read, which the index alone
    /// cannot give.
    pub fn bytes(self) -> bool {
        self.payload || self.mean_luma
    }
}

/// One fragment's frames as rows, read from its blocks (`body`) under
/// its `header`; a frame's time is `base_ms` plus its timecode.
pub fn push_frames(
    rows: &mut Vec<FrameRow>,
    number: &Arc<str>,
    base_ms: i64,
    header: &Header,
    frames: &[Frame],
    body: &[u8],
    needs: FrameNeeds,
) {
    rows.extend(frames.iter().map(|frame| {
        let start = frame.offset as usize;
        let bytes = body.get(start..start + frame.len as usize);
        FrameRow {
            number: number.clone(),
            ts_ms: base_ms + frame.timecode_ms,
            keyframe: frame.keyframe,
            bytes: frame.len,
            track: frame.track,
            payload: needs.payload.then(|| bytes.unwrap_or_default().to_vec()),
            mean_luma: if needs.mean_luma {
                bytes.and_then(|bytes| mean_luma(header, frame, bytes))
            } else {
                None
            },
        }
    }));
}

/// The `mean_luma` column: the mean of a keyframe's decoded Y plane, 0 to
/// 255 (video range: black near 16, white near 235).
///
/// NULL, not an error, for a frame that is no keyframe (it does not decode
/// alone), of a track that is not H.264 (H.265 is stored but not decoded),
/// or that does not decode: the row is still a true fact about the stream,
/// and one bad frame of one camera must not fail a job that watches many.
/// `AVG` skips NULLs, and `keyframe AND mean_luma IS NULL` finds them.
pub fn mean_luma(header: &Header, frame: &Frame, bytes: &[u8]) -> Option<f64> {
    if !frame.keyframe {
        return None;
    }
    let track = header
        .tracks
        .iter()
        .find(|t| t.number == frame.track && t.codec_id == "V_MPEG4/ISO/AVC")?;
    keyframe_mean_luma(&track.codec_private, bytes)
        .map_err(|error| tracing::debug!(%error, "kinesis-video: a keyframe's mean luma is NULL"))
        .ok()
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
                Column::MeanLuma => {
                    let mut builder = Float64Builder::with_capacity(rows.len());
                    rows.iter().for_each(|r| builder.append_option(r.mean_luma));
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

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, Float64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use runnel_video::mkv::Track;

    use super::super::TableKind;
    use super::*;

    fn header(codec_id: &str) -> Header {
        Header {
            timecode_scale: 1_000_000,
            info: Vec::new(),
            tracks_element: Vec::new(),
            tracks: vec![Track {
                number: 1,
                codec_id: codec_id.into(),
                // Not an avcC record: no keyframe decodes under it.
                codec_private: vec![1, 2],
                width: Some(640),
                height: Some(360),
            }],
        }
    }

    fn frame(offset: u32, keyframe: bool) -> Frame {
        Frame {
            track: 1,
            timecode_ms: i64::from(offset),
            keyframe,
            offset,
            len: 4,
        }
    }

    fn lumas(header: &Header, needs: FrameNeeds) -> Vec<Option<f64>> {
        let frames = [frame(0, true), frame(4, false), frame(6, true)];
        let body = [0, 0, 0, 1, 0x65, 0, 0, 0];
        let mut rows = Vec::new();
        push_frames(&mut rows, &"1".into(), 0, header, &frames, &body, needs);
        assert_eq!(rows.len(), 3);
        rows.iter().map(|r| r.mean_luma).collect()
    }

    #[test]
    fn frames_that_do_not_decode_have_a_null_mean_luma_and_no_error() {
        let wanted = FrameNeeds {
            payload: false,
            mean_luma: true,
        };
        // Undecodable, a non-keyframe, and a keyframe past the body's end.
        assert_eq!(lumas(&header("V_MPEG4/ISO/AVC"), wanted), [None; 3]);
        // H.265 is kept, never decoded.
        assert_eq!(lumas(&header("V_MPEGH/ISO/HEVC"), wanted), [None; 3]);
    }

    #[test]
    fn mean_luma_is_a_double_of_the_frames_table_only() {
        let schema = |name: &str, data_type: DataType| {
            Arc::new(Schema::new(vec![Field::new(name, data_type, true)]))
        };
        let columns = Columns::read(TableKind::Frames, &schema("mean_luma", DataType::Float64))
            .expect("a frames column");
        assert!(FrameNeeds::of(&columns).bytes());
        let rows = [FrameRow {
            number: "1".into(),
            ts_ms: 0,
            keyframe: true,
            bytes: 4,
            track: 1,
            payload: None,
            mean_luma: Some(128.5),
        }];
        let arrays = frame_arrays(&columns, "cam", &rows);
        let lumas = arrays[0]
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("DOUBLE");
        assert_eq!((lumas.len(), lumas.value(0)), (1, 128.5));

        let int = Columns::read(TableKind::Frames, &schema("mean_luma", DataType::Int32));
        assert!(format!("{:?}", int.expect_err("not INT")).contains("DOUBLE"));
        let fragments = Columns::read(
            TableKind::Fragments,
            &schema("mean_luma", DataType::Float64),
        );
        assert!(format!("{:?}", fragments.expect_err("a frames column")).contains("mean_luma"));
        let plain = Columns::read(TableKind::Frames, &schema("keyframe", DataType::Boolean))
            .expect("a frames column");
        assert!(!FrameNeeds::of(&plain).bytes());
    }
}
