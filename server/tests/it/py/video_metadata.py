"""Fragment metadata: the MKV tags a producer sends before a Cluster (the
producer SDK's putFragmentMetadata: one Tags element per item, before the
fragment it describes) are kept with that fragment, and GetMedia and
GetMediaForFragmentList give them back as MKV tags in its document. The
SDK's own AWS_-named signals (AWS_KINESISVIDEO_END_OF_FRAGMENT) and tags
aimed at a track are not metadata. Past Kinesis Video's limits (10 items a
fragment, names of 128 bytes, values of 256) PutMedia answers ERROR 4009
and ends the response; Tags that are not well-formed Matroska get 4006, and
more than three tracks 4012. Fragments persisted before an error stay."""

import os
import subprocess
import sys
import tempfile
import time

from common import done, video_client
from video_common import (
    FRAGMENT_NUMBER, PutMedia, SIMPLE_TAG, TAG, TAG_STRING, TAGS, check_acks, check_document,
    create_stream, ebml_element, health, list_fragments, make_mkv, numbers_of, parse_source,
    put_media, read_documents, server_range, tags_element, video_clients, wait_for, wait_listed,
    watchdog,
)

watchdog(150)
endpoint = sys.argv[1]
kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()
base = int(time.time()) - 900
END_OF_FRAGMENT = tags_element([("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")])


def endpoint_for(stream):
    return kv.get_data_endpoint(StreamName=stream, APIName="PUT_MEDIA")["DataEndpoint"]


def producer_tags(doc):
    return [(k, v) for k, v in doc["tags"] if not k.startswith("AWS")]


