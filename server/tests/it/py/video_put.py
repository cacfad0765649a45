"""The first half of the kill -9 test: creates a stream and puts 20 s of
video at a producer's pace, writing each PERSISTED acknowledgement to a
file the moment it arrives, while the Rust side waits for a few and then
kills the server. Ends quietly when the server is gone.

argv: endpoint, stream name, a directory for source.mkv and persisted.jsonl."""

import json
import os
import sys
import time

from common import done, video_client
from video_common import PutMedia, check_numbers, create_stream, make_mkv, parse_source, watchdog

watchdog(90)
endpoint, stream, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
kv = video_client("kinesisvideo")
create_stream(kv, stream)
url = kv.get_data_endpoint(StreamName=stream, APIName="PUT_MEDIA")["DataEndpoint"]
base = int(time.time()) - 1200
data = make_mkv(os.path.join(out_dir, "source.mkv"), 20, offset=base)
source = parse_source(data)
clusters = source["clusters"]

put = PutMedia(url, {"x-amzn-stream-name": stream, "x-amzn-fragment-timecode-type": "ABSOLUTE",
                     "x-amzn-fragment-acknowledgment-required": "1"})
written = 0
with open(os.path.join(out_dir, "persisted.jsonl"), "a") as out:

    def record(seconds):
        """Writes new PERSISTED acks as they come, for `seconds`."""
        global written
        deadline = time.monotonic() + seconds
        while True:
            persisted = put.acks("PERSISTED")
            for ack in persisted[written:]:
                out.write(json.dumps(ack) + "\n")
                out.flush()
            written = len(persisted)
            if time.monotonic() >= deadline or put.ended.is_set():
                return
            time.sleep(0.01)

    try:
        put.send(data[: source["first_cluster"]])
        for cluster in clusters:
            if not put.send(data[cluster["start"] : cluster["end"]]):
                break
            record(0.3)
        else:
            put.finish()
        put.wait_end(20)
        record(0)
    finally:
        put.close()

persisted = put.acks("PERSISTED")
print(f"{len(persisted)} of {len(clusters)} fragments persisted; {put.describe()[:300]}", file=sys.stderr)
assert persisted, f"nothing was persisted: {put.describe()}"
assert not put.acks("ERROR"), f"ERROR acks: {put.acks('ERROR')}"
timecodes = [c["timecode"] for c in clusters]
assert [a["FragmentTimecode"] for a in persisted] == timecodes[: len(persisted)], persisted
check_numbers([a["FragmentNumber"] for a in persisted])
done()
