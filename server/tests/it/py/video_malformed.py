"""Malformed PutMedia: bytes that are not Matroska get an ERROR
acknowledgement (4006, INVALID_MKV_DATA) and the end of the response; a
file cut inside a Cluster, or a producer that drops the connection there,
keeps the whole Clusters before the cut and nothing of the partial one.
None of it harms the stream or the server."""

import os
import random
import sys
import tempfile
import time

from common import done, video_client
from video_common import (
    PutMedia, check_acks, check_document, create_stream, health, list_fragments, make_mkv,
    numbers_of, parse_source, put_media, read_documents, server_range, video_clients, wait_for,
    wait_listed, watchdog,
)

watchdog(120)
endpoint = sys.argv[1]
kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()
base = int(time.time()) - 900


def endpoint_for(stream):
    return kv.get_data_endpoint(StreamName=stream, APIName="PUT_MEDIA")["DataEndpoint"]


def absolute(stream):
    return {"x-amzn-stream-name": stream, "x-amzn-fragment-timecode-type": "ABSOLUTE",
            "x-amzn-fragment-acknowledgment-required": "1"}


# --- Not Matroska at all.
create_stream(kv, "bad")
garbage = random.Random(4006).randbytes(1000)
assert garbage[:4] != b"\x1a\x45\xdf\xa3"
put = PutMedia(endpoint_for("bad"), absolute("bad"))
try:
    # A small body, then wait: a server that answers before reading all
    # of it would otherwise reset the connection over the unread rest.
    put.send(garbage)
    if not put.wait(lambda p: p.acks("ERROR"), 5):
        put.finish()
    assert put.wait_end(15), f"the response did not end after the error: {put.describe()}"
finally:
    put.close()
assert put.status == 200, f"garbage PutMedia: {put.describe()}"
errors = put.acks("ERROR")
assert len(errors) == 1, f"ERROR acks {errors}: {put.describe()}"
assert errors[0].get("ErrorId") == 4006 and errors[0].get("ErrorCode") == "INVALID_MKV_DATA", errors
assert put.acks() == errors, f"acks besides the error: {put.acks()}"

# The stream still takes good video.
data = make_mkv(os.path.join(tmp.name, "good.mkv"), 4, offset=base)
check_acks(put_media(endpoint_for("bad"), data, name="bad"), [base * 1000, base * 1000 + 2000])

# --- A file cut in the middle of its third Cluster, then the body ends.
create_stream(kv, "cut")
data = make_mkv(os.path.join(tmp.name, "cut.mkv"), 10, offset=base + 100)
source = parse_source(data)["clusters"]
timecodes = [c["timecode"] for c in source]
cut = (source[2]["start"] + source[2]["end"]) // 2
t0 = time.time()
put = put_media(endpoint_for("cut"), data[:cut], name="cut")
t1 = time.time()
assert put.status == 200 and put.read_error is None, put.describe()
persisted = put.acks("PERSISTED")
assert [a["FragmentTimecode"] for a in persisted] == timecodes[:2], (
    f"PERSISTED {[a['FragmentTimecode'] for a in persisted]}, expected the two whole Clusters {timecodes[:2]}"
)
numbers = [a["FragmentNumber"] for a in persisted]
# The partial Cluster may be reported as an error, never as stored.
for a in put.acks("ERROR"):
    assert a.get("ErrorId") in (4000, 4006), f"unexpected error for a cut file: {a}"
media, archive = video_clients(endpoint, "cut")
listed = wait_listed(archive, "cut", numbers, server_range(t0 - 5, t1 + 5))
assert sorted(f["FragmentNumber"] for f in listed) == sorted(numbers), f"listed {listed}, PERSISTED {numbers}"
out = archive.get_media_for_fragment_list(StreamName="cut", Fragments=numbers)
_, docs, ended = read_documents(out["Payload"], lambda docs: False, 20)
assert ended and numbers_of(docs) == numbers, f"GetMediaForFragmentList gave {numbers_of(docs)}"
for i, doc in enumerate(docs):
    check_document(doc, numbers[i], source[i], base + 100 + 2 * i, (t0, t1), get_media=False)

# --- A producer that dies inside a Cluster: no end of body, just a
# closed connection.
create_stream(kv, "dropped")
data = make_mkv(os.path.join(tmp.name, "dropped.mkv"), 10, offset=base + 200)
source = parse_source(data)["clusters"]
cut = (source[2]["start"] + source[2]["end"]) // 2
t0 = time.time()
put = PutMedia(endpoint_for("dropped"), absolute("dropped"))
try:
    put.send(data[:cut])
    put.wait(lambda p: len(p.acks("PERSISTED")) >= 2, 15)
finally:
    put.close()
assert [a["FragmentTimecode"] for a in put.acks("PERSISTED")] == [c["timecode"] for c in source[:2]], put.describe()
numbers = [a["FragmentNumber"] for a in put.acks("PERSISTED")]
_, archive = video_clients(endpoint, "dropped")
selector = server_range(t0 - 5, time.time() + 60)
listed = wait_listed(archive, "dropped", numbers, selector)
time.sleep(1)  # nothing more turns up later
listed, _ = list_fragments(archive, "dropped", selector)
assert sorted(f["FragmentNumber"] for f in listed) == sorted(numbers), f"listed {listed}, PERSISTED {numbers}"
# The stream takes the next producer.
more = make_mkv(os.path.join(tmp.name, "more.mkv"), 4, offset=base + 300)
after = check_acks(put_media(endpoint_for("dropped"), more, name="dropped"), [(base + 300) * 1000, (base + 302) * 1000])
assert int(after[0]) > int(numbers[-1]), f"fragment numbers go back: {numbers} then {after}"

# --- The server is fine.
assert wait_for(lambda: health(endpoint) == 200, 5), "health check failed"
names = sorted(s["StreamName"] for s in kv.list_streams()["StreamInfoList"])
assert names == ["bad", "cut", "dropped"], names
tmp.cleanup()
done()
