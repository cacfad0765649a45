"""hls.js and dash.js in headless Chromium (Debian's) play sessions, as a
web page of another origin would (`../js/play.mjs`): hls.js an ON_DEMAND
session over 10 s of put video, one over a camera with AAC audio
(Chromium must decode the audio too), then a LIVE one while a producer is
still putting, at its own pace; dash.js an ON_DEMAND DASH session over
the camera, its video and audio AdaptationSets both, and a LIVE DASH
session of the same producer. Chromium decodes the H.264 through MediaSource, so this is
the check that the init and media fragments are what a browser takes, not
only what ffmpeg forgives; and that the playback GETs carry the CORS
header, without which the browser hands hls.js nothing.

argv: endpoint, node_modules dir holding hls.js, dashjs and playwright-core."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from common import done, video_client
from console_common import kill_chromium_of
from video_common import (
    PutMedia, check_acks, create_stream, log, make_camera_mkv, make_mkv, parse_source, producer_range, put_media,
    watchdog,
)

watchdog(240)
endpoint, modules = sys.argv[1], sys.argv[2]
PLAYER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js", "play.mjs")
CHROMIUM = "/usr/bin/chromium"
for path, what in [
    (CHROMIUM, "Debian's chromium (make deps installs it)"),
    (os.path.join(modules, "hls.js", "dist", "hls.min.js"), "hls.js (make deps installs it)"),
    (os.path.join(modules, "dashjs", "dist", "modern", "umd", "dash.all.min.js"), "dashjs (make deps installs it)"),
    (os.path.join(modules, "playwright-core", "index.mjs"), "playwright-core (make deps installs it)"),
]:
    assert os.path.exists(path), f"{path} is missing: {what}"
assert shutil.which("node"), "node is missing (make deps installs it)"

kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()


def session_url(stream, **kwargs):
    url = kv.get_data_endpoint(StreamName=stream, APIName="GET_HLS_STREAMING_SESSION_URL")["DataEndpoint"]
    archive = video_client("kinesis-video-archived-media", url, read_timeout=30)
    return archive.get_hls_streaming_session_url(StreamName=stream, **kwargs)["HLSStreamingSessionURL"]


def dash_session_url(stream, **kwargs):
    url = kv.get_data_endpoint(StreamName=stream, APIName="GET_DASH_STREAMING_SESSION_URL")["DataEndpoint"]
    archive = video_client("kinesis-video-archived-media", url, read_timeout=30)
    return archive.get_dash_streaming_session_url(StreamName=stream, **kwargs)["DASHStreamingSessionURL"]


def cors_origin(url):
    """The Access-Control-Allow-Origin answered to a GET that says it
    comes from a page of another origin."""
    request = urllib.request.Request(url, headers={"Origin": "http://127.0.0.1:1"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return response.headers.get("Access-Control-Allow-Origin")


def play(url, mode, audio=False, player="hls"):
    """Runs `player` on a session URL; what the page reported. With
    `audio`, the page must have decoded audio too."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp.name)
    try:
        result = subprocess.run(
            ["node", PLAYER, player, modules, profile, url, mode, *(["audio"] if audio else [])],
            capture_output=True, timeout=120, text=True,
        )
        output = result.stdout + result.stderr
    except subprocess.TimeoutExpired as e:
        # TimeoutExpired keeps bytes even when the run asked for text.
        printed = [o.decode(errors="replace") if isinstance(o, bytes) else o or "" for o in (e.stdout, e.stderr)]
        output = "play.mjs ran over 120 s\n" + "".join(printed)
        result = None
    finally:
        left = kill_chromium_of(profile)
    log(output)
    assert result is not None and result.returncode == 0, f"{player} did not play the {mode} session:\n{output}"
    assert "ok: play.mjs" in result.stdout.splitlines(), output
    if left:
        log(f"killed {left} Chromium processes left by the player of the {mode} session")
    return json.loads(result.stdout.splitlines()[0])["report"]


