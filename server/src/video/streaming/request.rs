//! The members GetHLSStreamingSessionURL and GetDASHStreamingSessionURL
//! share (the stream, PlaybackMode, a fragment selector, Expires, a
//! maximum of listed fragments, DisplayFragmentTimestamp) and what both
//! check before handing out a session: that the stream keeps media, has
//! something to play in the requested range, and plays as MP4.

use runnel_video::{FragmentMeta, Stream, StreamRef, Video, VideoError, now_ms};

use super::Streaming;
use super::token::{Anchor, Format, Mode, Session};
use crate::aws::AwsError;
use crate::aws::request::Req;
use crate::video::selector::{Clock, TimeRange, fragments_in};
use crate::video::{blocking, fmp4, invalid, stream_ref};

/// A LIVE session needs a fragment ingested this recently.
const LIVE_WINDOW_MS: u64 = 30_000;
/// Expires when left out, in seconds.
const DEFAULT_EXPIRES_S: u64 = 300;

/// The names one operation gives the shared members.
pub struct Members {
    /// `HLSFragmentSelector` or `DASHFragmentSelector`.
    pub selector: &'static str,
    /// The maximum of listed fragments, and its constraint path.
    pub max_results: (&'static str, &'static str),
}

pub struct Request {
    pub reference: StreamRef,
    pub mode: Mode,
    pub clock: Clock,
    pub range: Option<TimeRange>,
    pub expires_s: u64,
    pub max_results: u32,
    pub display_timestamp: bool,
}

impl Request {
    /// Reads the shared members, and then the stream, which reports every
    /// constraint failure found so far: an operation reads its own
    /// members before this.
    pub fn read(req: &mut Req, members: &Members) -> Result<Request, AwsError> {
        let mode = one_of(
            req,
            "PlaybackMode",
            "playbackMode",
            &["LIVE", "LIVE_REPLAY", "ON_DEMAND"],
        )?;
        let display = one_of(
            req,
            "DisplayFragmentTimestamp",
            "displayFragmentTimestamp",
            &["ALWAYS", "NEVER"],
        )?;
        let expires = req.int_range("Expires", "expires", 300, 43_200)?;
        let (max_field, max_at) = members.max_results;
        let max_results = req.int_range(max_field, max_at, 1, 5000)?;
        let selector = req.opt_object(members.selector)?;
        let reference = stream_ref(req)?;
        let mode = match mode {
            Some("LIVE_REPLAY") => Mode::LiveReplay,
            Some("ON_DEMAND") => Mode::OnDemand,
            _ => Mode::Live,
        };
        let clock = match &selector {
            Some(selector) => Clock::read(selector, Some(Clock::Server))?,
            None => Clock::Server,
        };
        let range = match &selector {
            Some(selector) => selector.opt_object("TimestampRange")?,
            None => None,
        };
        let range = match (mode, range) {
            (Mode::Live, None) => None,
            (Mode::Live, Some(_)) => {
                return Err(invalid(
                    "TimestampRange must not be set when PlaybackMode is LIVE",
                ));
            }
            (_, None) => {
                return Err(invalid(format!(
                    "{} with a TimestampRange is required when PlaybackMode is ON_DEMAND or LIVE_REPLAY",
                    members.selector
                )));
            }
            (mode, Some(range)) => {
                let range = TimeRange::read(clock, &range, mode == Mode::OnDemand)?;
                range.check_span()?;
                Some(range)
            }
        };
        let max_results = max_results.map_or(
            match mode {
                Mode::OnDemand => 1000,
                Mode::Live | Mode::LiveReplay => 5,
            },
            |n| n as u32,
        );
        Ok(Request {
            reference,
            mode,
            clock,
            range,
            expires_s: expires.map_or(DEFAULT_EXPIRES_S, |s| s as u64),
            max_results,
            display_timestamp: display == Some("ALWAYS"),
        })
    }

    /// The session, once the stream is found to have something to play:
    /// `format` is given the session's anchor.
    pub async fn start(
        self,
        streaming: &Streaming,
        format: impl FnOnce(Anchor) -> Format,
    ) -> Result<Session, AwsError> {
        let stream = streaming.video().stream(&self.reference)?;
        fmp4::require_retention(&stream)?;
        let created_ms = now_ms();
        let (video, s) = (streaming.video().clone(), stream.clone());
        let (range, max) = (self.range, self.max_results as usize);
        let (header, anchor) =
            blocking(move || first_fragments(&video, &s, range.as_ref(), max, created_ms)).await?;
        Ok(Session {
            stream_id: stream.id(),
            stream_name: stream.meta().name,
            mode: self.mode,
            clock: self.clock,
            range: self.range,
            created_ms,
            expires_ms: created_ms + self.expires_s * 1000,
            max_results: self.max_results,
            display_timestamp: self.display_timestamp,
            header,
            format: format(anchor),
        })
    }
}

/// The Info and Tracks the session's init segment comes from (the first
/// fragment of the range, or for LIVE the newest, which must be recent)
/// and where the session's timeline starts: at creation a replay is at
/// the range's first fragment, and LIVE's newest fragments end now.
/// The video track is checked here, so a stream that cannot play as MP4
/// is refused now rather than by the player.
fn first_fragments(
    video: &Video,
    stream: &Stream,
    range: Option<&TimeRange>,
    max: usize,
    now_ms: u64,
) -> Result<(u64, Anchor), VideoError> {
    let (header, anchor) = match range {
        Some(range) => {
            let first = fragments_in(video, stream, range)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    VideoError::NotFound(
                        "No fragments were found in the requested time range".into(),
                    )
                })?;
            let anchor = Anchor {
                producer_ms: first.producer_ms,
                wall_ms: now_ms + range.clock.at(&first).saturating_sub(range.start_ms),
            };
            (first.header, anchor)
        }
        None => {
            let latest = video.latest_fragments(stream, max.max(1))?;
            let (Some(oldest), Some(newest)) = (latest.first(), latest.last()) else {
                return Err(not_live());
            };
            if newest.server_ms + LIVE_WINDOW_MS < now_ms {
                return Err(not_live());
            }
            let anchor = Anchor {
                producer_ms: oldest.producer_ms,
                wall_ms: now_ms.saturating_sub(end_ms(newest).saturating_sub(oldest.producer_ms)),
            };
            (newest.header, anchor)
        }
    };
    fmp4::video_track(video, stream, header)?;
    Ok((header, anchor))
}

fn end_ms(fragment: &FragmentMeta) -> u64 {
    fragment.producer_ms + fragment.duration_ms
}

fn not_live() -> VideoError {
    VideoError::NotFound("No fragments were ingested into the stream in the last 30 seconds".into())
}

/// An optional enum member; a value outside `values` is a constraint
/// failure, reported with the others.
pub fn one_of(
    req: &mut Req,
    field: &str,
    at: &str,
    values: &[&'static str],
) -> Result<Option<&'static str>, AwsError> {
    let Some(value) = req.opt_str(field)? else {
        return Ok(None);
    };
    let known = values.iter().copied().find(|v| *v == value);
    if known.is_none() {
        req.problem(
            Some(&value),
            at,
            &format!(
                "Member must satisfy enum value set: [{}]",
                values.join(", ")
            ),
        );
    }
    Ok(known)
}
