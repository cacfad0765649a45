"""HLS with ContainerFormat MPEG_TS over an H.264 stream put with PutMedia:
the playlists name getTSFragment.ts segments and no init segment; each
segment is a transport stream ffprobe reads as 2 s of H.264 that starts
where the one before ended; ffmpeg decodes the whole session from its
master playlist URL without an error, frame for frame what was put. LIVE
and LIVE_REPLAY sessions list TS segments too, a session's token opens
only its own container's segments, and H.265 plays as TS as well."""

import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

from common import done, video_client
from video_common import (
    check_acks, create_stream, make_mkv, producer_range, put_media, watchdog,
)
from video_common import http_get as fetch
from video_common import probe_media as probe

watchdog(180)
endpoint = sys.argv[1]
kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()
base = int(time.time()) - 600

# --- 10 s of 640x360 30 fps H.264: five fragments of 2 s, 60 frames each.
create_stream(kv, "ts")
put_url = kv.get_data_endpoint(StreamName="ts", APIName="PUT_MEDIA")["DataEndpoint"]
source = os.path.join(tmp.name, "ts.mkv")
data = make_mkv(source, 10, offset=base)
numbers = check_acks(put_media(put_url, data, name="ts"), [base * 1000 + 2000 * i for i in range(5)])
hls_url = kv.get_data_endpoint(StreamName="ts", APIName="GET_HLS_STREAMING_SESSION_URL")["DataEndpoint"]
hls = video_client("kinesis-video-archived-media", hls_url, read_timeout=30)


def playlist(url):
    status, content_type, body = fetch(url)
    assert status == 200, f"GET {url}: {status} {body[:500]!r}"
    assert content_type == "application/vnd.apple.mpegurl", f"GET {url}: Content-Type {content_type}"
    text = body.decode()
    assert text.startswith("#EXTM3U\n"), text
    return text


def uris(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def session(**kwargs):
    url = hls.get_hls_streaming_session_url(StreamName=kwargs.pop("stream", "ts"), ContainerFormat="MPEG_TS",
                                            **kwargs)["HLSStreamingSessionURL"]
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["SessionToken"][0]
    master = playlist(url)
    (media_uri,) = uris(master)
    return url, token, master, playlist(urllib.parse.urljoin(url, media_uri))


def check_ts_playlist(media, token):
    """No init segment, TS fragments of the session; their numbers."""
    assert "#EXT-X-MAP" not in media, media
    assert "#EXT-X-VERSION:3" in media.splitlines(), media
    listed = []
    for uri in uris(media):
        path, query = uri.split("?", 1)
        params = urllib.parse.parse_qs(query)
        assert path == "getTSFragment.ts" and params["SessionToken"] == [token], uri
        listed.append(params["FragmentNumber"][0])
    return listed


def packets(segment):
    """(pid, payload_unit_start) of each 188-byte packet."""
    assert len(segment) % 188 == 0, len(segment)
    out = []
    for at in range(0, len(segment), 188):
        assert segment[at] == 0x47, f"sync byte at {at}: {segment[at]:#x}"
        out.append((((segment[at + 1] & 0x1f) << 8) | segment[at + 2], bool(segment[at + 1] & 0x40)))
    return out


def first_pts(path):
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
         "-read_intervals", "%+#1", "-of", "csv=p=0", path], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return float(result.stdout.decode().split()[0].rstrip(","))


def frame_hashes(source_url):
    result = subprocess.run(["ffmpeg", "-v", "error", "-i", source_url, "-map", "0:v:0", "-f", "framemd5", "-"],
                            capture_output=True, timeout=120)
    assert result.returncode == 0 and not result.stderr, f"ffmpeg -i {source_url}: {result.stderr.decode(errors='replace')}"
    lines = [line for line in result.stdout.decode().splitlines() if line and not line.startswith("#")]
    return [line.split(",")[-1].strip() for line in lines]


# --- LIVE first: a LIVE session needs a fragment from the last 30 s.
_, live_token, _, live = session(PlaybackMode="LIVE", MaxMediaPlaylistFragmentResults=3)
assert check_ts_playlist(live, live_token) == numbers[-3:], live
assert "#EXT-X-ENDLIST" not in live, live
_, replay_token, _, replay = session(PlaybackMode="LIVE_REPLAY", HLSFragmentSelector=producer_range(base, base + 10))
assert check_ts_playlist(replay, replay_token) == numbers[:1], replay

# --- ON_DEMAND over the whole put.
url, token, master, media = session(PlaybackMode="ON_DEMAND", HLSFragmentSelector=producer_range(base, base + 10))
assert "#EXT-X-VERSION:3" in master.splitlines() and 'CODECS="avc1.4d40' in master, master
assert check_ts_playlist(media, token) == numbers, media
assert media.splitlines()[-1] == "#EXT-X-ENDLIST", media
extinf = [float(line[len("#EXTINF:"):].rstrip(",")) for line in media.splitlines() if line.startswith("#EXTINF:")]
assert len(extinf) == 5 and all(1.9 <= d <= 2.1 for d in extinf), extinf

