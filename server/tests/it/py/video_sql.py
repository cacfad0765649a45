"""Video as a SQL source: jobs inside the server read a stream's fragments
and frames through the `kinesis-video` connector while ffmpeg's video is
put, and what they emit must agree with ListFragments and with the frames
ffmpeg wrote: one row per fragment with its size, frame counts and picture,
and a TUMBLE window of frames per two seconds.

argv: endpoint."""

import datetime
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from common import done, runnel_api, video_client
from video_common import (
    check_acks, create_stream, list_fragments, make_mkv, parse_source, put_media, video_clients, watchdog,
)

watchdog(120)
ENDPOINT = sys.argv[1]
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

for job in (fragments_job, windows_job):
    http("POST", f"/v1/jobs/{job}/stop")
done()
