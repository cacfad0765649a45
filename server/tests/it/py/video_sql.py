"""Video as a SQL source: jobs inside the server read a stream's fragments
and frames through the `kinesis-video` connector while ffmpeg's video is
put, and what they emit must agree with ListFragments and with the frames
ffmpeg wrote: one row per fragment with its size, frame counts and picture,
and a TUMBLE window of frames per two seconds. Then a camera filmed white,
grey and black: a window's AVG(mean_luma) must be the luma ffmpeg gave each,
from a job in the server and from `runnel sql run` reading it through the
API ('aws.endpoint').

argv: endpoint, the runnel binary."""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from common import client, done, read_shard, runnel_api, video_client, wait_active
from video_common import (
    check_acks, create_stream, list_fragments, make_mkv, parse_source, put_media, video_clients, watchdog,
)

watchdog(180)
ENDPOINT, RUNNEL = sys.argv[1], sys.argv[2]
kv = video_client("kinesisvideo", ENDPOINT)
create_stream(kv, "cam")


def http(method, path, body=None):
    return runnel_api(ENDPOINT, method, path, body)


def submit(sql, name):
    status, job = http("POST", "/v1/jobs", {"sql": sql, "name": name, "parallelism": 1})
    assert status == 201, (status, job)
    return job["id"]


def follow(job_id, rows, wanted):
    """Collects the job's result rows (server-sent events) until `wanted`."""
    with urllib.request.urlopen(ENDPOINT + f"/v1/jobs/{job_id}/results", timeout=60) as response:
        event = None
        for line in response:
            line = line.decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "row":
                rows.append(json.loads(line.split(":", 1)[1]))
                if len(rows) == wanted:
                    return


