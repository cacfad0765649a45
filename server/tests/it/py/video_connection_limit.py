"""A PutMedia connection lives no longer than the server's
`video.put_media_max_connection_seconds` (Kinesis Video's 45 minutes by
default; argv[2] seconds here): then the producer gets ERROR 4003,
MAX_CONNECTION_DURATION_REACHED, about the fragment it was in the middle
of, and the response ends cleanly. Everything acknowledged PERSISTED before
stays readable, the unfinished fragment is not kept, and the producer's
next connection goes on where it left off."""

import os
import sys
import tempfile
import time

from common import done, video_client
from video_common import (
    PutMedia, check_acks, check_document, check_numbers, create_stream, list_fragments, make_mkv,
    numbers_of, parse_source, put_media, read_documents, server_range, video_clients, wait_listed,
    watchdog,
)

endpoint, limit = sys.argv[1], float(sys.argv[2])
watchdog(60 + 2 * limit)
kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()
base = int(time.time()) - 600

create_stream(kv, "long")
url = kv.get_data_endpoint(StreamName="long", APIName="PUT_MEDIA")["DataEndpoint"]
data = make_mkv(os.path.join(tmp.name, "long.mkv"), 10, offset=base)
source = parse_source(data)
clusters = source["clusters"]
header = data[: source["first_cluster"]]
assert limit >= 2, "the producer needs a second or two for its first fragments"

# Three whole fragments well inside the limit, then half of a fourth, and
# the producer waits as a camera between frames would.
t0 = time.monotonic()
put = PutMedia(url, {"x-amzn-stream-name": "long", "x-amzn-fragment-timecode-type": "ABSOLUTE",
                     "x-amzn-fragment-acknowledgment-required": "1"})
try:
    put.send(header)
    for i, cluster in enumerate(clusters[:3]):
        assert put.send(data[cluster["start"] : cluster["end"]]), put.describe()
        assert put.wait(lambda p, n=i + 1: len(p.acks("PERSISTED")) >= n, 5), f"fragment {i}: {put.describe()}"
    half = (clusters[3]["start"] + clusters[3]["end"]) // 2
    assert put.send(data[clusters[3]["start"] : half]), put.describe()
    assert put.wait(lambda p: p.acks("ERROR"), limit + 10), f"no ERROR within {limit + 10} s: {put.describe()}"
    took = time.monotonic() - t0
    assert put.wait_end(10), f"the response did not end after the 4003: {put.describe()}"
finally:
    put.close()
assert limit - 0.5 <= took <= limit + 3, f"ERROR after {took:.1f} s; the limit is {limit} s"
assert put.status == 200 and put.read_error is None, f"the response did not end cleanly: {put.describe()}"
errors = put.acks("ERROR")
assert len(errors) == 1 and put.acks()[-1] == errors[0], f"acks: {put.acks()}"
error = errors[0]
assert (error.get("ErrorId"), error.get("ErrorCode")) == (4003, "MAX_CONNECTION_DURATION_REACHED"), error
persisted = put.acks("PERSISTED")
assert [a["FragmentTimecode"] for a in persisted] == [c["timecode"] for c in clusters[:3]], put.describe()
numbers = [a["FragmentNumber"] for a in persisted]
# The error names the fragment that was cut off.
buffering = [a for a in put.acks("BUFFERING") if a["FragmentTimecode"] == clusters[3]["timecode"]]
assert len(buffering) == 1, put.acks()
assert error.get("FragmentTimecode") == clusters[3]["timecode"], error
assert error.get("FragmentNumber") == buffering[0]["FragmentNumber"], (error, buffering)

# What was persisted stays; the half fragment is not there.
media, archive = video_clients(endpoint, "long")
selector = server_range(time.time() - 120, time.time() + 60)
listed = wait_listed(archive, "long", numbers, selector)
assert sorted(f["FragmentNumber"] for f in listed) == sorted(numbers), f"listed {listed}, PERSISTED {numbers}"
out = archive.get_media_for_fragment_list(StreamName="long", Fragments=numbers)
_, docs, ended = read_documents(out["Payload"], lambda docs: False, 20)
assert ended and numbers_of(docs) == numbers, numbers_of(docs)
for i, doc in enumerate(docs):
    check_document(doc, numbers[i], clusters[i], base + 2 * i, None, get_media=False)

# The producer reconnects and sends the fragment again, and the rest.
rest = header + data[clusters[3]["start"] :]
again = check_acks(put_media(url, rest, name="long"), [c["timecode"] for c in clusters[3:]])
check_numbers(numbers + again)
listed, _ = list_fragments(archive, "long", selector)
assert len(listed) == 5, f"{len(listed)} fragments listed after the reconnect"
tmp.cleanup()
done()
