"""GetClip and HLS over an H.264 stream put with PutMedia: the clip is one
fragmented MP4 file that ffprobe plays frame for frame; an HLS session's
master and media playlists are checked line by line, then ffprobe and
ffmpeg play the session from its master playlist URL, as a player would.
LIVE sessions list the newest fragments, a tampered token opens nothing.
H.265 passes through as well; another codec, or a stream that keeps no
media, is refused with Kinesis Video's exceptions."""

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime, timezone

from common import done, video_client
from video_common import (
    check_acks, create_stream, expect_client_error, make_mkv, producer_range, put_media, server_range,
    watchdog,
)
from video_common import http_get as fetch
from video_common import probe_media as probe

watchdog(120)
endpoint = sys.argv[1]
kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()
# Producer time in the past (whole seconds): no fragment is from the future.
base = int(time.time()) - 600

# --- 10 s of 640x360 30 fps H.264: five fragments of 2 s, 60 frames each.
create_stream(kv, "play")
put_url = kv.get_data_endpoint(StreamName="play", APIName="PUT_MEDIA")["DataEndpoint"]
data = make_mkv(os.path.join(tmp.name, "play.mkv"), 10, offset=base)
t0 = time.time()
numbers = check_acks(put_media(put_url, data, name="play"), [base * 1000 + 2000 * i for i in range(5)])
t1 = time.time()


def archive_client(api_name):
    url = kv.get_data_endpoint(StreamName="play", APIName=api_name)["DataEndpoint"]
    return video_client("kinesis-video-archived-media", url, read_timeout=30)


def playlist(url):
    status, content_type, body = fetch(url)
    assert status == 200, f"GET {url}: {status} {body[:500]!r}"
    assert content_type == "application/vnd.apple.mpegurl", f"GET {url}: Content-Type {content_type}"
    text = body.decode()
    assert text.startswith("#EXTM3U\n"), text
    return text


