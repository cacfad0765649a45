//! PutMedia's MKV, read as it arrives: a push parser that buffers only the
//! element it is in the middle of, so a camera's endless body costs one
//! fragment of memory. Each Cluster is one fragment; Clusters and Segments
//! of unknown size (the producer SDK's and GStreamer's) end where the next
//! top-level element begins, or where the body ends.

use std::sync::Arc;

use super::ebml::{self, UNKNOWN_SIZE, Vint};

/// Kinesis Video's bounds on what one PutMedia may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_fragment_bytes: usize,
    pub max_fragment_ms: i64,
    pub max_tracks: usize,
    /// Producer metadata tags on one fragment.
    pub max_fragment_tags: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_fragment_bytes: 50 * 1024 * 1024,
            max_fragment_ms: 10_000,
            max_tracks: 3,
            max_fragment_tags: 10,
        }
    }
}

/// The longest fragment metadata name and value Kinesis Video takes, in
/// bytes.
pub const MAX_TAG_NAME_BYTES: usize = 128;
pub const MAX_TAG_VALUE_BYTES: usize = 256;

/// Metadata names the service and the producer SDK keep for themselves:
/// the SDK sends `AWS_KINESISVIDEO_END_OF_FRAGMENT` between fragments and
/// GetMedia writes `AWS_KINESISVIDEO_*` tags of its own, so such a tag is
/// a signal, not producer metadata; keeping one would let a producer forge
/// the fragment number GetMedia reports.
pub const RESERVED_TAG_PREFIX: &str = "AWS";

/// The EBML header and segment Info and Tracks are small; anything bigger
/// is not a header a camera sends.
const MAX_HEADER_BYTES: u64 = 1024 * 1024;

/// A PutMedia failure, with the `ErrorId` and `ErrorCode` Kinesis Video
/// acknowledges it with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MkvError {
    #[error("invalid MKV data at byte {at}: {reason}")]
    Invalid { at: u64, reason: String },
    #[error("fragment over {limit} bytes")]
    FragmentTooLarge { limit: usize },
    #[error("fragment over {limit_ms} ms")]
    FragmentTooLong { limit_ms: i64 },
    #[error(
        "fragment timecode {timecode_ms} ms is lower than the previous fragment's last frame at {previous_ms} ms"
    )]
    TimecodeWentBack { timecode_ms: i64, previous_ms: i64 },
    #[error("{found} tracks; at most {limit} are allowed")]
    TooManyTracks { found: usize, limit: usize },
    #[error("fragment metadata: {0}")]
    Metadata(String),
    #[error("a block of track {0}, which the Tracks do not declare")]
    TrackMismatch(u64),
    #[error("a fragment without frames of track {0}, which the Tracks declare")]
    FramesMissing(u64),
}

impl MkvError {
    pub fn error_id(&self) -> u32 {
        match self {
            MkvError::FragmentTooLarge { .. } => 4001,
            MkvError::FragmentTooLong { .. } => 4002,
            MkvError::TimecodeWentBack { .. } => 4004,
            // 4005 is the deprecated "more than one track"; the PutMedia
            // reference gives 4012 for more tracks than allowed.
            MkvError::TooManyTracks { .. } => 4012,
            MkvError::Invalid { .. } => 4006,
            MkvError::Metadata(_) => 4009,
            MkvError::TrackMismatch(_) => 4010,
            MkvError::FramesMissing(_) => 4011,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Track {
    pub number: u64,
    pub codec_id: String,
    pub codec_private: Vec<u8>,
    pub width: Option<u64>,
    pub height: Option<u64>,
}

/// What a Segment declares before its Clusters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    /// Nanoseconds per timecode tick.
    pub timecode_scale: u64,
    /// The Info and Tracks elements as received, written again before
    /// every fragment GetMedia sends.
    pub info: Vec<u8>,
    pub tracks_element: Vec<u8>,
    pub tracks: Vec<Track>,
}

/// A fragment metadata item: a SimpleTag a producer sent before the
/// fragment's Cluster (the producer SDK's `putFragmentMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerTag {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub track: u64,
    pub timecode_ms: i64,
    pub keyframe: bool,
    /// Where the frame's bytes are in `Fragment::body`.
    pub offset: u32,
    pub len: u32,
}

/// One Cluster: its blocks as received (Timecode, Position and padding
/// left out, to be written again on the way out), and what is in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The Cluster's timecode, in milliseconds.
    pub timecode_ms: i64,
    pub body: Vec<u8>,
    pub frames: Vec<Frame>,
    pub duration_ms: i64,
    pub header: Arc<Header>,
    /// The metadata sent since the previous Cluster, in the order sent.
    pub tags: Vec<ProducerTag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A Cluster began: Kinesis Video's `BUFFERING`.
    FragmentStarted { timecode_ms: i64 },
    /// A Cluster ended: `RECEIVED`, and then it is stored.
    Fragment(Fragment),
}

