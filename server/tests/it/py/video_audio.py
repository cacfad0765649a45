"""A camera with a microphone: H.264 video and AAC audio in one MKV, put
with PutMedia. GetClip's MP4, HLS sessions over fragmented MP4 and over
MPEG-TS (AAC in ADTS), and DASH sessions (an audio AdaptationSet beside
the video's, since dash.js plays no muxed representation) all carry both
tracks: ffprobe finds the AAC stream with every frame put, ffmpeg decodes
them without an error, and the audio lasts as long as the video."""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

from common import done, video_client
from video_common import create_stream, http_get, make_camera_mkv, producer_range, put_media, watchdog

watchdog(120)
endpoint = sys.argv[1]
kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()
base = int(time.time()) - 600
SECONDS = 6
RATE = 48000

create_stream(kv, "cam")
put_url = kv.get_data_endpoint(StreamName="cam", APIName="PUT_MEDIA")["DataEndpoint"]
source = make_camera_mkv(os.path.join(tmp.name, "cam.mkv"), SECONDS, base, rate=RATE)
with open(source, "rb") as f:
    put = put_media(put_url, f.read(), name="cam")
assert put.acks("PERSISTED") and not put.acks("ERROR"), put.describe()


def streams(path_or_url):
    """Each stream ffprobe finds: (codec, frames decoded, duration)."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_type,codec_name,nb_read_frames,sample_rate,channels:format=duration",
         "-of", "json", path_or_url],
        capture_output=True, timeout=60,
    )
    assert result.returncode == 0, f"ffprobe {path_or_url}: {result.stderr.decode(errors='replace')}"
    probed = json.loads(result.stdout)
    return {s["codec_type"]: s for s in probed["streams"]}


def decodes_cleanly(path_or_url):
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path_or_url, "-f", "null", "-"],
        capture_output=True, timeout=60,
    )
    errors = result.stderr.decode(errors="replace").strip()
    assert result.returncode == 0 and not errors, f"decoding {path_or_url}: {errors}"


put_streams = streams(source)
put_audio_frames = int(put_streams["audio"]["nb_read_frames"])

# --- GetClip of the whole stream: both tracks, every frame.
clips_url = kv.get_data_endpoint(StreamName="cam", APIName="GET_CLIP")["DataEndpoint"]
clips = video_client("kinesis-video-archived-media", clips_url, read_timeout=30)
clip = clips.get_clip(StreamName="cam", ClipFragmentSelector=producer_range(base - 1, base + SECONDS + 1))
data = clip["Payload"].read()
path = os.path.join(tmp.name, "clip.mp4")
with open(path, "wb") as f:
    f.write(data)
found = streams(path)
assert set(found) == {"video", "audio"}, found
audio = found["audio"]
assert (audio["codec_name"], int(audio["sample_rate"]), audio["channels"]) == ("aac", RATE, 2), audio
assert int(found["video"]["nb_read_frames"]) == 30 * SECONDS, found["video"]
assert int(audio["nb_read_frames"]) == put_audio_frames, (audio, put_audio_frames)
decodes_cleanly(path)
# The audio's own timeline: as long as its frames, within a frame of the video.
result = subprocess.run(
    ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts_time",
     "-of", "csv=p=0", path],
    capture_output=True, timeout=60,
)
times = [float(t) for t in result.stdout.decode().split()]
assert len(times) == put_audio_frames, len(times)
# Back to back: one AAC frame (1024 samples) apart, within a millisecond
# (a fragment starts where the producer's millisecond timecode says).
steps = sorted({round(b - a, 6) for a, b in zip(times, times[1:])})
assert all(abs(step - 1024 / RATE) < 0.0011 for step in steps), steps
span = times[-1] - times[0] + 1024 / RATE
assert abs(span - SECONDS) < 0.05, f"the audio spans {span} s of a {SECONDS} s clip"

# --- HLS over fragmented MP4: the master playlist names both codecs, and
# a player's view has both streams.
hls_url = kv.get_data_endpoint(StreamName="cam", APIName="GET_HLS_STREAMING_SESSION_URL")["DataEndpoint"]
hls = video_client("kinesis-video-archived-media", hls_url, read_timeout=30)
url = hls.get_hls_streaming_session_url(
    StreamName="cam", PlaybackMode="ON_DEMAND",
    HLSFragmentSelector=producer_range(base - 1, base + SECONDS + 1))["HLSStreamingSessionURL"]
status, _, master = http_get(url)
assert status == 200 and 'CODECS="avc1.' in master.decode() and ',mp4a.40.2"' in master.decode(), master
found = streams(url)
assert set(found) == {"video", "audio"}, found
assert int(found["audio"]["nb_read_frames"]) == put_audio_frames, (found["audio"], put_audio_frames)
decodes_cleanly(url)

# --- MPEG-TS sessions: the AAC frames in ADTS on a stream of their own.
ts_url = hls.get_hls_streaming_session_url(
    StreamName="cam", PlaybackMode="ON_DEMAND", ContainerFormat="MPEG_TS",
    HLSFragmentSelector=producer_range(base - 1, base + SECONDS + 1))["HLSStreamingSessionURL"]
status, _, master = http_get(ts_url)
assert status == 200 and ',mp4a.40.2"' in master.decode(), master
found = streams(ts_url)
assert set(found) == {"video", "audio"}, found
assert (found["audio"]["codec_name"], int(found["audio"]["sample_rate"])) == ("aac", RATE), found["audio"]
assert int(found["audio"]["nb_read_frames"]) == put_audio_frames, (found["audio"], put_audio_frames)
assert int(found["video"]["nb_read_frames"]) == 30 * SECONDS, found["video"]
decodes_cleanly(ts_url)

# --- DASH: an audio AdaptationSet beside the video's, each its own
# init and media fragments.
dash_url = kv.get_data_endpoint(StreamName="cam", APIName="GET_DASH_STREAMING_SESSION_URL")["DataEndpoint"]
dash = video_client("kinesis-video-archived-media", dash_url, read_timeout=30)
mpd = dash.get_dash_streaming_session_url(
    StreamName="cam", PlaybackMode="ON_DEMAND",
    DASHFragmentSelector=producer_range(base - 1, base + SECONDS + 1))["DASHStreamingSessionURL"]
status, _, manifest = http_get(mpd)
assert status == 200 and 'contentType="audio"' in manifest.decode(), manifest
found = streams(mpd)
assert set(found) == {"video", "audio"}, found
assert int(found["video"]["nb_read_frames"]) == 30 * SECONDS, found["video"]
# Every AAC frame, counted on the audio alone: reading both, ffmpeg's DASH
# demuxer ends at the first representation's end, which drops the audio
# frame that starts after the last video frame.
result = subprocess.run(
    ["ffprobe", "-v", "error", "-select_streams", "a:0", "-count_frames", "-show_entries",
     "stream=nb_read_frames", "-of", "csv=p=0", mpd],
    capture_output=True, timeout=60,
)
assert int(result.stdout.split()[0]) == put_audio_frames, (result.stdout, put_audio_frames)
decodes_cleanly(mpd)
token = urllib.parse.parse_qs(urllib.parse.urlsplit(mpd).query)["SessionToken"][0]
status, _, init = http_get(urllib.parse.urljoin(mpd, f"getMP4InitFragment.mp4?SessionToken={token}"))
assert status == 200 and b"mp4a" not in init and b"avcC" in init, init[:64]
status, _, init = http_get(urllib.parse.urljoin(mpd, f"getMP4InitFragment.mp4?SessionToken={token}&TrackNumber=2"))
assert status == 200 and b"mp4a" in init and b"avcC" not in init, init[:64]
status, _, body = http_get(urllib.parse.urljoin(mpd, f"getMP4InitFragment.mp4?SessionToken={token}&TrackNumber=3"))
assert status == 400 and json.loads(body)["__type"] == "InvalidArgumentException", (status, body)

done()