def uris(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def media_playlist_of(master_url):
    """The master playlist's text and its media playlist's text."""
    master = playlist(master_url)
    (media_uri,) = uris(master)
    return master, playlist(urllib.parse.urljoin(master_url, media_uri))


def listed_numbers(media):
    return [urllib.parse.parse_qs(urllib.parse.urlsplit(u).query)["FragmentNumber"][0] for u in uris(media)]


# --- HLS LIVE, first: a LIVE session needs a fragment from the last 30 s.
hls = archive_client("GET_HLS_STREAMING_SESSION_URL")
live_url = hls.get_hls_streaming_session_url(
    StreamName="play", PlaybackMode="LIVE", MaxMediaPlaylistFragmentResults=3)["HLSStreamingSessionURL"]
assert live_url.startswith(endpoint.rstrip("/") + "/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken="), live_url
_, live = media_playlist_of(live_url)
assert listed_numbers(live) == numbers[-3:], f"LIVE listed {listed_numbers(live)}, newest three are {numbers[-3:]}"
assert "#EXT-X-ENDLIST" not in live and "#EXT-X-PLAYLIST-TYPE" not in live, live
assert re.search(r"^#EXT-X-MEDIA-SEQUENCE:\d+$", live, re.M), live
# Server timestamps by default: a discontinuity between every two fragments.
assert live.count("#EXT-X-DISCONTINUITY\n") == 2, live

# LIVE_REPLAY from the first fragment: the replay has only reached it.
replay_url = hls.get_hls_streaming_session_url(
    StreamName="play", PlaybackMode="LIVE_REPLAY",
    HLSFragmentSelector=producer_range(base, base + 10))["HLSStreamingSessionURL"]
_, replay = media_playlist_of(replay_url)
assert listed_numbers(replay) == numbers[:1], f"LIVE_REPLAY listed {listed_numbers(replay)}"
assert "#EXT-X-ENDLIST" not in replay, replay

# --- GetClip: fragments 1-3 (starting at base+2, +4, +6 s): 6 s, 180 frames.
clips = archive_client("GET_CLIP")
out = clips.get_clip(StreamName="play", ClipFragmentSelector=producer_range(base + 2, base + 6))
assert out["ContentType"] == "video/mp4", out["ContentType"]
clip = out["Payload"].read()
assert clip[4:8] == b"ftyp" and clip.count(b"moof") >= 3, clip[:64]
path = os.path.join(tmp.name, "clip.mp4")
with open(path, "wb") as f:
    f.write(clip)
codec, width, height, frames, duration = probe(path)
assert (codec, width, height, frames) == ("h264", 640, 360, 180), (codec, width, height, frames)
assert duration is not None and abs(duration - 6) < 0.2, f"clip duration {duration}"
# By server time, the whole put.
out = clips.get_clip(StreamName="play", ClipFragmentSelector=server_range(t0 - 5, t1 + 5))
with open(path, "wb") as f:
    f.write(out["Payload"].read())
assert probe(path)[:4] == ("h264", 640, 360, 300), probe(path)

expect_client_error(clips, "ResourceNotFoundException", clips.get_clip, StreamName="play",
                    ClipFragmentSelector=producer_range(base - 100, base - 50))
expect_client_error(clips, "ResourceNotFoundException", clips.get_clip, StreamName="nope",
                    ClipFragmentSelector=producer_range(base, base + 10))
expect_client_error(clips, "InvalidArgumentException", clips.get_clip, StreamName="play",
                    ClipFragmentSelector=producer_range(base + 6, base + 2))

# --- HLS ON_DEMAND over the whole put, with producer timestamps shown.
url = hls.get_hls_streaming_session_url(
    StreamName="play", PlaybackMode="ON_DEMAND", HLSFragmentSelector=producer_range(base, base + 10),
    DisplayFragmentTimestamp="ALWAYS", Expires=600)["HLSStreamingSessionURL"]
master, media = media_playlist_of(url)
lines = master.splitlines()
(stream_inf,) = [line for line in lines if line.startswith("#EXT-X-STREAM-INF:")]
assert re.search(r'CODECS="avc1\.4d40[0-9a-f]{2}"', stream_inf), stream_inf
assert "RESOLUTION=640x360" in stream_inf, stream_inf
bandwidth = int(re.search(r"BANDWIDTH=(\d+)", stream_inf).group(1))
assert 100_000 < bandwidth < 50_000_000, stream_inf
token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["SessionToken"][0]
assert uris(master) == [f"getHLSMediaPlaylist.m3u8?SessionToken={token}"], master

media_lines = media.splitlines()
assert "#EXT-X-VERSION:7" in media_lines, media
assert "#EXT-X-MEDIA-SEQUENCE:0" in media_lines and "#EXT-X-PLAYLIST-TYPE:VOD" in media_lines, media
assert media_lines[-1] == "#EXT-X-ENDLIST", media
target = int(next(line for line in media_lines if line.startswith("#EXT-X-TARGETDURATION:")).split(":")[1])
assert target in (2, 3), media
(map_line,) = [line for line in media_lines if line.startswith("#EXT-X-MAP:")]
assert map_line == f'#EXT-X-MAP:URI="getMP4InitFragment.mp4?SessionToken={token}"', map_line
extinf = [float(line[len("#EXTINF:"):].rstrip(",")) for line in media_lines if line.startswith("#EXTINF:")]
assert len(extinf) == 5 and all(1.9 <= d <= 2.1 for d in extinf), extinf
assert listed_numbers(media) == numbers, f"ON_DEMAND listed {listed_numbers(media)}, put {numbers}"
assert "#EXT-X-DISCONTINUITY" not in media, "producer timestamps: no discontinuities by default"
dates = [line.split(":", 1)[1] for line in media_lines if line.startswith("#EXT-X-PROGRAM-DATE-TIME:")]
expected = [datetime.fromtimestamp(base + 2 * i, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z") for i in range(5)]
assert dates == expected, f"PROGRAM-DATE-TIME {dates}, expected {expected}"

status, content_type, init = fetch(urllib.parse.urljoin(url, f"getMP4InitFragment.mp4?SessionToken={token}"))
assert (status, content_type) == (200, "video/mp4") and init[4:8] == b"ftyp" and b"avcC" in init, (status, content_type, init[:64])
status, content_type, segment = fetch(urllib.parse.urljoin(url, uris(media)[2]))
assert (status, content_type) == (200, "video/mp4") and segment[4:8] == b"moof" and b"mdat" in segment, (status, content_type, segment[:64])

# A player's view: ffprobe and ffmpeg read the session from its master URL.
assert probe(url)[:4] == ("h264", 640, 360, 300), probe(url)
copy = os.path.join(tmp.name, "hls.mp4")
result = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", url, "-c", "copy", copy], capture_output=True, timeout=60)
assert result.returncode == 0, f"ffmpeg -i <hls> -c copy: {result.stderr.decode(errors='replace')}"
assert probe(copy)[:4] == ("h264", 640, 360, 300), probe(copy)

# --- Tokens: tampered, missing.
tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
for path_name in ("getHLSMasterPlaylist.m3u8", "getHLSMediaPlaylist.m3u8", "getMP4InitFragment.mp4"):
    status, _, body = fetch(urllib.parse.urljoin(url, f"{path_name}?SessionToken={tampered}"))
    assert status == 403 and b"NotAuthorizedException" in body, (path_name, status, body)
status, _, body = fetch(urllib.parse.urljoin(url, "getHLSMasterPlaylist.m3u8"))
assert status == 400 and b"SessionToken" in body, (status, body)
# A fragment of the stream outside the session's range.
narrow = hls.get_hls_streaming_session_url(
    StreamName="play", PlaybackMode="ON_DEMAND",
    HLSFragmentSelector=producer_range(base, base + 1))["HLSStreamingSessionURL"]
narrow_token = urllib.parse.parse_qs(urllib.parse.urlsplit(narrow).query)["SessionToken"][0]
status, _, body = fetch(urllib.parse.urljoin(
    narrow, f"getMP4MediaFragment.mp4?FragmentNumber={numbers[3]}&SessionToken={narrow_token}"))
assert status == 404 and b"ResourceNotFoundException" in body, (status, body)

# --- Session errors.
expect_client_error(hls, "ResourceNotFoundException", hls.get_hls_streaming_session_url, StreamName="play",
                    PlaybackMode="ON_DEMAND", HLSFragmentSelector=producer_range(base - 100, base - 50))
# MPEG_TS sessions are video_hls_ts.py's; other containers do not exist.
message = expect_client_error(hls, "InvalidArgumentException", hls.get_hls_streaming_session_url,
                              StreamName="play", PlaybackMode="ON_DEMAND", ContainerFormat="MPEG_2",
                              HLSFragmentSelector=producer_range(base, base + 10))
assert "FRAGMENTED_MP4, MPEG_TS" in message, message
expect_client_error(hls, "InvalidArgumentException", hls.get_hls_streaming_session_url,
                    StreamName="play", PlaybackMode="ON_DEMAND")
expect_client_error(hls, "InvalidArgumentException", hls.get_hls_streaming_session_url,
                    StreamName="play", PlaybackMode="LIVE", HLSFragmentSelector=producer_range(base, base + 10))

# --- H.265 passes through as hvc1 with its hvcC.
create_stream(kv, "hevc")
hevc = os.path.join(tmp.name, "hevc.mkv")
result = subprocess.run(
    ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
     "-t", "4", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=60:min-keyint=60:bframes=0",
     "-f", "matroska", "-live", "1", "-cluster_time_limit", "2100", "-output_ts_offset", str(base), hevc],
    capture_output=True, timeout=60,
)
assert result.returncode == 0, result.stderr.decode(errors="replace")
with open(hevc, "rb") as f:
    put = put_media(put_url, f.read(), name="hevc")
assert put.acks("PERSISTED") and not put.acks("ERROR"), put.describe()
out = clips.get_clip(StreamName="hevc", ClipFragmentSelector=producer_range(base - 1, base + 10))
path = os.path.join(tmp.name, "hevc.mp4")
with open(path, "wb") as f:
    f.write(out["Payload"].read())
assert probe(path)[:4] == ("hevc", 320, 240, 120), probe(path)
hevc_url = hls.get_hls_streaming_session_url(
    StreamName="hevc", PlaybackMode="ON_DEMAND",
    HLSFragmentSelector=producer_range(base - 1, base + 10))["HLSStreamingSessionURL"]
hevc_master, _ = media_playlist_of(hevc_url)
assert re.search(r'CODECS="hvc1\.1\.6\.L\d+\.[0-9A-F.]+"', hevc_master), hevc_master
assert probe(hevc_url)[:4] == ("hevc", 320, 240, 120), probe(hevc_url)

# --- Streams MP4 playback refuses: another codec, no retention.
create_stream(kv, "mpeg4")
mpeg4 = os.path.join(tmp.name, "mpeg4.mkv")
result = subprocess.run(
    ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
     "-t", "2", "-c:v", "mpeg4", "-f", "matroska", "-live", "1", "-output_ts_offset", str(base), mpeg4],
    capture_output=True, timeout=60,
)
assert result.returncode == 0, result.stderr.decode(errors="replace")
with open(mpeg4, "rb") as f:
    put = put_media(put_url, f.read(), name="mpeg4")
assert put.acks("PERSISTED") and not put.acks("ERROR"), put.describe()
for call, kwargs in (
    (clips.get_clip, {"ClipFragmentSelector": producer_range(base - 1, base + 10)}),
    (hls.get_hls_streaming_session_url,
     {"PlaybackMode": "ON_DEMAND", "HLSFragmentSelector": producer_range(base - 1, base + 10)}),
):
    message = expect_client_error(clips, "UnsupportedStreamMediaTypeException", call, StreamName="mpeg4", **kwargs)
    assert "V_MPEG4/ISO/ASP" in message, message
create_stream(kv, "no-archive", retention=0)
expect_client_error(clips, "NoDataRetentionException", clips.get_clip, StreamName="no-archive",
                    ClipFragmentSelector=producer_range(base, base + 10))

tmp.cleanup()
done()
