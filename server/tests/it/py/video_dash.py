"""MPEG-DASH sessions over an H.264 stream put with PutMedia: the manifest
is parsed as XML and checked element by element (one Period, one video
AdaptationSet, a SegmentList naming each stored fragment with a
SegmentTimeline of its times), then ffprobe and ffmpeg play the ON_DEMAND
session from its manifest URL, as a player would. LIVE and LIVE_REPLAY
manifests are dynamic windows; a tampered token, or another protocol's,
opens nothing; bad arguments are InvalidArgumentException."""

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

from common import done, video_client
from video_common import (
    check_acks, create_stream, expect_client_error, http_get, make_mkv, probe_media, producer_range, put_media,
    raw_post, server_range, watchdog,
)

watchdog(120)
endpoint = sys.argv[1]
kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()
# Producer time in the past (whole seconds): no fragment is from the future.
base = int(time.time()) - 600

MPD = "{urn:mpeg:dash:schema:mpd:2011}"
KVS_FN = "{https://kinesisvideo.amazonaws.com/dash}fn"
KVS_TS = "{https://kinesisvideo.amazonaws.com/dash}ts"

# --- 10 s of 640x360 30 fps H.264: five fragments of 2 s, 60 frames each.
create_stream(kv, "dash")
put_url = kv.get_data_endpoint(StreamName="dash", APIName="PUT_MEDIA")["DataEndpoint"]
data = make_mkv(os.path.join(tmp.name, "dash.mkv"), 10, offset=base)
t0 = time.time()
numbers = check_acks(put_media(put_url, data, name="dash"), [base * 1000 + 2000 * i for i in range(5)])
t1 = time.time()

dash_url = kv.get_data_endpoint(StreamName="dash", APIName="GET_DASH_STREAMING_SESSION_URL")["DataEndpoint"]
dash = video_client("kinesis-video-archived-media", dash_url, read_timeout=30)


def session(**kwargs):
    url = dash.get_dash_streaming_session_url(StreamName="dash", **kwargs)["DASHStreamingSessionURL"]
    assert url.startswith(endpoint.rstrip("/") + "/dash/v1/getDASHManifest.mpd?SessionToken="), url
    return url


def token_of(url):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["SessionToken"][0]


def manifest(url):
    """The manifest's root element, its Representation and its SegmentList,
    with the structure every session's manifest shares checked."""
    status, content_type, body = http_get(url)
    assert status == 200, f"GET {url}: {status} {body[:500]!r}"
    assert content_type == "application/dash+xml", f"GET {url}: Content-Type {content_type}"
    root = ET.fromstring(body)
    assert root.tag == MPD + "MPD", root.tag
    assert root.get("profiles") == "urn:mpeg:dash:profile:isoff-main:2011", root.attrib
    assert re.fullmatch(r"PT\d+\.\d{3}S", root.get("minBufferTime", "")), root.attrib
    (period,) = root.findall(MPD + "Period")
    (adaptation,) = period.findall(MPD + "AdaptationSet")
    assert adaptation.get("mimeType") == "video/mp4", adaptation.attrib
    assert re.fullmatch(r"avc1\.4d40[0-9a-f]{2}", adaptation.get("codecs", "")), adaptation.attrib
    assert (adaptation.get("width"), adaptation.get("height")) == ("640", "360"), adaptation.attrib
    (representation,) = adaptation.findall(MPD + "Representation")
    assert 100_000 < int(representation.get("bandwidth")) < 50_000_000, representation.attrib
    (segment_list,) = representation.findall(MPD + "SegmentList")
    assert segment_list.get("timescale") == "1000", segment_list.attrib
    (init,) = segment_list.findall(MPD + "Initialization")
    assert init.get("sourceURL") == f"getMP4InitFragment.mp4?SessionToken={token_of(url)}", init.attrib
    return root, segment_list


def listed(segment_list, url):
    """(fragment numbers of the SegmentURLs, the timeline's S elements),
    each URL checked to carry the session's token."""
    found = []
    for segment in segment_list.findall(MPD + "SegmentURL"):
        media = segment.get("media")
        path, query = media.split("?", 1)
        params = urllib.parse.parse_qs(query)
        assert path == "getMP4MediaFragment.mp4" and params["SessionToken"] == [token_of(url)], media
        found.append(params["FragmentNumber"][0])
    timeline = segment_list.find(MPD + "SegmentTimeline")
    entries = [] if timeline is None else timeline.findall(MPD + "S")
    assert len(entries) == len(found), f"{len(entries)} S elements for {len(found)} SegmentURLs"
    return found, entries