def epoch_ms(text):
    """A TIMESTAMP(3) as the results stream writes it, in epoch ms (UTC)."""
    parsed = datetime.datetime.fromisoformat(text.replace(" ", "T"))
    return round(parsed.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


# Refusals name what is wrong, at submit.
status, refused = http("POST", "/v1/jobs", {"sql": """
CREATE TABLE f (stream STRING, nope INT) WITH ('connector' = 'kinesis-video', 'stream' = 'cam');
SELECT * FROM f;"""})
assert status == 400 and "no column 'nope'" in json.dumps(refused), (status, refused)
status, refused = http("POST", "/v1/jobs", {"sql": """
CREATE TABLE f (bytes INT) WITH ('connector' = 'kinesis-video', 'stream' = 'cam');
SELECT * FROM f;"""})
assert status == 400 and "'bytes' is BIGINT" in json.dumps(refused), (status, refused)
status, refused = http("POST", "/v1/jobs", {"sql": """
CREATE TABLE f (bytes BIGINT) WITH ('connector' = 'kinesis-video', 'stream' = 'no-such-camera');
SELECT * FROM f;"""})
assert status == 400 and "no-such-camera" in json.dumps(refused), (status, refused)

fragments_job = submit("""
CREATE TABLE fragments (
    codec STRING, fragment_number STRING, stream STRING, producer_timestamp TIMESTAMP(3),
    bytes BIGINT, frames INT, keyframes INT, width INT, height INT, duration_ms BIGINT
) WITH ('connector' = 'kinesis-video', 'stream' = 'cam', 'table' = 'fragments');
SELECT stream, fragment_number, producer_timestamp, bytes, frames, keyframes, width, height, codec, duration_ms
FROM fragments;
""", "fragments")
windows_job = submit("""
CREATE TABLE frames (ts TIMESTAMP(3), keyframe BOOLEAN, bytes INT, WATERMARK FOR ts AS ts)
WITH ('connector' = 'kinesis-video', 'stream' = 'cam', 'table' = 'frames');
CREATE TABLE frames_with_payload (ts TIMESTAMP(3), payload BYTES, bytes INT, WATERMARK FOR ts AS ts)
WITH ('connector' = 'kinesis-video', 'stream' = 'cam', 'table' = 'frames');
-- Without `payload` the frames come from the index; with it, from the
-- video itself: both must give the same frames.
-- (Both sides name a column frame_bytes: each keeps its own value.)
SELECT f.window_start, f.frames, f.keyframes, f.frame_bytes, p.with_payload, p.frame_bytes
FROM (SELECT window_start, window_end, COUNT(*) AS frames,
             SUM(CASE WHEN keyframe THEN 1 ELSE 0 END) AS keyframes, SUM(CAST(bytes AS BIGINT)) AS frame_bytes
      FROM TABLE(TUMBLE(TABLE frames, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY window_start, window_end) f
JOIN (SELECT window_start, window_end, SUM(CASE WHEN payload IS NOT NULL THEN 1 ELSE 0 END) AS with_payload,
             SUM(CAST(bytes AS BIGINT)) AS frame_bytes
      FROM TABLE(TUMBLE(TABLE frames_with_payload, DESCRIPTOR(ts), INTERVAL '2' SECOND))
      GROUP BY window_start, window_end) p
ON f.window_start = p.window_start AND f.window_end = p.window_end;
""", "windows")

fragment_rows, window_rows = [], []
followers = [
    threading.Thread(target=follow, args=(fragments_job, fragment_rows, 5), daemon=True),
    # The last window closes only when a later frame moves the watermark.
    threading.Thread(target=follow, args=(windows_job, window_rows, 4), daemon=True),
]
for follower in followers:
    follower.start()
time.sleep(0.5)  # rows before a follower connects are not replayed

base = int(time.time()) - 600
base -= base % 2  # fragments start on window boundaries
with tempfile.TemporaryDirectory() as tmp:
    data = make_mkv(os.path.join(tmp, "cam.mkv"), 10, offset=base)
source = parse_source(data)
put = put_media(ENDPOINT, data, name="cam")
numbers = check_acks(put, [c["timecode"] for c in source["clusters"]])
for follower in followers:
    follower.join(timeout=60)

_, archive = video_clients(ENDPOINT, "cam")
listed, _ = list_fragments(archive, "cam")
listed = {f["FragmentNumber"]: f for f in listed}
assert len(fragment_rows) == 5, fragment_rows
for i, row in enumerate(fragment_rows):
    assert row["op"] == "+I", row
    stream, number, producer, size, frames, keyframes, width, height, codec, duration = row["row"]
    assert (stream, number) == ("cam", numbers[i]), (row, numbers)
    assert epoch_ms(producer) == (base + 2 * i) * 1000, (producer, base + 2 * i)
    assert size == listed[number]["FragmentSizeInBytes"], (row, listed[number])
    assert duration == listed[number]["FragmentLengthInMilliseconds"], (row, listed[number])
    cluster = source["clusters"][i]
    assert (frames, keyframes) == (len(cluster["frames"]), 1), row
    assert (width, height, codec) == (640, 360, "V_MPEG4/ISO/AVC"), row

assert len(window_rows) == 4, window_rows
for i, row in enumerate(window_rows):
    start, frames, keyframes, frame_bytes, with_payload, payload_bytes = row["row"]
    cluster = source["clusters"][i]
    assert epoch_ms(start) == (base + 2 * i) * 1000, (row, base + 2 * i)
    assert (frames, keyframes, with_payload) == (60, 1, 60), row
    assert frame_bytes == payload_bytes == sum(len(f) for f in cluster["frames"]), (row, sum(len(f) for f in cluster["frames"]))



# ------------------------------------------------------------- checkpoints

# A checkpointed job over the fragments, stopped at a savepoint after the
# five above and started again from it once five more are in: its
# exactly-once kinesis output names each of the ten fragments once.
kinesis = client(ENDPOINT)
kinesis.create_stream(StreamName="fragment_log", ShardCount=1)
wait_active(kinesis, "fragment_log")
CHECKPOINTED = """
SET 'execution.checkpointing.interval' = '100 ms';
CREATE TABLE fragments (fragment_number STRING, bytes BIGINT)
WITH ('connector' = 'kinesis-video', 'stream' = 'cam', 'table' = 'fragments');
CREATE TABLE fragment_log (fragment_number STRING, bytes BIGINT)
WITH ('connector' = 'kinesis', 'stream' = 'fragment_log', 'format' = 'json');
INSERT INTO fragment_log SELECT fragment_number, bytes FROM fragments;
"""


def logged_fragments():
    iterator = kinesis.get_shard_iterator(
        StreamName="fragment_log", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]
    records, _ = read_shard(kinesis, iterator)
    return [json.loads(r["Data"])["fragment_number"] for r in records]


def wait_logged(count):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        logged = logged_fragments()
        if len(logged) >= count:
            time.sleep(0.5)  # a duplicate written late would show
            return logged_fragments()
        time.sleep(0.1)
    raise AssertionError(f"{len(logged_fragments())} of {count} fragments logged")


first_log = submit(CHECKPOINTED, "fragment-log")
assert wait_logged(5) == numbers, (logged_fragments(), numbers)
status, stopped = http("POST", f"/v1/jobs/{first_log}/stop", {"savepoint": "cam-half"})
assert status == 202 and stopped["savepoint"]["name"] == "cam-half", (status, stopped)
deadline = time.monotonic() + 30
while http("GET", f"/v1/jobs/{first_log}")[1]["status"] != "STOPPED":
    assert time.monotonic() < deadline, "the job did not stop at its savepoint"
    time.sleep(0.05)
with tempfile.TemporaryDirectory() as later_tmp:
    later = make_mkv(os.path.join(later_tmp, "later.mkv"), 10, offset=base + 10)
later_numbers = check_acks(put_media(ENDPOINT, later, name="cam"),
                           [c["timecode"] for c in parse_source(later)["clusters"]])
status, second = http("POST", "/v1/jobs", {"sql": CHECKPOINTED, "name": "fragment-log-2",
                                           "parallelism": 1, "from_savepoint": "cam-half"})
assert status == 201, (status, second)
assert wait_logged(10) == numbers + later_numbers, (logged_fragments(), numbers, later_numbers)
http("POST", f"/v1/jobs/{second['id']}/stop")


# ---------------------------------------------------------------- mean luma

# Full-range white, RGB 128 grey and black become, in the limited (video)
# range yuv420p that x264 is given, Y = 235, 16 + 219 * 128 / 255 = 125.9
# and 16 (ffmpeg's signalstats reads 235, 126 and 16 back). Four seconds
# of each, black for six so that a frame after the black window moves the
# watermark past it; a keyframe every two seconds.
LUMAS = [235.0, 125.9, 16.0]
# x264 codes a flat picture within a level or two of its value; three
# levels leave room for that and for rounding, and are far from any other
# colour's mean.
TOLERANCE = 3.0


def make_lit_mkv(path, offset):
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
        "color=c=white:s=320x240:r=30:d=4[a];color=c=0x808080:s=320x240:r=30:d=4[b];"
        "color=c=black:s=320x240:r=30:d=6[c];[a][b][c]concat=n=3:v=1:a=0",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-profile:v", "main", "-pix_fmt", "yuv420p",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0",
        "-f", "matroska", "-live", "1",
        "-cluster_time_limit", "2100", "-cluster_size_limit", "50000000",
        "-output_ts_offset", str(offset), path,
    ]
    result = subprocess.run(command, capture_output=True, timeout=120)
    assert result.returncode == 0, f"ffmpeg failed: {result.stderr.decode(errors='replace')}"
    with open(path, "rb") as f:
        return f.read()


