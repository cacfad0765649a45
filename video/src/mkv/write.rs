//! GetMedia's output: each fragment as a document of its own (EBML
//! header, a Segment of unknown size, Info, Tracks, the fragment's tags,
//! the metadata its producer sent with it, its Cluster, then the tags a
//! reader resumes by), as Kinesis Video writes it, so a parser can start
//! at any fragment.

use super::ebml;
use super::parse::{Header, ProducerTag};

pub struct FragmentTags<'a> {
    pub fragment_number: &'a str,
    pub server_timestamp_ms: u64,
    pub producer_timestamp_ms: u64,
    pub millis_behind_now: u64,
    pub continuation_token: &'a str,
    /// The producer's metadata for the fragment, before its Cluster as
    /// the producer sent it.
    pub producer: &'a [ProducerTag],
}

/// Seconds with three decimals, as Kinesis Video writes its timestamps.
pub fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

pub fn document(header: &Header, cluster_body: &[u8], tags: &FragmentTags<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        cluster_body.len() + header.info.len() + header.tracks_element.len() + 512,
    );
    ebml::write_nested(&mut out, ebml::EBML, |out| {
        ebml::write_uint(out, 0x4286, 1); // EBMLVersion
        ebml::write_uint(out, 0x42F7, 1); // EBMLReadVersion
        ebml::write_uint(out, 0x42F2, 4); // EBMLMaxIDLength
        ebml::write_uint(out, 0x42F3, 8); // EBMLMaxSizeLength
        ebml::write_element(out, ebml::DOC_TYPE, b"matroska");
        ebml::write_uint(out, 0x4287, 4); // DocTypeVersion
        ebml::write_uint(out, 0x4285, 2); // DocTypeReadVersion
    });
    ebml::write_id(&mut out, ebml::SEGMENT);
    ebml::write_unknown_size(&mut out);
    out.extend_from_slice(&header.info);
    out.extend_from_slice(&header.tracks_element);
    simple_tags(
        &mut out,
        &[
            (
                "AWS_KINESISVIDEO_FRAGMENT_NUMBER",
                tags.fragment_number.to_string(),
            ),
            (
                "AWS_KINESISVIDEO_SERVER_TIMESTAMP",
                seconds(tags.server_timestamp_ms),
            ),
            (
                "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP",
                seconds(tags.producer_timestamp_ms),
            ),
        ],
    );
    if !tags.producer.is_empty() {
        out.extend_from_slice(&tags_element(tags.producer));
    }
    // Timecodes are the producer's, in the segment's own ticks, so a
    // player sees the same times whether the producer sent them absolute
    // or relative.
    let ticks = u128::from(tags.producer_timestamp_ms) * 1_000_000
        / u128::from(header.timecode_scale.max(1));
    ebml::write_nested(&mut out, ebml::CLUSTER, |out| {
        ebml::write_uint(
            out,
            ebml::TIMECODE,
            u64::try_from(ticks).unwrap_or(u64::MAX),
        );
        out.extend_from_slice(cluster_body);
    });
    simple_tags(
        &mut out,
        &[
            (
                "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW",
                tags.millis_behind_now.to_string(),
            ),
            (
                "AWS_KINESISVIDEO_CONTINUATION_TOKEN",
                tags.continuation_token.to_string(),
            ),
        ],
    );
    out
}

/// A Tags element holding `tags` in one untargeted Tag: how a fragment's
/// metadata is stored, and written for GetMedia.
pub fn tags_element(tags: &[ProducerTag]) -> Vec<u8> {
    let pairs: Vec<(&str, &str)> = tags
        .iter()
        .map(|t| (t.name.as_str(), t.value.as_str()))
        .collect();
    let mut out = Vec::new();
    write_tags(&mut out, &pairs);
    out
}

fn simple_tags(out: &mut Vec<u8>, tags: &[(&str, String)]) {
    let pairs: Vec<(&str, &str)> = tags.iter().map(|(n, v)| (*n, v.as_str())).collect();
    write_tags(out, &pairs);
}

fn write_tags(out: &mut Vec<u8>, tags: &[(&str, &str)]) {
    ebml::write_nested(out, ebml::TAGS, |out| {
        ebml::write_nested(out, ebml::TAG, |out| {
            ebml::write_nested(out, ebml::TARGETS, |_| {});
            for (name, value) in tags {
                ebml::write_nested(out, ebml::SIMPLE_TAG, |out| {
                    ebml::write_element(out, ebml::TAG_NAME, name.as_bytes());
                    ebml::write_element(out, ebml::TAG_STRING, value.as_bytes());
                });
            }
        });
    });
}
