"""What reaches the disk: video fragments put with PutMedia, and a
checkpointed job's state and savepoint holding marker strings, on a server
run with or without `streams.encryption_key` (`at_rest.rs` then reads the
column families). With a key the fragment bytes sent must not be found in
the segment files; without one they must, which is what makes the search
able to fail. Either way the video reads back whole.

argv: endpoint, data dir, "encrypted" or "plain"."""

import json
import os
import sys
import tempfile
import time

from common import client, done, runnel_api, video_client, wait_active
from video_common import create_stream, make_mkv, put_media, wait_for, watchdog

watchdog(180)
endpoint, data_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
encrypted = mode == "encrypted"
MARKER = "marker-plaintext"


# Video: windows of the bytes sent, looked for in every segment file.
kv = video_client("kinesisvideo")
create_stream(kv, "cam")
url = kv.get_data_endpoint(StreamName="cam", APIName="PUT_MEDIA")["DataEndpoint"]
tmp = tempfile.TemporaryDirectory()
source = make_mkv(os.path.join(tmp.name, "source.mkv"), 4, offset=int(time.time()) - 60)
put = put_media(url, source, name="cam")
assert len(put.acks("PERSISTED")) == 2, put.describe()
windows = [source[int(len(source) * f):int(len(source) * f) + 64] for f in (0.3, 0.5, 0.7, 0.9)]
stored = b""
for root, _, files in os.walk(os.path.join(data_dir, "video")):
    for name in files:
        with open(os.path.join(root, name), "rb") as f:
            stored += f.read()
assert len(stored) > len(source) // 2, (len(stored), len(source))
found = [w in stored for w in windows]
assert found == [not encrypted] * len(windows), (mode, found)
media_url = kv.get_data_endpoint(StreamName="cam", APIName="GET_MEDIA")["DataEndpoint"]
media = video_client("kinesis-video-media", media_url)
payload = media.get_media(StreamName="cam", StartSelector={"StartSelectorType": "EARLIEST"})["Payload"]
got = b""
deadline = time.time() + 30
while not all(w in got for w in windows) and time.time() < deadline:
    chunk = payload.read(65536)
    if not chunk:
        break
    got += chunk
payload.close()
assert all(w in got for w in windows), "GetMedia gives back the bytes sent"

# A checkpointed GROUP BY whose state holds the marker, and a savepoint.
kinesis = client()
kinesis.create_stream(StreamName="in", ShardCount=1)
wait_active(kinesis, "in")
now = int(time.time() * 1000)
kinesis.put_records(StreamName="in", Records=[
    {"Data": json.dumps({"name": f"{MARKER}-{i % 5}", "ts": now + i}).encode(), "PartitionKey": str(i)}
    for i in range(50)
])
sql = """
SET 'execution.checkpointing.interval' = '200 ms';
CREATE TABLE events (name STRING, ts BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'in', 'format' = 'json', 'source.init.position' = 'TRIM_HORIZON');
CREATE TABLE counts (name STRING, n BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO counts SELECT name, COUNT(*) FROM events GROUP BY name;
"""
status, job = runnel_api(endpoint, "POST", "/v1/jobs", {"sql": sql, "name": "marked"})
assert status == 201, job
job_id = job["id"]


def checkpointed_thrice():
    """Three checkpoints: the 50 records, read at once from the trim
    horizon, are in the state of the later ones."""
    status, described = runnel_api(endpoint, "GET", f"/v1/jobs/{job_id}")
    assert status == 200 and described["status"] not in ("FAILED", "FINISHED"), described
    return len(described.get("checkpoints", {}).get("completed") or []) >= 3


assert wait_for(checkpointed_thrice, 60, interval=0.2), "no three checkpoints within 60 s"
status, savepoint = runnel_api(endpoint, "POST", f"/v1/jobs/{job_id}/savepoints", {})
assert status in (200, 201), savepoint
print(json.dumps({"job": job_id, "savepoint": savepoint}))
done()