starts = []
for i, uri in enumerate(uris(media)):
    status, content_type, segment = fetch(urllib.parse.urljoin(url, uri))
    assert (status, content_type) == (200, "video/mp2t"), (status, content_type, segment[:200])
    pids = packets(segment)
    # PAT, then PMT, then the video stream, which carries the PCR.
    assert pids[0] == (0, True) and pids[1] == (0x1000, True), pids[:3]
    assert {pid for pid, _ in pids} == {0, 0x1000, 0x100}, {pid for pid, _ in pids}
    assert sum(1 for pid, start in pids if pid == 0x100 and start) == 60, "a PES packet per frame"
    path = os.path.join(tmp.name, f"segment{i}.ts")
    with open(path, "wb") as f:
        f.write(segment)
    codec, width, height, frames, duration = probe(path)
    assert (codec, width, height, frames) == ("h264", 640, 360, 60), (i, codec, width, height, frames)
    assert duration is not None and abs(duration - 2) < 0.1, f"segment {i} lasts {duration}"
    starts.append(first_pts(path))
# Producer times: each segment starts 2 s after the one before (on the
# 33-bit, 90 kHz clock, which wraps every 2**33 / 90000 s).
steps = [round((b - a) % (2**33 / 90000), 3) for a, b in zip(starts, starts[1:])]
assert steps == [2.0] * 4, f"segment starts {starts}"

# A player's view: ffprobe and ffmpeg read the session from its master URL.
assert probe(url)[:4] == ("h264", 640, 360, 300), probe(url)
result = subprocess.run(["ffmpeg", "-v", "error", "-i", url, "-f", "null", "-"], capture_output=True, timeout=120)
assert result.returncode == 0 and not result.stderr, f"ffmpeg -i <hls ts>: {result.stderr.decode(errors='replace')}"
put_frames = frame_hashes(source)
assert len(put_frames) == 300, len(put_frames)
assert frame_hashes(url) == put_frames, "the session decodes to other frames than were put"

# --- A token opens only its own container's segments.
status, _, body = fetch(urllib.parse.urljoin(url, f"getMP4MediaFragment.mp4?FragmentNumber={numbers[0]}&SessionToken={token}"))
assert status == 400 and b"MPEG_TS" in body, (status, body)
status, _, body = fetch(urllib.parse.urljoin(url, f"getMP4InitFragment.mp4?SessionToken={token}"))
assert status == 400 and b"MPEG_TS" in body, (status, body)
mp4_url = hls.get_hls_streaming_session_url(
    StreamName="ts", PlaybackMode="ON_DEMAND", ContainerFormat="FRAGMENTED_MP4",
    HLSFragmentSelector=producer_range(base, base + 10))["HLSStreamingSessionURL"]
mp4_token = urllib.parse.parse_qs(urllib.parse.urlsplit(mp4_url).query)["SessionToken"][0]
status, _, body = fetch(urllib.parse.urljoin(mp4_url, f"getTSFragment.ts?FragmentNumber={numbers[0]}&SessionToken={mp4_token}"))
assert status == 400 and b"FRAGMENTED_MP4" in body, (status, body)
status, _, body = fetch(urllib.parse.urljoin(url, f"getTSFragment.ts?FragmentNumber={numbers[0]}&SessionToken={token[:-3]}AAA"))
assert status == 403 and b"NotAuthorizedException" in body, (status, body)
status, _, body = fetch(urllib.parse.urljoin(url, f"getTSFragment.ts?SessionToken={token}"))
assert status == 400 and b"FragmentNumber" in body, (status, body)

# --- H.265 plays as TS too, with its VPS, SPS and PPS before keyframes.
create_stream(kv, "ts-hevc")
hevc = os.path.join(tmp.name, "hevc.mkv")
result = subprocess.run(
    ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
     "-t", "4", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=60:min-keyint=60:bframes=0",
     "-f", "matroska", "-live", "1", "-cluster_time_limit", "2100", "-output_ts_offset", str(base), hevc],
    capture_output=True, timeout=60,
)
assert result.returncode == 0, result.stderr.decode(errors="replace")
with open(hevc, "rb") as f:
    put = put_media(put_url, f.read(), name="ts-hevc")
assert put.acks("PERSISTED") and not put.acks("ERROR"), put.describe()
hevc_url, hevc_token, _, hevc_media = session(stream="ts-hevc", PlaybackMode="ON_DEMAND",
                                              HLSFragmentSelector=producer_range(base - 1, base + 10))
assert check_ts_playlist(hevc_media, hevc_token), hevc_media
assert probe(hevc_url)[:4] == ("hevc", 320, 240, 120), probe(hevc_url)
result = subprocess.run(["ffmpeg", "-v", "error", "-i", hevc_url, "-f", "null", "-"], capture_output=True, timeout=120)
assert result.returncode == 0 and not result.stderr, f"ffmpeg -i <hevc ts>: {result.stderr.decode(errors='replace')}"
assert frame_hashes(hevc_url) == frame_hashes(hevc), "the H.265 session decodes to other frames than were put"

tmp.cleanup()
done()
