"""PutMedia of an H.264 MKV with ABSOLUTE timecodes, then every way to read
its fragments back: ListFragments (server and producer time ranges, in
pages), GetMedia (EARLIEST, FRAGMENT_NUMBER, PRODUCER_TIMESTAMP, a live
tail from NOW, a continuation token) and GetMediaForFragmentList. What
comes back must be the very frames that went in, and ffprobe must play it."""

import os
import sys
import tempfile
import threading
import time

from common import done, video_client
from video_common import (
    CONTINUATION_TOKEN, FRAGMENT_NUMBER, PutMedia, check_acks, check_document, create_stream,
    expect_client_error, ffprobe_video, list_fragments, make_mkv, numbers_of, parse_source,
    producer_range, put_media, read_documents, server_range, tag, video_clients, wait_listed, watchdog,
)

watchdog(150)
endpoint = sys.argv[1]
kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()
# Producer time in the past (whole seconds): no fragment is from the future.
base = int(time.time()) - 600

# --- PutMedia: 10 s of video, a Cluster (so a fragment) every 2 s.
create_stream(kv, "cam")
put_url = kv.get_data_endpoint(StreamName="cam", APIName="PUT_MEDIA")["DataEndpoint"]
data = make_mkv(os.path.join(tmp.name, "cam.mkv"), 10, offset=base)
source = parse_source(data)["clusters"]
timecodes = [base * 1000 + 2000 * i for i in range(5)]
t0 = time.time()
put = put_media(put_url, data, name="cam")
t1 = time.time()
numbers = check_acks(put, timecodes)
window = (t0, t1)
media, archive = video_clients(endpoint, "cam")

# --- ListFragments.
everything = server_range(t0 - 5, t1 + 5)
listed = wait_listed(archive, "cam", numbers, everything)
by_number = {f["FragmentNumber"]: f for f in listed}
assert len(listed) == 5 and sorted(by_number) == sorted(numbers), (
    f"listed {[f['FragmentNumber'] for f in listed]}, PERSISTED {numbers}"
)
for i, number in enumerate(numbers):
    f = by_number[number]
    producer = f["ProducerTimestamp"].timestamp()
    assert abs(producer - (base + 2 * i)) < 0.0015, f"fragment {i}: ProducerTimestamp {producer}, put {base + 2 * i}"
    server = f["ServerTimestamp"].timestamp()
    assert t0 - 1 <= server <= t1 + 1, f"fragment {i}: ServerTimestamp {server} outside the put's {window}"
    assert 1900 <= f["FragmentLengthInMilliseconds"] <= 2100, f"fragment {i}: {f['FragmentLengthInMilliseconds']} ms"
    frame_bytes = sum(len(frame) for frame in source[i]["frames"])
    assert f["FragmentSizeInBytes"] >= frame_bytes, f"fragment {i}: {f['FragmentSizeInBytes']} bytes < its frames' {frame_bytes}"
server_times = [by_number[n]["ServerTimestamp"] for n in numbers]
assert server_times == sorted(server_times), f"server timestamps go back: {server_times}"

paged, sizes = list_fragments(archive, "cam", everything, max_results=2)
assert all(s <= 2 for s in sizes) and len(sizes) >= 3, f"page sizes {sizes}"
assert sorted(f["FragmentNumber"] for f in paged) == sorted(numbers), f"pages listed {[f['FragmentNumber'] for f in paged]}"


def listed_numbers(selector):
    found, _ = list_fragments(archive, "cam", selector)
    return sorted(f["FragmentNumber"] for f in found)


# Fragments whose start lies in the range, both ends included (botocore's
# FragmentSelector documentation).
assert listed_numbers(producer_range(base + 1, base + 7)) == sorted(numbers[1:4]), listed_numbers(producer_range(base + 1, base + 7))
assert listed_numbers(producer_range(base + 2, base + 6)) == sorted(numbers[1:4]), listed_numbers(producer_range(base + 2, base + 6))
assert listed_numbers(producer_range(base - 100, base - 50)) == []
assert listed_numbers(server_range(t0 - 100, t0 - 50)) == []
expect_client_error(archive, "ResourceNotFoundException", archive.list_fragments,
                    StreamName="nope", FragmentSelector=everything)


# --- GetMedia.
def get_media(client, stream, selector, count, seconds=20):
    out = client.get_media(StreamName=stream, StartSelector=selector)
    assert out["ContentType"] == "video/webm", out["ContentType"]
    return read_documents(out["Payload"], lambda docs: len(docs) >= count, seconds)


raw, docs, _ = get_media(media, "cam", {"StartSelectorType": "EARLIEST"}, 5)
assert numbers_of(docs) == numbers, f"EARLIEST gave {numbers_of(docs)}, PERSISTED {numbers}"
for i, doc in enumerate(docs):
    check_document(doc, numbers[i], source[i], base + 2 * i, window)
codec, width, height, frames = ffprobe_video(raw[docs[0]["start"] : docs[1]["start"]], tmp.name)
assert (codec, width, height, frames) == ("h264", 640, 360, 60), (codec, width, height, frames)

