"""`kinesis-video` from another endpoint: `runnel sql run`, embedded, reads
a server's video stream through its API ('aws.endpoint': GetDataEndpoint,
ListFragments, GetMediaForFragmentList) while ffmpeg's video is there,
and prints a row per fragment and a TUMBLE window of frames per 2 s that
must match what was put.

argv: endpoint, the runnel binary."""

import os
import subprocess
import sys
import tempfile
import threading
import time

from common import done, video_client
from video_common import check_acks, create_stream, make_mkv, parse_source, put_media, watchdog

watchdog(150)
ENDPOINT, RUNNEL = sys.argv[1], sys.argv[2]
kv = video_client("kinesisvideo", ENDPOINT)
create_stream(kv, "far-cam")
base = int(time.time()) - 600
base -= base % 2
tmp = tempfile.TemporaryDirectory()
data = make_mkv(os.path.join(tmp.name, "cam.mkv"), 10, offset=base)
source = parse_source(data)
numbers = check_acks(put_media(ENDPOINT, data, name="far-cam"), [c["timecode"] for c in source["clusters"]])

script = os.path.join(tmp.name, "far.sql")
with open(script, "w") as f:
    f.write(f"""
CREATE TABLE fragments (fragment_number STRING, frames INT, keyframes INT, width INT, height INT, codec STRING, bytes BIGINT)
WITH ('connector' = 'kinesis-video', 'stream' = 'far-cam', 'aws.endpoint' = '{ENDPOINT}');
CREATE TABLE frames (ts TIMESTAMP(3), keyframe BOOLEAN, WATERMARK FOR ts AS ts)
WITH ('connector' = 'kinesis-video', 'stream' = 'far-cam', 'table' = 'frames', 'aws.endpoint' = '{ENDPOINT}');
SELECT 'fragment', fragment_number, frames, keyframes, width, height, codec, bytes FROM fragments;
SELECT 'window', CAST(window_start AS STRING), COUNT(*), SUM(CASE WHEN keyframe THEN 1 ELSE 0 END)
FROM TABLE(TUMBLE(TABLE frames, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY window_start, window_end;
""")

job = subprocess.Popen([RUNNEL, "sql", "run", "--quiet", "--file", script],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
fragment_rows, window_rows = [], []


def read_rows():
    for line in job.stdout:
        line = line.rstrip("\n")
        if line.startswith("+I[fragment, "):
            fragment_rows.append(line[len("+I[fragment, "):-1].split(", "))
        elif line.startswith("+I[window, "):
            window_rows.append(line[len("+I[window, "):-1].split(", "))


reader = threading.Thread(target=read_rows, daemon=True)
reader.start()
deadline = time.monotonic() + 90
while (len(fragment_rows) < 5 or len(window_rows) < 4) and time.monotonic() < deadline and job.poll() is None:
    time.sleep(0.1)
job.kill()
_, stderr = job.communicate(timeout=30)
assert len(fragment_rows) == 5 and len(window_rows) == 4, (fragment_rows, window_rows, stderr[-2000:])

for i, (number, frames, keyframes, width, height, codec, size) in enumerate(fragment_rows):
    assert number == numbers[i], (number, numbers)
    assert (int(frames), int(keyframes), int(width), int(height), codec) == (60, 1, 640, 360, "V_MPEG4/ISO/AVC"), fragment_rows[i]
    assert int(size) > sum(len(f) for f in source["clusters"][i]["frames"]), (size, i)
for i, (start, frames, keyframes) in enumerate(window_rows):
    expected = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(base + 2 * i))
    assert start.startswith(expected), (start, expected)
    assert (int(frames), int(keyframes)) == (60, 1), window_rows[i]
tmp.cleanup()
done()
