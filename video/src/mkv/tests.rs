//! The parser against MKV built here in the shapes cameras send: sized and
//! unknown-size Clusters, bodies cut at every byte, and bytes that are not
//! MKV at all.

use proptest::prelude::*;

use super::ebml::{self, write_element, write_nested, write_uint};
use super::{Event, Fragment, Limits, MkvError, Parser, ProducerTag, producer_tags};

struct Cluster {
    timecode: u64,
    frames: Vec<(u64, i16, bool, Vec<u8>)>,
}

fn header(out: &mut Vec<u8>, tracks: &[u64]) {
    write_nested(out, ebml::EBML, |out| {
        write_element(out, ebml::DOC_TYPE, b"matroska")
    });
    ebml::write_id(out, ebml::SEGMENT);
    ebml::write_unknown_size(out);
    write_nested(out, ebml::INFO, |out| {
        write_uint(out, ebml::TIMECODE_SCALE, 1_000_000)
    });
    write_nested(out, ebml::TRACKS, |out| {
        for &number in tracks {
            write_nested(out, ebml::TRACK_ENTRY, |out| {
                write_uint(out, ebml::TRACK_NUMBER, number);
                write_element(out, ebml::CODEC_ID, b"V_MPEG4/ISO/AVC");
                write_element(out, ebml::CODEC_PRIVATE, &[1, 77, 0, 30]);
                write_nested(out, ebml::VIDEO, |out| {
                    write_uint(out, ebml::PIXEL_WIDTH, 640);
                    write_uint(out, ebml::PIXEL_HEIGHT, 360);
                });
            });
        }
    });
}

fn cluster(out: &mut Vec<u8>, cluster: &Cluster, sized: bool) {
    let mut body = Vec::new();
    write_uint(&mut body, ebml::TIMECODE, cluster.timecode);
    for (track, relative, key, data) in &cluster.frames {
        let mut block = vec![0x80 | *track as u8];
        block.extend_from_slice(&relative.to_be_bytes());
        block.push(if *key { 0x80 } else { 0 });
        block.extend_from_slice(data);
        write_element(&mut body, ebml::SIMPLE_BLOCK, &block);
    }
    ebml::write_id(out, ebml::CLUSTER);
    if sized {
        ebml::write_size8(out, body.len() as u64);
    } else {
        ebml::write_unknown_size(out);
    }
    out.extend_from_slice(&body);
}

fn clusters(n: usize, frames: usize) -> Vec<Cluster> {
    (0..n)
        .map(|i| Cluster {
            timecode: 1_733_500_000_000 + 2000 * i as u64,
            frames: (0..frames)
                .map(|f| (1, (f * 33) as i16, f == 0, vec![i as u8; 10 + f]))
                .collect(),
        })
        .collect()
}

fn stream(clusters: &[Cluster], sized: bool) -> Vec<u8> {
    let mut out = Vec::new();
    header(&mut out, &[1]);
    for c in clusters {
        cluster(&mut out, c, sized);
    }
    out
}

fn fragments(events: &[Event]) -> Vec<&Fragment> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Fragment(f) => Some(f),
            Event::FragmentStarted { .. } => None,
        })
        .collect()
}

/// Feeds `bytes` in chunks of the given sizes (cycled), then ends.
fn parse_in_chunks(bytes: &[u8], chunks: &[usize]) -> Result<Vec<Event>, MkvError> {
    let mut parser = Parser::new(Limits::default());
    let mut events = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = chunks[i % chunks.len()].max(1).min(bytes.len() - at);
        events.extend(parser.push(&bytes[at..at + n])?);
        at += n;
        i += 1;
    }
    events.extend(parser.finish()?);
    Ok(events)
}

#[test]
fn each_cluster_is_a_fragment_with_its_frames_sized_or_not() {
    for sized in [true, false] {
        let events =
            parse_in_chunks(&stream(&clusters(3, 60), sized), &[usize::MAX]).expect("parse");
        let fragments = fragments(&events);
        assert_eq!(fragments.len(), 3, "sized {sized}");
        let started = events
            .iter()
            .filter(|e| matches!(e, Event::FragmentStarted { .. }))
            .count();
        assert_eq!(started, 3);
        let first = fragments[0];
        assert_eq!(first.timecode_ms, 1_733_500_000_000);
        assert_eq!(first.frames.len(), 60);
        assert_eq!(first.frames.iter().filter(|f| f.keyframe).count(), 1);
        assert_eq!(first.duration_ms, 59 * 33 + 33);
        assert_eq!(first.header.tracks[0].width, Some(640));
        let frame = first.frames[5];
        let payload = &first.body[frame.offset as usize..(frame.offset + frame.len) as usize];
        assert_eq!(payload, &[0u8; 15][..]);
        let stored = super::frames_of(&first.body, 1_000_000).expect("stored frames");
        assert_eq!(stored.len(), 60);
        assert_eq!(stored[5].offset, frame.offset);
        assert_eq!(stored[5].timecode_ms, 5 * 33);
    }
}