def check_luma_windows(rows, lit_base):
    """rows: (window start in epoch ms, AVG(mean_luma), COUNT(mean_luma),
    keyframes, frames) per 4 s window."""
    assert len(rows) == len(LUMAS), rows
    for i, (start_ms, luma, with_luma, keyframes, frames) in enumerate(rows):
        assert start_ms == (lit_base + 4 * i) * 1000, (rows[i], lit_base + 4 * i)
        # Only keyframes have a mean luma, and each of them decodes.
        assert (with_luma, keyframes, frames) == (2, 2, 120), rows[i]
        assert abs(luma - LUMAS[i]) <= TOLERANCE, (rows[i], LUMAS[i])


create_stream(kv, "lit-cam")
status, refused = http("POST", "/v1/jobs", {"sql": """
CREATE TABLE f (mean_luma DOUBLE) WITH ('connector' = 'kinesis-video', 'stream' = 'lit-cam');
SELECT * FROM f;"""})
assert status == 400 and "no column 'mean_luma'" in json.dumps(refused), (status, refused)
luma_job = submit("""
CREATE TABLE lit (ts TIMESTAMP(3), keyframe BOOLEAN, mean_luma DOUBLE, WATERMARK FOR ts AS ts)
WITH ('connector' = 'kinesis-video', 'stream' = 'lit-cam', 'table' = 'frames');
SELECT window_start, AVG(mean_luma), COUNT(mean_luma), SUM(CASE WHEN keyframe THEN 1 ELSE 0 END), COUNT(*)
FROM TABLE(TUMBLE(TABLE lit, DESCRIPTOR(ts), INTERVAL '4' SECOND)) GROUP BY window_start, window_end;
""", "luma")
luma_rows = []
follower = threading.Thread(target=follow, args=(luma_job, luma_rows, len(LUMAS)), daemon=True)
follower.start()
time.sleep(0.5)