enum Level {
    Top,
    Segment,
    Cluster(Cluster),
}

struct Cluster {
    /// Absolute stream offset of its end; `None` for unknown size.
    end: Option<u64>,
    timecode_ticks: Option<i64>,
    body: Vec<u8>,
    frames: Vec<Frame>,
    tags: Vec<ProducerTag>,
}

pub struct Parser {
    limits: Limits,
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Bytes of `buf` already taken.
    read: usize,
    skip: u64,
    level: Level,
    segment_end: Option<u64>,
    timecode_scale: u64,
    info: Option<Vec<u8>>,
    header: Option<Arc<Header>>,
    last_frame_ms: Option<i64>,
    /// Metadata read since the last Cluster began, for the next one.
    pending_tags: Vec<ProducerTag>,
    failed: bool,
}

impl Parser {
    pub fn new(limits: Limits) -> Self {
        Parser {
            limits,
            buf: Vec::new(),
            base: 0,
            read: 0,
            skip: 0,
            level: Level::Top,
            segment_end: None,
            timecode_scale: 1_000_000,
            info: None,
            header: None,
            last_frame_ms: None,
            pending_tags: Vec::new(),
            failed: false,
        }
    }

    /// The header of the Segment being read, once its Tracks arrived.
    pub fn header(&self) -> Option<&Arc<Header>> {
        self.header.as_ref()
    }