#[test]
fn a_body_cut_inside_a_cluster_drops_only_that_cluster() {
    let bytes = stream(&clusters(3, 10), true);
    let cut = &bytes[..bytes.len() - 7];
    let events = parse_in_chunks(cut, &[100]).expect("parse");
    assert_eq!(fragments(&events).len(), 2);
    let unknown_size = stream(&clusters(3, 10), false);
    let events = parse_in_chunks(&unknown_size[..unknown_size.len() - 7], &[100]).expect("parse");
    assert_eq!(fragments(&events).len(), 2);
}

#[test]
fn broken_input_names_its_error_id() {
    let garbage = parse_in_chunks(b"\x00\x00\x00 definitely not matroska", &[5]);
    assert_eq!(garbage.expect_err("garbage").error_id(), 4006);
    let mut back = clusters(2, 5);
    back[1].timecode = back[0].timecode - 1000;
    let went_back = parse_in_chunks(&stream(&back, true), &[64]).expect_err("went back");
    assert_eq!(went_back.error_id(), 4004);
    let mut long = clusters(1, 2);
    long[0].frames[1].1 = i16::MAX;
    long[0].timecode = 0;
    let mut bytes = Vec::new();
    header(&mut bytes, &[1]);
    let mut scaled = Vec::new();
    cluster(&mut scaled, &long[0], true);
    bytes.extend_from_slice(&scaled);
    // 32.767 s after the cluster start is past the 10 s a fragment may last.
    assert_eq!(
        parse_in_chunks(&bytes, &[64]).expect_err("long").error_id(),
        4002
    );
    let mut wrong_track = clusters(1, 2);
    wrong_track[0].frames[0].0 = 2;
    assert_eq!(
        parse_in_chunks(&stream(&wrong_track, true), &[64])
            .expect_err("track")
            .error_id(),
        4010
    );
    let mut two_tracks = Vec::new();
    header(&mut two_tracks, &[1, 2]);
    cluster(&mut two_tracks, &clusters(1, 3)[0], true);
    assert_eq!(
        parse_in_chunks(&two_tracks, &[64])
            .expect_err("frames missing")
            .error_id(),
        4011
    );
    let mut many = Vec::new();
    header(&mut many, &[1, 2, 3, 4]);
    assert_eq!(
        parse_in_chunks(&many, &[64])
            .expect_err("tracks")
            .error_id(),
        4012
    );
    let small = Limits {
        max_fragment_bytes: 200,
        ..Limits::default()
    };
    let mut parser = Parser::new(small);
    let error = parser
        .push(&stream(&clusters(1, 30), false))
        .expect_err("large");
    assert_eq!(error.error_id(), 4001);
}

#[test]
fn fragments_before_an_error_in_the_same_chunk_are_still_returned() {
    let mut bytes = stream(&clusters(2, 3), true);
    let names: Vec<String> = (0..11).map(|i| format!("k{i}")).collect();
    let items: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    tags(&mut bytes, &items, None);
    let mut parser = Parser::new(Limits::default());
    let (events, error) = parser.push_events(&bytes);
    assert_eq!(fragments(&events).len(), 2);
    assert_eq!(error.map(|e| e.error_id()), Some(4009));
    let (events, error) = parser.push_events(b"more");
    assert!(
        events.is_empty() && error.is_none(),
        "a failed parser takes nothing more"
    );
    let mut parser = Parser::new(Limits::default());
    assert_eq!(
        parser.push(&bytes).map(|_| ()).map_err(|e| e.error_id()),
        Err(4009)
    );
}