lit_base = int(time.time()) - 600
lit_base -= lit_base % 4
tmp = tempfile.TemporaryDirectory()
lit = make_lit_mkv(os.path.join(tmp.name, "lit.mkv"), lit_base)
lit_source = parse_source(lit)
check_acks(put_media(ENDPOINT, lit, name="lit-cam"), [c["timecode"] for c in lit_source["clusters"]])
follower.join(timeout=60)
assert all(row["op"] == "+I" for row in luma_rows), luma_rows
check_luma_windows([(epoch_ms(r["row"][0]), *r["row"][1:]) for r in luma_rows], lit_base)

# The same through the API: GetMediaForFragmentList's documents carry their
# Tracks, so an embedded job decodes keyframes as the server's does.
script = os.path.join(tmp.name, "far.sql")
with open(script, "w") as f:
    f.write(f"""
CREATE TABLE lit (ts TIMESTAMP(3), keyframe BOOLEAN, mean_luma DOUBLE, WATERMARK FOR ts AS ts)
WITH ('connector' = 'kinesis-video', 'stream' = 'lit-cam', 'table' = 'frames', 'aws.endpoint' = '{ENDPOINT}');
SELECT 'window', CAST(window_start AS STRING), AVG(mean_luma), COUNT(mean_luma),
       SUM(CASE WHEN keyframe THEN 1 ELSE 0 END), COUNT(*)
FROM TABLE(TUMBLE(TABLE lit, DESCRIPTOR(ts), INTERVAL '4' SECOND)) GROUP BY window_start, window_end;
""")
far = subprocess.Popen([RUNNEL, "sql", "run", "--quiet", "--file", script],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
far_rows = []


def read_far_rows():
    for line in far.stdout:
        line = line.rstrip("\n")
        if line.startswith("+I[window, "):
            start, luma, with_luma, keyframes, frames = line[len("+I[window, "):-1].split(", ")
            far_rows.append((epoch_ms(start), float(luma), int(with_luma), int(keyframes), int(frames)))


far_reader = threading.Thread(target=read_far_rows, daemon=True)
far_reader.start()
deadline = time.monotonic() + 60
while len(far_rows) < len(LUMAS) and time.monotonic() < deadline and far.poll() is None:
    time.sleep(0.1)
far.kill()
_, far_stderr = far.communicate(timeout=30)
assert len(far_rows) == len(LUMAS), (far_rows, far_stderr[-2000:])
check_luma_windows(far_rows, lit_base)
tmp.cleanup()

for job in (fragments_job, windows_job, luma_job):
    http("POST", f"/v1/jobs/{job}/stop")
done()