_, docs, _ = get_media(media, "cam", {"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": numbers[2]}, 3)
assert numbers_of(docs) == numbers[2:], f"FRAGMENT_NUMBER {numbers[2]} gave {numbers_of(docs)}, expected {numbers[2:]}"
check_document(docs[0], numbers[2], source[2], base + 4, window)

# The fragment containing the time, then the rest.
_, docs, _ = get_media(media, "cam", {"StartSelectorType": "PRODUCER_TIMESTAMP", "StartTimestamp": base + 7}, 2)
assert numbers_of(docs) == numbers[3:], f"PRODUCER_TIMESTAMP gave {numbers_of(docs)}, expected {numbers[3:]}"

expect_client_error(media, "ResourceNotFoundException", media.get_media,
                    StreamName="nope", StartSelector={"StartSelectorType": "EARLIEST"})

# --- GetMediaForFragmentList: those fragments only, and the body ends.
archive_url = kv.get_data_endpoint(StreamName="cam", APIName="GET_MEDIA_FOR_FRAGMENT_LIST")["DataEndpoint"]
archive_list = video_client("kinesis-video-archived-media", archive_url, read_timeout=15)
out = archive_list.get_media_for_fragment_list(StreamName="cam", Fragments=[numbers[1], numbers[3]])
_, docs, ended = read_documents(out["Payload"], lambda docs: False, 20)
assert ended, "GetMediaForFragmentList's body did not end"
assert numbers_of(docs) == [numbers[1], numbers[3]], f"GetMediaForFragmentList gave {numbers_of(docs)}"
check_document(docs[0], numbers[1], source[1], base + 2, window, get_media=False)
check_document(docs[1], numbers[3], source[3], base + 6, window, get_media=False)

# --- A live tail: GetMedia from NOW gets what is put after it opened.
create_stream(kv, "live")
first = make_mkv(os.path.join(tmp.name, "first.mkv"), 4, offset=base + 100)
before = check_acks(put_media(put_url, first, name="live"), [(base + 100) * 1000, (base + 102) * 1000])
second = make_mkv(os.path.join(tmp.name, "second.mkv"), 6, offset=base + 104)
second_source = parse_source(second)["clusters"]
live_media, _ = video_clients(endpoint, "live", read_timeout=10)
result = {}


def open_tail():
    try:
        result["tail"] = live_media.get_media(StreamName="live", StartSelector={"StartSelectorType": "NOW"})
    except Exception as e:  # noqa: BLE001 - reported below
        result["tail error"] = e


def put_second():
    result["put"] = put_media(put_url, second, name="live")


opener = threading.Thread(target=open_tail, daemon=True)
opener.start()
# The response head normally comes at once; a server that holds it back
# until it has a fragment to send gets the put after a moment anyway.
opener.join(3)
t2 = time.time()
writer = threading.Thread(target=put_second, daemon=True)
writer.start()
opener.join(20)
assert "tail" in result, f"GetMedia NOW did not answer: {result.get('tail error')!r}"
tail = result["tail"]
assert tail["ContentType"] == "video/webm", tail["ContentType"]
_, docs, ended = read_documents(
    tail["Payload"], lambda docs: len([d for d in docs if tag(d, FRAGMENT_NUMBER) not in before]) >= 3, 30
)
writer.join(40)
t3 = time.time()
assert "put" in result, "the second PutMedia did not finish"
after = check_acks(result["put"], [(base + 104 + 2 * i) * 1000 for i in range(3)])
assert int(after[0]) > int(before[-1]), f"fragment numbers go back between puts: {before} then {after}"
got = numbers_of(docs)
# NOW starts "with the latest chunk": the newest stored fragment may come first.
assert got in (after, before[-1:] + after), f"GetMedia NOW gave {got}; stored {before}, then put {after}"
assert not ended, "a live GetMedia ended"
live_docs = docs[len(got) - 3 :]
for i, doc in enumerate(live_docs):
    check_document(doc, after[i], second_source[i], base + 104 + 2 * i, (t2, t3))

# Resuming with a fragment's continuation token starts after that fragment.
token = tag(live_docs[0], CONTINUATION_TOKEN)
_, docs, _ = get_media(live_media, "live", {"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": token}, 2)
assert numbers_of(docs) == after[1:], f"CONTINUATION_TOKEN {token} gave {numbers_of(docs)}, expected {after[1:]}"

# --- PutMedia to an unknown stream: 404 before any acknowledgement.
nope = PutMedia(put_url, {"x-amzn-stream-name": "nope", "x-amzn-fragment-timecode-type": "ABSOLUTE",
                          "x-amzn-fragment-acknowledgment-required": "1"})
try:
    # Only headers first: a server that refuses without reading the body
    # then has no unread body to reset the connection over.
    if not nope.wait(lambda p: p.status is not None, 5):
        nope.send(data[:4096])
        nope.finish()
    assert nope.wait_end(15), f"PutMedia to an unknown stream did not end: {nope.describe()}"
finally:
    nope.close()
assert nope.status == 404, f"PutMedia to an unknown stream: {nope.describe()}"
assert nope.response_headers.get("x-amzn-errortype", "").split(":")[0] == "ResourceNotFoundException", nope.response_headers
assert b"ResourceNotFoundException" in nope.body and b"EventType" not in nope.body, nope.describe()

tmp.cleanup()
done()