# --- LIVE, first: a LIVE session needs a fragment from the last 30 s.
live_url = session(PlaybackMode="LIVE", MaxManifestFragmentResults=3, DisplayFragmentNumber="ALWAYS")
root, segment_list = manifest(live_url)
assert root.get("type") == "dynamic", root.attrib
for attribute in ("availabilityStartTime", "publishTime", "minimumUpdatePeriod", "timeShiftBufferDepth"):
    assert root.get(attribute), f"a dynamic manifest needs {attribute}: {root.attrib}"
assert root.get("mediaPresentationDuration") is None, root.attrib
live, entries = listed(segment_list, live_url)
assert live == numbers[-3:], f"LIVE listed {live}, newest three are {numbers[-3:]}"
assert [s.get(KVS_FN) for s in entries] == live, [s.attrib for s in entries]
assert [int(s.get("t")) for s in entries] == [base * 1000 + 2000 * i for i in (2, 3, 4)], [s.attrib for s in entries]
# The window's first fragment is presentation time 0, placed so that the
# newest ends when the session was made.
assert segment_list.get("presentationTimeOffset") == str(base * 1000 + 4000), segment_list.attrib
# LIVE lists five by default.
default_url = session(PlaybackMode="LIVE")
assert listed(manifest(default_url)[1], default_url)[0] == numbers, "LIVE's default window"

# LIVE_REPLAY from the first fragment: the replay has only reached it.
replay_url = session(PlaybackMode="LIVE_REPLAY", DASHFragmentSelector=producer_range(base, base + 10))
root, segment_list = manifest(replay_url)
assert root.get("type") == "dynamic", root.attrib
assert listed(segment_list, replay_url)[0] == numbers[:1]
# A replay of one second is over a second later: the manifest turns static.
short_url = session(PlaybackMode="LIVE_REPLAY", DASHFragmentSelector=producer_range(base, base + 1))
time.sleep(1.1)
root, segment_list = manifest(short_url)
assert root.get("type") == "static" and root.get("mediaPresentationDuration"), root.attrib
assert listed(segment_list, short_url)[0] == numbers[:1]

# --- ON_DEMAND over the whole put, with producer timestamps shown.
url = session(PlaybackMode="ON_DEMAND", DASHFragmentSelector=producer_range(base, base + 10),
              DisplayFragmentTimestamp="ALWAYS", Expires=600)
token = token_of(url)
root, segment_list = manifest(url)
assert root.get("type") == "static", root.attrib
assert root.get("availabilityStartTime") is None and root.get("minimumUpdatePeriod") is None, root.attrib
duration = re.fullmatch(r"PT(\d+\.\d{3})S", root.get("mediaPresentationDuration", ""))
assert duration and abs(float(duration.group(1)) - 10) < 0.2, root.attrib
assert segment_list.get("presentationTimeOffset") == str(base * 1000), segment_list.attrib
on_demand, entries = listed(segment_list, url)
assert on_demand == numbers, f"ON_DEMAND listed {on_demand}, put {numbers}"
starts = [int(s.get("t")) for s in entries]
assert starts == [base * 1000 + 2000 * i for i in range(5)], starts
assert all(1900 <= int(s.get("d")) <= 2100 for s in entries), [s.attrib for s in entries]
assert [int(s.get(KVS_TS)) for s in entries] == starts, "kvs:ts: the producer timestamps"
assert all(s.get(KVS_FN) is None for s in entries), "DisplayFragmentNumber defaults to NEVER"

status, content_type, init = http_get(urllib.parse.urljoin(url, f"getMP4InitFragment.mp4?SessionToken={token}"))
assert (status, content_type) == (200, "video/mp4") and init[4:8] == b"ftyp" and b"avcC" in init, (status, init[:64])
first_media = segment_list.findall(MPD + "SegmentURL")[2].get("media")
status, content_type, segment = http_get(urllib.parse.urljoin(url, first_media))
assert (status, content_type) == (200, "video/mp4") and segment[4:8] == b"moof" and b"mdat" in segment, (status, segment[:64])

# A player's view: ffprobe and ffmpeg read the session from its manifest.
codec, width, height, frames, probed = probe_media(url)
assert (codec, width, height, frames) == ("h264", 640, 360, 300), (codec, width, height, frames)
assert probed is not None and abs(probed - 10) <= 1, f"duration {probed}"
copy = os.path.join(tmp.name, "dash.mp4")
result = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", url, "-c", "copy", copy], capture_output=True, timeout=60)
assert result.returncode == 0, f"ffmpeg -i <mpd> -c copy: {result.stderr.decode(errors='replace')}"
assert probe_media(copy)[:4] == ("h264", 640, 360, 300), probe_media(copy)

# By server time: the same fragments, shown at their server timestamps.
server_url = session(PlaybackMode="ON_DEMAND", DASHFragmentSelector=server_range(t0 - 5, t1 + 5),
                     DisplayFragmentTimestamp="ALWAYS", DisplayFragmentNumber="ALWAYS")