/// A Tags element as the producer SDK writes one per metadata item (one
/// Tag, no Targets), or aimed at a track as ffmpeg writes its per-track
/// ENCODER.
fn tags(out: &mut Vec<u8>, items: &[(&str, &str)], track_uid: Option<u64>) {
    write_nested(out, ebml::TAGS, |out| {
        write_nested(out, ebml::TAG, |out| {
            write_nested(out, ebml::TARGETS, |out| {
                if let Some(uid) = track_uid {
                    write_uint(out, 0x63C5, uid);
                }
            });
            for (name, value) in items {
                write_nested(out, ebml::SIMPLE_TAG, |out| {
                    write_element(out, ebml::TAG_NAME, name.as_bytes());
                    write_element(out, ebml::TAG_STRING, value.as_bytes());
                });
            }
        });
    });
}

fn tag(name: &str, value: &str) -> ProducerTag {
    ProducerTag {
        name: name.into(),
        value: value.into(),
    }
}

/// Clusters each preceded by its metadata: `motion = <i>` and a second
/// item on every other one, and the producer SDK's end-of-fragment tag
/// after each.
fn tagged_stream(clusters: &[Cluster], sized: bool) -> Vec<u8> {
    let mut out = Vec::new();
    header(&mut out, &[1]);
    for (i, c) in clusters.iter().enumerate() {
        tags(&mut out, &[("motion", &i.to_string())], None);
        if i % 2 == 0 {
            tags(&mut out, &[("lat", "47.6"), ("long", "-122.3")], None);
        }
        cluster(&mut out, c, sized);
        tags(&mut out, &[("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")], None);
    }
    out
}

#[test]
fn metadata_before_a_cluster_is_that_fragments_own() {
    for sized in [true, false] {
        let mut bytes = Vec::new();
        header(&mut bytes, &[1]);
        let source = clusters(3, 4);
        // ffmpeg's header tags: one for the segment, one for its track.
        tags(&mut bytes, &[("ENCODER", "Lavf59.27.100")], None);
        tags(&mut bytes, &[("ENCODER", "libx264")], Some(0x1234));
        tags(&mut bytes, &[("motion", "true"), ("zone", "door")], None);
        cluster(&mut bytes, &source[0], sized);
        cluster(&mut bytes, &source[1], sized);
        tags(
            &mut bytes,
            &[("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")],
            None,
        );
        tags(&mut bytes, &[("gps", "47.608013N")], None);
        cluster(&mut bytes, &source[2], sized);
        let events = parse_in_chunks(&bytes, &[7, 100]).expect("parse");
        let got: Vec<Vec<ProducerTag>> =
            fragments(&events).iter().map(|f| f.tags.clone()).collect();
        assert_eq!(
            got,
            vec![
                vec![
                    tag("ENCODER", "Lavf59.27.100"),
                    tag("motion", "true"),
                    tag("zone", "door")
                ],
                vec![],
                vec![tag("gps", "47.608013N")],
            ],
            "sized {sized}"
        );
    }
}

#[test]
fn stored_metadata_reads_back_as_written() {
    let written = vec![tag("motion", "true"), tag("empty", ""), tag("ünï", "çødé")];
    let element = super::write::tags_element(&written);
    let (id, payload) = ebml::children(&element)
        .next()
        .flatten()
        .expect("one element");
    assert_eq!(id, ebml::TAGS);
    assert_eq!(producer_tags(payload, 0).expect("tags"), written);
}