# --- ON_DEMAND over 10 s put at once: five fragments of 2 s.
base = int(time.time()) - 600
create_stream(kv, "vod")
put_url = kv.get_data_endpoint(StreamName="vod", APIName="PUT_MEDIA")["DataEndpoint"]
data = make_mkv(os.path.join(tmp.name, "vod.mkv"), 10, offset=base)
check_acks(put_media(put_url, data, name="vod"), [base * 1000 + 2000 * i for i in range(5)])
url = session_url("vod", PlaybackMode="ON_DEMAND", HLSFragmentSelector=producer_range(base, base + 10))

# What a browser reads before it lets a page of another origin see an
# answer, on each kind of resource the player GETs.
master = urllib.request.urlopen(url, timeout=30).read().decode()
media_uri = next(line for line in master.splitlines() if line and not line.startswith("#"))
media_url = urllib.parse.urljoin(url, media_uri)
media = urllib.request.urlopen(media_url, timeout=30).read().decode()
init_uri = media.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
fragment_uri = next(line for line in media.splitlines() if line and not line.startswith("#"))
for resource in (url, media_url, urllib.parse.urljoin(url, init_uri), urllib.parse.urljoin(url, fragment_uri)):
    assert cors_origin(resource) == "*", f"no Access-Control-Allow-Origin: * on {resource}"

report = play(url, "ON_DEMAND")
assert abs(report["duration"] - 10) < 0.2, f"the browser sees {report['duration']} s of video, 10 were put"

# --- ON_DEMAND with AAC audio beside the video: Chromium decodes both.
create_stream(kv, "cam")
cam_url = kv.get_data_endpoint(StreamName="cam", APIName="PUT_MEDIA")["DataEndpoint"]
with open(make_camera_mkv(os.path.join(tmp.name, "cam.mkv"), 8, base, size="640x360"), "rb") as f:
    put = put_media(cam_url, f.read(), name="cam")
assert len(put.acks("PERSISTED")) == 4 and not put.acks("ERROR"), put.describe()
hls_report = play(session_url("cam", PlaybackMode="ON_DEMAND", HLSFragmentSelector=producer_range(base, base + 8)),
                  "ON_DEMAND", audio=True)
assert hls_report["audioBytes"] > 0, hls_report

# --- dash.js plays the same camera over DASH: the video AdaptationSet and
# the audio one, each its own init and media fragments.
report = play(dash_session_url("cam", PlaybackMode="ON_DEMAND", DASHFragmentSelector=producer_range(base, base + 8)),
              "ON_DEMAND", audio=True, player="dash")
assert report["tracks"] == ["video", "audio"] and report["audioBytes"] > 0, report
assert abs(report["duration"] - hls_report["duration"]) < 0.1, (
    f"dash.js sees {report['duration']} s, hls.js {hls_report['duration']} s of the same range")

# --- LIVE: a producer puts 30 s, each 2 s Cluster once its time has
# passed, as a camera would; the player joins after the first fragments.
create_stream(kv, "live")
start = int(time.time()) - 3
data = make_mkv(os.path.join(tmp.name, "live.mkv"), 60, offset=start)
source = parse_source(data)
put = PutMedia(put_url, {"x-amzn-stream-name": "live", "x-amzn-fragment-timecode-type": "ABSOLUTE",
                         "x-amzn-fragment-acknowledgment-required": "1"})
stop = threading.Event()


def produce():
    clock = time.monotonic()
    put.send(data[: source["first_cluster"]])
    for i, cluster in enumerate(source["clusters"]):
        if stop.wait(max(0.0, clock + 2 * i - time.monotonic())):
            return
        if not put.send(data[cluster["start"] : cluster["end"]]):
            return
    put.finish()


producer = threading.Thread(target=produce, daemon=True)
producer.start()
try:
    assert put.wait(lambda p: len(p.acks("PERSISTED")) >= 2, 20), f"LIVE producer: {put.describe()}"
    live_url = session_url("live", PlaybackMode="LIVE")
    play(live_url, "LIVE")
    # dash.js joins the same live stream through a DASH session.
    play(dash_session_url("live", PlaybackMode="LIVE"), "LIVE", player="dash")
    assert not put.acks("ERROR"), f"ERROR acks: {put.acks('ERROR')}"
finally:
    stop.set()
    producer.join(10)
    put.close()

done()