by_server, entries = listed(manifest(server_url)[1], server_url)
assert by_server == numbers and [s.get(KVS_FN) for s in entries] == numbers, by_server
shown = [int(s.get(KVS_TS)) for s in entries]
assert shown == sorted(shown) and (t0 - 5) * 1000 <= shown[0] and shown[-1] <= (t1 + 5) * 1000, shown
# MaxManifestFragmentResults keeps the oldest of an ON_DEMAND range.
two_url = session(PlaybackMode="ON_DEMAND", DASHFragmentSelector=producer_range(base, base + 10),
                  MaxManifestFragmentResults=2)
assert listed(manifest(two_url)[1], two_url)[0] == numbers[:2]

# --- Tokens: tampered, missing, another protocol's.
tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
for target in ("getDASHManifest.mpd?", "getMP4InitFragment.mp4?", f"getMP4MediaFragment.mp4?FragmentNumber={numbers[0]}&"):
    status, _, body = http_get(urllib.parse.urljoin(url, f"{target}SessionToken={tampered}"))
    assert status == 403 and b"NotAuthorizedException" in body, (target, status, body)
status, _, body = http_get(urllib.parse.urljoin(url, "getDASHManifest.mpd"))
assert status == 400 and b"SessionToken" in body, (status, body)
hls_url = video_client("kinesis-video-archived-media", dash_url).get_hls_streaming_session_url(
    StreamName="dash", PlaybackMode="ON_DEMAND", HLSFragmentSelector=producer_range(base, base + 10),
)["HLSStreamingSessionURL"]
status, _, body = http_get(urllib.parse.urljoin(url, f"getDASHManifest.mpd?SessionToken={token_of(hls_url)}"))
assert status == 403 and b"NotAuthorizedException" in body, (status, body)
status, _, body = http_get(urllib.parse.urljoin(hls_url, f"getHLSMasterPlaylist.m3u8?SessionToken={token}"))
assert status == 403 and b"NotAuthorizedException" in body, (status, body)
# A fragment of the stream outside the session's range.
narrow_url = session(PlaybackMode="ON_DEMAND", DASHFragmentSelector=producer_range(base, base + 1))
status, _, body = http_get(urllib.parse.urljoin(
    narrow_url, f"getMP4MediaFragment.mp4?FragmentNumber={numbers[3]}&SessionToken={token_of(narrow_url)}"))
assert status == 404 and b"ResourceNotFoundException" in body, (status, body)

# --- Session errors. botocore itself refuses an Expires under 300, so
# that one goes out raw.
expect_client_error(dash, "InvalidArgumentException", dash.get_dash_streaming_session_url, StreamName="dash",
                    PlaybackMode="ON_DEMAND", DASHFragmentSelector=producer_range(base, base + 10), Expires=43_201)
status, _, body = raw_post(dash_url, "/getDASHStreamingSessionURL", {
    "StreamName": "dash", "PlaybackMode": "ON_DEMAND", "Expires": 299,
    "DASHFragmentSelector": {"FragmentSelectorType": "PRODUCER_TIMESTAMP",
                             "TimestampRange": {"StartTimestamp": base, "EndTimestamp": base + 10}},
})
assert status == 400 and body.get("__type", "").rsplit("#", 1)[-1] == "InvalidArgumentException", (status, body)
assert "expires" in body.get("message", body.get("Message", "")), body
for kwargs in (
    {"PlaybackMode": "ON_DEMAND"},
    {"PlaybackMode": "LIVE", "DASHFragmentSelector": producer_range(base, base + 10)},
    {"PlaybackMode": "ON_DEMAND", "DASHFragmentSelector": producer_range(base + 6, base + 2)},
    {"PlaybackMode": "LIVE", "DisplayFragmentNumber": "SOMETIMES"},
    {"PlaybackMode": "LIVE", "MaxManifestFragmentResults": 5001},
):
    expect_client_error(dash, "InvalidArgumentException", dash.get_dash_streaming_session_url,
                        StreamName="dash", **kwargs)
expect_client_error(dash, "ResourceNotFoundException", dash.get_dash_streaming_session_url, StreamName="dash",
                    PlaybackMode="ON_DEMAND", DASHFragmentSelector=producer_range(base - 100, base - 50))
expect_client_error(dash, "ResourceNotFoundException", dash.get_dash_streaming_session_url, StreamName="nope",
                    PlaybackMode="ON_DEMAND", DASHFragmentSelector=producer_range(base, base + 10))
create_stream(kv, "dash-no-archive", retention=0)
expect_client_error(dash, "NoDataRetentionException", dash.get_dash_streaming_session_url,
                    StreamName="dash-no-archive", PlaybackMode="LIVE")

tmp.cleanup()
done()