#[test]
fn metadata_over_kinesis_videos_limits_is_4009() {
    let error_of = |items: &[(&str, &str)], split: usize| {
        let mut bytes = Vec::new();
        header(&mut bytes, &[1]);
        tags(&mut bytes, &items[..split], None);
        tags(&mut bytes, &items[split..], None);
        cluster(&mut bytes, &clusters(1, 2)[0], true);
        parse_in_chunks(&bytes, &[50]).err()
    };
    let names: Vec<String> = (0..11).map(|i| format!("item{i}")).collect();
    let items: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    assert_eq!(error_of(&items[..10], 4), None, "ten are allowed");
    let mut with_signal = items[..10].to_vec();
    with_signal.push(("AWS_KINESISVIDEO_END_OF_FRAGMENT", ""));
    assert_eq!(
        error_of(&with_signal, 10),
        None,
        "reserved names do not count"
    );
    let eleven = error_of(&items, 6).expect("eleven");
    assert_eq!(eleven.error_id(), 4009, "{eleven}");

    let long_name = "n".repeat(129);
    let long_value = "v".repeat(257);
    for (items, what) in [
        (vec![(long_name.as_str(), "v")], "a 129-byte name"),
        (vec![("name", long_value.as_str())], "a 257-byte value"),
        (vec![("", "v")], "an empty name"),
    ] {
        let error = error_of(&items, 0).unwrap_or_else(|| panic!("{what} was taken"));
        assert_eq!(error.error_id(), 4009, "{what}: {error}");
    }
    let (name, value) = ("n".repeat(128), "v".repeat(256));
    assert_eq!(error_of(&[(&name, &value)], 1), None, "the longest allowed");

    // Tags that are not well-formed Matroska are invalid MKV, not metadata.
    let mut broken = Vec::new();
    header(&mut broken, &[1]);
    write_nested(&mut broken, ebml::TAGS, |out| {
        write_nested(out, ebml::TAG, |out| {
            write_nested(out, ebml::SIMPLE_TAG, |out| {
                write_element(out, ebml::TAG_STRING, b"a value without a name")
            })
        })
    });
    cluster(&mut broken, &clusters(1, 2)[0], true);
    assert_eq!(
        parse_in_chunks(&broken, &[50])
            .expect_err("nameless")
            .error_id(),
        4006
    );
    let mut not_utf8 = Vec::new();
    header(&mut not_utf8, &[1]);
    write_nested(&mut not_utf8, ebml::TAGS, |out| {
        write_nested(out, ebml::TAG, |out| {
            write_nested(out, ebml::SIMPLE_TAG, |out| {
                write_element(out, ebml::TAG_NAME, &[0xFF, 0xFE]);
            })
        })
    });
    assert_eq!(
        parse_in_chunks(&not_utf8, &[50])
            .expect_err("not UTF-8")
            .error_id(),
        4006
    );
    let mut garbage = Vec::new();
    header(&mut garbage, &[1]);
    write_element(&mut garbage, ebml::TAGS, &[0x73, 0x73, 0x88, 0x00, 0x00]);
    assert_eq!(
        parse_in_chunks(&garbage, &[3])
            .expect_err("garbage")
            .error_id(),
        4006
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// However the body is cut into chunks, the fragments are the same.
    #[test]
    fn chunking_never_changes_the_fragments(
        n in 1usize..5,
        frames in 1usize..20,
        sized in any::<bool>(),
        chunks in proptest::collection::vec(1usize..300, 1..8),
    ) {
        let bytes = stream(&clusters(n, frames), sized);
        let whole = parse_in_chunks(&bytes, &[usize::MAX]).expect("whole");
        let chunked = parse_in_chunks(&bytes, &chunks).expect("chunked");
        prop_assert_eq!(whole, chunked);
    }

    /// Nor does it change which fragment each metadata item belongs to.
    #[test]
    fn chunking_never_changes_the_metadata(
        n in 1usize..5,
        sized in any::<bool>(),
        chunks in proptest::collection::vec(1usize..300, 1..8),
    ) {
        let bytes = tagged_stream(&clusters(n, 3), sized);
        let events = parse_in_chunks(&bytes, &chunks).expect("chunked");
        let got: Vec<Vec<ProducerTag>> = fragments(&events).iter().map(|f| f.tags.clone()).collect();
        let expected: Vec<Vec<ProducerTag>> = (0..n)
            .map(|i| {
                let mut tags = vec![tag("motion", &i.to_string())];
                if i % 2 == 0 {
                    tags.extend([tag("lat", "47.6"), tag("long", "-122.3")]);
                }
                tags
            })
            .collect();
        prop_assert_eq!(got, expected);
    }

    /// Metadata changed anywhere, or cut anywhere: an error, never a panic.
    #[test]
    fn corrupted_metadata_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        chunks in proptest::collection::vec(1usize..200, 1..4),
    ) {
        let mut bytes = tagged_stream(&clusters(3, 2), false);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let cut = cut.index(bytes.len() + 1);
        if let Ok(events) = parse_in_chunks(&bytes[..cut], &chunks) {
            for fragment in fragments(&events) {
                prop_assert!(fragment.tags.len() <= Limits::default().max_fragment_tags);
            }
        }
    }

    /// Bytes changed anywhere, or cut anywhere: an error or fragments,
    /// never a panic, and never more fragments than clusters sent.
    #[test]
    fn corrupted_bodies_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        chunks in proptest::collection::vec(1usize..200, 1..4),
    ) {
        let mut bytes = stream(&clusters(3, 8), false);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let cut = cut.index(bytes.len() + 1);
        if let Ok(events) = parse_in_chunks(&bytes[..cut], &chunks) {
            prop_assert!(fragments(&events).len() <= 3 + 2);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_in_chunks(&bytes, &[17]);
    }
}