    /// Reads the next bytes of the body; returns what they completed, or
    /// the error they ran into.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, MkvError> {
        match self.push_events(bytes) {
            (_, Some(error)) => Err(error),
            (events, None) => Ok(events),
        }
    }

    /// `push`, but what the bytes completed before an error is returned
    /// with it: a fragment that ended in the same chunk as a later error
    /// is still the producer's to store.
    pub fn push_events(&mut self, bytes: &[u8]) -> (Vec<Event>, Option<MkvError>) {
        if self.failed {
            return (Vec::new(), None);
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let result = self.run(&mut events);
        if result.is_err() {
            self.failed = true;
        }
        (events, result.err())
    }

    /// The body ended: a Cluster of unknown size that ended cleanly is a
    /// fragment; one cut inside an element is dropped, as is a sized one
    /// cut short.
    pub fn finish(&mut self) -> Result<Vec<Event>, MkvError> {
        if self.failed {
            return Ok(Vec::new());
        }
        let clean = self.read == self.buf.len() && self.skip == 0;
        if let Level::Cluster(cluster) = &self.level
            && cluster.end.is_none()
            && clean
        {
            let fragment = self.close_cluster()?;
            return Ok(fragment.into_iter().map(Event::Fragment).collect());
        }
        Ok(Vec::new())
    }

    fn pos(&self) -> u64 {
        self.base + self.read as u64
    }

    fn compact(&mut self) {
        if self.read > 0 {
            self.buf.drain(..self.read);
            self.base += self.read as u64;
            self.read = 0;
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> MkvError {
        MkvError::Invalid {
            at: self.pos(),
            reason: reason.into(),
        }
    }

    fn run(&mut self, events: &mut Vec<Event>) -> Result<(), MkvError> {
        loop {
            if self.skip > 0 {
                let available = (self.buf.len() - self.read) as u64;
                let n = self.skip.min(available);
                self.read += n as usize;
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(());
                }
            }
            if let Level::Cluster(cluster) = &self.level
                && cluster.end == Some(self.pos())
            {
                events.extend(self.close_cluster()?.map(Event::Fragment));
                continue;
            }
            if matches!(self.level, Level::Segment) && self.segment_end == Some(self.pos()) {
                self.level = Level::Top;
                continue;
            }
            let rest = &self.buf[self.read..];
            let (id, id_len) = match ebml::read_id(rest) {
                Vint::Done(id, len) => (id as u32, len),
                Vint::Short => return Ok(()),
                Vint::Invalid => return Err(self.invalid("not an element id")),
            };
            let (size, size_len) = match ebml::read_size(&rest[id_len..]) {
                Vint::Done(size, len) => (size, len),
                Vint::Short => return Ok(()),
                Vint::Invalid => {
                    return Err(self.invalid(format!("element {id:#x} has no valid size")));
                }
            };
            let head = id_len + size_len;
            let progressed = match self.level {
                Level::Top => self.top_level(id, size, head)?,
                Level::Segment => self.segment_child(id, size, head)?,
                Level::Cluster(_) => self.cluster_child(id, size, head, events)?,
            };
            if !progressed {
                return Ok(());
            }
        }
    }

    /// The whole element at `read`, if it has arrived; `None` to wait.
    fn whole(
        &self,
        size: u64,
        head: usize,
        limit: u64,
        what: &str,
    ) -> Result<Option<std::ops::Range<usize>>, MkvError> {
        if size == UNKNOWN_SIZE {
            return Err(self.invalid(format!("{what} of unknown size")));
        }
        if size > limit {
            return Err(self.invalid(format!("{what} of {size} bytes")));
        }
        let start = self.read + head;
        let end = start + size as usize;
        Ok((end <= self.buf.len()).then_some(start..end))
    }

    fn top_level(&mut self, id: u32, size: u64, head: usize) -> Result<bool, MkvError> {
        match id {
            ebml::EBML => {
                let Some(range) = self.whole(size, head, 4096, "an EBML header")? else {
                    return Ok(false);
                };
                let mut doc_type = None;
                for child in ebml::children(&self.buf[range.clone()]) {
                    let (child_id, payload) =
                        child.ok_or_else(|| self.invalid("malformed EBML header"))?;
                    if child_id == ebml::DOC_TYPE {
                        doc_type = Some(
                            String::from_utf8_lossy(payload)
                                .trim_end_matches('\0')
                                .to_string(),
                        );
                    }
                }
                match doc_type.as_deref() {
                    Some("matroska" | "webm") | None => {}
                    Some(other) => {
                        return Err(self.invalid(format!("DocType {other:?} is not matroska")));
                    }
                }
                self.read = range.end;
            }
            ebml::SEGMENT => {
                self.read += head;
                self.segment_end = (size != UNKNOWN_SIZE).then(|| self.pos() + size);
                self.level = Level::Segment;
                // Tags left after another Segment's last Cluster were
                // about nothing of this one.
                self.pending_tags.clear();
            }
            ebml::VOID | ebml::CRC32 if size != UNKNOWN_SIZE => {
                self.read += head;
                self.skip = size;
            }
            other => {
                return Err(self.invalid(format!(
                    "element {other:#x} where an EBML header or Segment belongs"
                )));
            }
        }
        Ok(true)
    }

    fn segment_child(&mut self, id: u32, size: u64, head: usize) -> Result<bool, MkvError> {
        match id {
            ebml::EBML | ebml::SEGMENT => self.level = Level::Top,
            ebml::INFO => {
                let Some(range) = self.whole(size, head, MAX_HEADER_BYTES, "an Info")? else {
                    return Ok(false);
                };
                for child in ebml::children(&self.buf[range.clone()]) {
                    let (child_id, payload) =
                        child.ok_or_else(|| self.invalid("malformed Info"))?;
                    if child_id == ebml::TIMECODE_SCALE {
                        self.timecode_scale =
                            ebml::unsigned(payload).filter(|&s| s > 0).ok_or_else(|| {
                                self.invalid("TimecodeScale is not a positive integer")
                            })?;
                    }
                }
                self.info = Some(self.buf[self.read..range.end].to_vec());
                self.read = range.end;
            }
            ebml::TRACKS => {
                let Some(range) = self.whole(size, head, MAX_HEADER_BYTES, "a Tracks")? else {
                    return Ok(false);
                };
                let tracks = self.read_tracks(&self.buf[range.clone()])?;
                if tracks.len() > self.limits.max_tracks {
                    return Err(MkvError::TooManyTracks {
                        found: tracks.len(),
                        limit: self.limits.max_tracks,
                    });
                }
                let info = self.info.clone().unwrap_or_else(|| {
                    let mut info = Vec::new();
                    ebml::write_nested(&mut info, ebml::INFO, |out| {
                        ebml::write_uint(out, ebml::TIMECODE_SCALE, 1_000_000)
                    });
                    info
                });
                self.header = Some(Arc::new(Header {
                    timecode_scale: self.timecode_scale,
                    info,
                    tracks_element: self.buf[self.read..range.end].to_vec(),
                    tracks,
                }));
                self.read = range.end;
            }
            ebml::TAGS => {
                let Some(range) = self.whole(size, head, MAX_HEADER_BYTES, "a Tags")? else {
                    return Ok(false);
                };
                let tags = producer_tags(&self.buf[range.clone()], self.pos())?;
                for tag in &tags {
                    check_tag(tag)?;
                }
                self.pending_tags.extend(tags);
                if self.pending_tags.len() > self.limits.max_fragment_tags {
                    return Err(MkvError::Metadata(format!(
                        "{} tags for one fragment; at most {} are allowed",
                        self.pending_tags.len(),
                        self.limits.max_fragment_tags
                    )));
                }
                self.read = range.end;
            }
            ebml::CLUSTER => {
                if self.header.is_none() {
                    return Err(self.invalid("a Cluster before the segment's Tracks"));
                }
                self.read += head;
                let end = (size != UNKNOWN_SIZE).then(|| self.pos() + size);
                if let (Some(end), Some(segment_end)) = (end, self.segment_end)
                    && end > segment_end
                {
                    return Err(self.invalid("a Cluster overruns its Segment"));
                }
                if size != UNKNOWN_SIZE && size > self.limits.max_fragment_bytes as u64 {
                    return Err(MkvError::FragmentTooLarge {
                        limit: self.limits.max_fragment_bytes,
                    });
                }
                self.level = Level::Cluster(Cluster {
                    end,
                    timecode_ticks: None,
                    body: Vec::new(),
                    frames: Vec::new(),
                    tags: std::mem::take(&mut self.pending_tags),
                });
            }
            _ if size == UNKNOWN_SIZE => {
                return Err(self.invalid(format!("element {id:#x} of unknown size in a Segment")));
            }
            _ => {
                self.read += head;
                self.skip = size;
            }
        }
        Ok(true)
    }

    fn read_tracks(&self, body: &[u8]) -> Result<Vec<Track>, MkvError> {
        let mut tracks = Vec::new();
        for child in ebml::children(body) {
            let (id, entry) = child.ok_or_else(|| self.invalid("malformed Tracks"))?;
            if id != ebml::TRACK_ENTRY {
                continue;
            }
            let mut track = Track {
                number: 0,
                codec_id: String::new(),
                codec_private: Vec::new(),
                width: None,
                height: None,
            };
            for field in ebml::children(entry) {
                let (field_id, payload) =
                    field.ok_or_else(|| self.invalid("malformed TrackEntry"))?;
                match field_id {
                    ebml::TRACK_NUMBER => track.number = ebml::unsigned(payload).unwrap_or(0),
                    ebml::CODEC_ID => {
                        track.codec_id = String::from_utf8_lossy(payload)
                            .trim_end_matches('\0')
                            .to_string()
                    }
                    ebml::CODEC_PRIVATE => track.codec_private = payload.to_vec(),
                    ebml::VIDEO => {
                        for video in ebml::children(payload).flatten() {
                            match video.0 {
                                ebml::PIXEL_WIDTH => track.width = ebml::unsigned(video.1),
                                ebml::PIXEL_HEIGHT => track.height = ebml::unsigned(video.1),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            if track.number == 0 {
                return Err(self.invalid("a TrackEntry without a TrackNumber"));
            }
            tracks.push(track);
        }
        if tracks.is_empty() {
            return Err(self.invalid("Tracks without a TrackEntry"));
        }
        Ok(tracks)
    }

    fn cluster_child(
        &mut self,
        id: u32,
        size: u64,
        head: usize,
        events: &mut Vec<Event>,
    ) -> Result<bool, MkvError> {
        let Level::Cluster(cluster) = &self.level else {
            return Ok(false);
        };
        if cluster.end.is_none() && ebml::is_top_level(id) {
            events.extend(self.close_cluster()?.map(Event::Fragment));
            return Ok(true);
        }
        if size == UNKNOWN_SIZE {
            return Err(self.invalid(format!("element {id:#x} of unknown size in a Cluster")));
        }
        if let Some(end) = cluster.end
            && self.pos() + head as u64 + size > end
        {
            return Err(self.invalid(format!("element {id:#x} overruns its Cluster")));
        }
        let max_fragment = self.limits.max_fragment_bytes as u64;
        match id {
            ebml::TIMECODE => {
                let Some(range) = self.whole(size, head, 8, "a Timecode")? else {
                    return Ok(false);
                };
                let ticks = ebml::unsigned(&self.buf[range.clone()]).unwrap_or(0);
                let ticks =
                    i64::try_from(ticks).map_err(|_| self.invalid("a Timecode beyond 2^63"))?;
                let timecode_ms = self.ticks_to_ms(ticks);
                if let Some(previous_ms) = self.last_frame_ms
                    && timecode_ms < previous_ms
                {
                    return Err(MkvError::TimecodeWentBack {
                        timecode_ms,
                        previous_ms,
                    });
                }
                self.read = range.end;
                if let Level::Cluster(cluster) = &mut self.level {
                    if cluster.timecode_ticks.is_some() {
                        return Err(self_invalid_at(
                            self.base,
                            self.read,
                            "a second Timecode in a Cluster",
                        ));
                    }
                    cluster.timecode_ticks = Some(ticks);
                }
                events.push(Event::FragmentStarted { timecode_ms });
            }
            ebml::SIMPLE_BLOCK | ebml::BLOCK_GROUP => {
                if cluster.body.len() as u64 + head as u64 + size > max_fragment {
                    return Err(MkvError::FragmentTooLarge {
                        limit: self.limits.max_fragment_bytes,
                    });
                }
                let Some(range) = self.whole(size, head, max_fragment, "a block")? else {
                    return Ok(false);
                };
                let Some(cluster_ticks) = cluster.timecode_ticks else {
                    return Err(self.invalid("a block before its Cluster's Timecode"));
                };
                let element = &self.buf[self.read..range.end];
                let mut frame =
                    read_block(id, &element[head..], cluster_ticks, self.timecode_scale)
                        .map_err(|reason| self.invalid(reason))?;
                let header = self
                    .header
                    .as_ref()
                    .ok_or_else(|| self.invalid("a block before the Tracks"))?;
                if !header.tracks.iter().any(|t| t.number == frame.track) {
                    return Err(MkvError::TrackMismatch(frame.track));
                }
                let cluster_ms = self.ticks_to_ms(cluster_ticks);
                if frame.timecode_ms - cluster_ms > self.limits.max_fragment_ms {
                    return Err(MkvError::FragmentTooLong {
                        limit_ms: self.limits.max_fragment_ms,
                    });
                }
                let end = range.end;
                if let Level::Cluster(cluster) = &mut self.level {
                    frame.offset += (cluster.body.len() + head) as u32;
                    cluster.body.extend_from_slice(element);
                    cluster.frames.push(frame);
                }
                self.read = end;
            }
            _ => {
                self.read += head;
                self.skip = size;
            }
        }
        Ok(true)
    }

    fn ticks_to_ms(&self, ticks: i64) -> i64 {
        ticks_to_ms(ticks, self.timecode_scale)
    }

    /// Ends the Cluster being read; a Cluster without blocks is no
    /// fragment.
    fn close_cluster(&mut self) -> Result<Option<Fragment>, MkvError> {
        let level = std::mem::replace(&mut self.level, Level::Segment);
        let Level::Cluster(cluster) = level else {
            return Ok(None);
        };
        let (Some(ticks), Some(header)) = (cluster.timecode_ticks, self.header.clone()) else {
            return Ok(None);
        };
        if cluster.frames.is_empty() {
            return Ok(None);
        }
        // Every declared track has frames in every fragment, as Kinesis
        // Video requires of a fragment with audio and video.
        if let Some(track) = header
            .tracks
            .iter()
            .find(|t| !cluster.frames.iter().any(|f| f.track == t.number))
        {
            self.failed = true;
            return Err(MkvError::FramesMissing(track.number));
        }
        let timecode_ms = self.ticks_to_ms(ticks);
        let last = cluster
            .frames
            .iter()
            .map(|f| f.timecode_ms)
            .max()
            .unwrap_or(timecode_ms);
        self.last_frame_ms = Some(last);
        Ok(Some(Fragment {
            timecode_ms,
            duration_ms: duration_ms(timecode_ms, &cluster.frames),
            body: cluster.body,
            frames: cluster.frames,
            header,
            tags: cluster.tags,
        }))
    }
}

fn self_invalid_at(base: u64, read: usize, reason: &str) -> MkvError {
    MkvError::Invalid {
        at: base + read as u64,
        reason: reason.to_string(),
    }
}

/// The producer metadata in a Tags element's payload (`at` is where it
/// starts, for errors): each untargeted Tag's SimpleTags, `AWS` names
/// left out. Tags aimed at a track, edition, chapter or attachment (as
/// ffmpeg writes its per-track ENCODER) describe those, not the fragment.
pub fn producer_tags(payload: &[u8], at: u64) -> Result<Vec<ProducerTag>, MkvError> {
    let invalid = |reason: &str| MkvError::Invalid {
        at,
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    for child in ebml::children(payload) {
        let (id, tag) = child.ok_or_else(|| invalid("malformed Tags"))?;
        if id != ebml::TAG {
            continue;
        }
        let mut targeted = false;
        let mut simple = Vec::new();
        for child in ebml::children(tag) {
            let (id, payload) = child.ok_or_else(|| invalid("malformed Tag"))?;
            match id {
                ebml::TARGETS => {
                    for target in ebml::children(payload) {
                        let (id, uid) = target.ok_or_else(|| invalid("malformed Targets"))?;
                        // A UID of 0 means every one of its kind: still
                        // about the whole segment.
                        if ebml::TARGET_UIDS.contains(&id) && ebml::unsigned(uid) != Some(0) {
                            targeted = true;
                        }
                    }
                }
                ebml::SIMPLE_TAG => simple.push(payload),
                _ => {}
            }
        }
        if targeted {
            continue;
        }
        for payload in simple {
            if let Some(tag) = simple_tag(payload).map_err(invalid)? {
                out.push(tag);
            }
        }
    }
    Ok(out)
}

/// One SimpleTag as metadata: `Ok(None)` for a reserved name. Nested
/// SimpleTags and binary values are left out: Kinesis Video's metadata is
/// flat string pairs.
fn simple_tag(payload: &[u8]) -> Result<Option<ProducerTag>, &'static str> {
    let mut name = None;
    let mut value: &[u8] = &[];
    for child in ebml::children(payload) {
        let (id, bytes) = child.ok_or("malformed SimpleTag")?;
        match id {
            ebml::TAG_NAME => name = Some(bytes),
            ebml::TAG_STRING => value = bytes,
            _ => {}
        }
    }
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(|s| s.trim_end_matches('\0').to_string())
            .map_err(|_| "a SimpleTag that is not UTF-8")
    };
    let name = text(name.ok_or("a SimpleTag without a TagName")?)?;
    if name.starts_with(RESERVED_TAG_PREFIX) {
        return Ok(None);
    }
    Ok(Some(ProducerTag {
        name,
        value: text(value)?,
    }))
}

/// Kinesis Video's bounds on one metadata item.
fn check_tag(tag: &ProducerTag) -> Result<(), MkvError> {
    let short = |text: &str| text.chars().take(32).collect::<String>();
    if tag.name.is_empty() {
        return Err(MkvError::Metadata("a tag with an empty name".into()));
    }
    if tag.name.len() > MAX_TAG_NAME_BYTES {
        return Err(MkvError::Metadata(format!(
            "tag name {:?}... is {} bytes; at most {MAX_TAG_NAME_BYTES} are allowed",
            short(&tag.name),
            tag.name.len()
        )));
    }
    if tag.value.len() > MAX_TAG_VALUE_BYTES {
        return Err(MkvError::Metadata(format!(
            "the value of tag {:?} is {} bytes; at most {MAX_TAG_VALUE_BYTES} are allowed",
            short(&tag.name),
            tag.value.len()
        )));
    }
    Ok(())
}

fn ticks_to_ms(ticks: i64, timecode_scale: u64) -> i64 {
    let ns = i128::from(ticks) * i128::from(timecode_scale);
    i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)
}

/// A SimpleBlock or a BlockGroup's Block: its track, time and whether it
/// is a keyframe; `offset` is within the element's payload.
fn read_block(
    id: u32,
    payload: &[u8],
    cluster_ticks: i64,
    timecode_scale: u64,
) -> Result<Frame, &'static str> {
    let (block, block_at, keyframe) = if id == ebml::SIMPLE_BLOCK {
        let (_, track_len) =
            ebml::read_track(payload).ok_or("a SimpleBlock without a track number")?;
        let flags = payload.get(track_len + 2).copied().unwrap_or(0);
        (payload, 0usize, flags & 0x80 != 0)
    } else {
        let mut block = None;
        let mut referenced = false;
        for child in ebml::children(payload) {
            let (child_id, child_payload) = child.ok_or("malformed BlockGroup")?;
            match child_id {
                ebml::BLOCK => {
                    let at = child_payload.as_ptr() as usize - payload.as_ptr() as usize;
                    block = Some((child_payload, at));
                }
                ebml::REFERENCE_BLOCK => referenced = true,
                _ => {}
            }
        }
        let (block, at) = block.ok_or("a BlockGroup without a Block")?;
        (block, at, !referenced)
    };
    let (track, track_len) = ebml::read_track(block).ok_or("a block without a track number")?;
    let relative = block
        .get(track_len..track_len + 2)
        .ok_or("a block too short for its timecode")?;
    let relative = i64::from(i16::from_be_bytes([relative[0], relative[1]]));
    let data_at = track_len + 3;
    if block.len() < data_at {
        return Err("a block too short for its flags");
    }
    Ok(Frame {
        track,
        timecode_ms: ticks_to_ms(cluster_ticks.saturating_add(relative), timecode_scale),
        keyframe,
        offset: (block_at + data_at) as u32,
        len: (block.len() - data_at) as u32,
    })
}

/// The frames of a stored fragment body (its blocks, as `Fragment::body`
/// keeps them), with times relative to the fragment's start.
pub fn frames_of(body: &[u8], timecode_scale: u64) -> Result<Vec<Frame>, MkvError> {
    let mut frames = Vec::new();
    for child in ebml::children(body) {
        let invalid = |reason: &str| MkvError::Invalid {
            at: 0,
            reason: format!("stored fragment: {reason}"),
        };
        let (id, payload) = child.ok_or_else(|| invalid("malformed element"))?;
        if id != ebml::SIMPLE_BLOCK && id != ebml::BLOCK_GROUP {
            continue;
        }
        let mut frame = read_block(id, payload, 0, timecode_scale).map_err(invalid)?;
        frame.offset += (payload.as_ptr() as usize - body.as_ptr() as usize) as u32;
        frames.push(frame);
    }
    Ok(frames)
}

/// From the cluster's start to the end of its last frame, the last frame
/// lasting as long as the average gap between frames of its track.
fn duration_ms(start_ms: i64, frames: &[Frame]) -> i64 {
    let Some(last) = frames.iter().max_by_key(|f| f.timecode_ms) else {
        return 0;
    };
    let track: Vec<i64> = frames
        .iter()
        .filter(|f| f.track == last.track)
        .map(|f| f.timecode_ms)
        .collect();
    let first = track.iter().copied().min().unwrap_or(last.timecode_ms);
    let gap = if track.len() > 1 {
        (last.timecode_ms - first) / (track.len() as i64 - 1)
    } else {
        0
    };
    (last.timecode_ms - start_ms + gap).max(0)
}
