"""One PutMedia per stream: a newer connection to the stream ends the
older one (whose fragments so far stay stored), and the newer one's
fragments are taken.

argv: endpoint."""

import os
import sys
import tempfile
import time

from common import done, video_client
from video_common import (
    PutMedia, check_numbers, create_stream, list_fragments, make_mkv, parse_source, video_clients, wait_for,
    watchdog,
)

watchdog(90)
ENDPOINT = sys.argv[1]
kv = video_client("kinesisvideo", ENDPOINT)
create_stream(kv, "cam")
base = int(time.time()) - 600
with tempfile.TemporaryDirectory() as tmp:
    data = make_mkv(os.path.join(tmp, "cam.mkv"), 10, offset=base)
source = parse_source(data)
clusters = source["clusters"]
headers = {"x-amzn-stream-name": "cam", "x-amzn-fragment-timecode-type": "ABSOLUTE",
           "x-amzn-fragment-acknowledgment-required": "1"}

older = PutMedia(ENDPOINT, headers)
newer = None
try:
    # The older producer sends its first fragment, then stalls mid-stream.
    older.send(data[: clusters[1]["start"]])
    assert wait_for(lambda: len(older.acks("PERSISTED")) == 1, 15), older.describe()
    assert not older.ended.is_set(), older.describe()

    newer = PutMedia(ENDPOINT, headers)
    newer.send(data[: source["first_cluster"]])
    newer.send(data[clusters[1]["start"]:])
    newer.finish()
    assert newer.wait_end(30), newer.describe()
    # The older response ends by itself once the newer one took over.
    assert older.wait_end(15), f"the older PutMedia was not ended: {older.describe()}"
    assert not older.acks("ERROR"), older.acks("ERROR")
    # A stalled producer hears IDLE, as Kinesis Video's keep-alive.
    idle = [e for e in older.events if e.get("EventType") == "IDLE"]
    assert idle, f"no IDLE while the older producer stalled: {older.describe()}"
    assert not newer.acks("ERROR"), newer.acks("ERROR")
    persisted = [a["FragmentNumber"] for a in older.acks("PERSISTED") + newer.acks("PERSISTED")]
    assert len(persisted) == 5, persisted
    check_numbers(persisted)
finally:
    older.close()
    if newer:
        newer.close()

_, archive = video_clients(ENDPOINT, "cam")
listed, _ = list_fragments(archive, "cam")
assert sorted(f["FragmentNumber"] for f in listed) == sorted(persisted), (listed, persisted)
done()