# --- Metadata on fragments 0, 2, 3 and 4, the most allowed on 2 and 3.
create_stream(kv, "tagged")
data = make_mkv(os.path.join(tmp.name, "tagged.mkv"), 10, offset=base)
source = parse_source(data)
clusters = source["clusters"]
header = data[: source["first_cluster"]]
metadata = [
    [("motion", "true"), ("zone", "door")],
    [],
    [(f"k{i}", f"v{i}") for i in range(10)],
    [("n" * 128, "v" * 256), ("gps", "47.608013N,122.335167W")],
    [("ünïcode", "çødé ✓")],
]
body = bytearray(header)
for i, cluster in enumerate(clusters):
    for item in metadata[i]:
        body += tags_element([item])
    if i == 2:
        # Reserved names are the service's: not metadata, not counted.
        body += tags_element([("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "forged")])
    body += data[cluster["start"] : cluster["end"]]
    body += END_OF_FRAGMENT
t0 = time.time()
numbers = check_acks(put_media(endpoint_for("tagged"), bytes(body), name="tagged"),
                     [c["timecode"] for c in clusters])
t1 = time.time()
media, archive = video_clients(endpoint, "tagged")
out = media.get_media(StreamName="tagged", StartSelector={"StartSelectorType": "EARLIEST"})
_, docs, _ = read_documents(out["Payload"], lambda docs: len(docs) >= 5, 20)
assert numbers_of(docs) == numbers, f"GetMedia gave {numbers_of(docs)}, PERSISTED {numbers}"
for i, doc in enumerate(docs):
    check_document(doc, numbers[i], clusters[i], base + 2 * i, (t0, t1))
    got = producer_tags(doc)
    if i == 0:
        # ffmpeg's header tags: the segment's ENCODER is metadata of the
        # first fragment, its track's (aimed at the track) is not.
        encoder, got = got[0], got[1:]
        assert encoder[0] == "ENCODER" and encoder[1].startswith("Lavf"), f"fragment 0's tags {producer_tags(doc)}"
    assert got == metadata[i], f"fragment {i}: metadata {got}, sent {metadata[i]}"
    fragment_numbers = [v for k, v in doc["tags"] if k == FRAGMENT_NUMBER]
    assert fragment_numbers == [numbers[i]], f"fragment {i}: fragment number tags {fragment_numbers}"
    assert "AWS_KINESISVIDEO_END_OF_FRAGMENT" not in dict(doc["tags"]), f"fragment {i}: {doc['tags']}"

out = archive.get_media_for_fragment_list(StreamName="tagged", Fragments=[numbers[3], numbers[1]])
_, docs, ended = read_documents(out["Payload"], lambda docs: False, 20)
assert ended and numbers_of(docs) == [numbers[3], numbers[1]], numbers_of(docs)
assert [producer_tags(d) for d in docs] == [metadata[3], metadata[1]], [producer_tags(d) for d in docs]


# --- Refusals: each body is sent up to what is refused and no further, so
# that the server's close never meets unread bytes.
def refused(stream, body, error_id, code):
    """Puts `body`, which the server must refuse with `error_id`; returns
    the timecodes acknowledged PERSISTED before the error."""
    create_stream(kv, stream)
    put = PutMedia(endpoint_for(stream), {"x-amzn-stream-name": stream, "x-amzn-fragment-timecode-type": "ABSOLUTE",
                                          "x-amzn-fragment-acknowledgment-required": "1"})
    try:
        put.send(body)
        if not put.wait(lambda p: p.acks("ERROR"), 10):
            put.finish()
        assert put.wait_end(15), f"{stream}: the response did not end after the error: {put.describe()}"
    finally:
        put.close()
    assert put.status == 200 and put.read_error is None, f"{stream}: {put.describe()}"
    errors = put.acks("ERROR")
    assert len(errors) == 1, f"{stream}: ERROR acks {errors}: {put.describe()}"
    assert (errors[0].get("ErrorId"), errors[0].get("ErrorCode")) == (error_id, code), f"{stream}: {errors}"
    assert put.acks()[-1] == errors[0], f"{stream}: acks after the error: {put.acks()}"
    return [a["FragmentTimecode"] for a in put.acks("PERSISTED")]


first = header + data[clusters[0]["start"] : clusters[0]["end"]]
eleven = b"".join(tags_element([(f"k{i}", "v")]) for i in range(11))
assert refused("eleven", first + eleven, 4009, "FRAGMENT_METADATA_LIMIT_REACHED") == [clusters[0]["timecode"]]
_, archive = video_clients(endpoint, "eleven")
listed, _ = list_fragments(archive, "eleven", server_range(t0 - 5, time.time() + 60))
assert len(listed) == 1, f"the fragment before the error: {listed}"
for stream, item in (("long-name", ("n" * 129, "v")), ("long-value", ("name", "v" * 257)), ("no-name", ("", "v"))):
    assert refused(stream, first + tags_element([item]), 4009, "FRAGMENT_METADATA_LIMIT_REACHED") == [clusters[0]["timecode"]]
nameless = ebml_element(TAGS, ebml_element(TAG, ebml_element(SIMPLE_TAG, ebml_element(TAG_STRING, b"no name"))))
assert refused("nameless", first + nameless, 4006, "INVALID_MKV_DATA") == [clusters[0]["timecode"]]
garbage = ebml_element(TAGS, b"\x73\x73\x88\x00\x00")
assert refused("garbage-tags", header + garbage, 4006, "INVALID_MKV_DATA") == []

four = os.path.join(tmp.name, "four.mkv")
result = subprocess.run(
    ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30",
     "-t", "2", "-map", "0:v", "-map", "0:v", "-map", "0:v", "-map", "0:v", "-c:v", "libx264", "-preset",
     "veryfast", "-bf", "0", "-f", "matroska", "-live", "1", "-output_ts_offset", str(base + 100), four],
    capture_output=True, timeout=120,
)
assert result.returncode == 0, result.stderr.decode(errors="replace")
with open(four, "rb") as f:
    four_tracks = f.read()
assert refused("four-tracks", four_tracks[: parse_source(four_tracks)["first_cluster"]], 4012,
               "MORE_THAN_ALLOWED_TRACKS_FOUND") == []

# A refused stream takes the next producer's video.
more = make_mkv(os.path.join(tmp.name, "more.mkv"), 4, offset=base + 300)
check_acks(put_media(endpoint_for("eleven"), more, name="eleven"), [(base + 300) * 1000, (base + 302) * 1000])
assert wait_for(lambda: health(endpoint) == 200, 5), "health check failed"
tmp.cleanup()
done()
