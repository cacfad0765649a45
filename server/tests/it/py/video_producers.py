"""PutMedia as other producers send it: RELATIVE timecodes from a producer
start timestamp, the stream named by ARN, and Clusters of unknown size (as
the AWS producer SDK and GStreamer write them, each ending only where the
next begins). Producer timestamps must come out right in ListFragments and
GetMedia, and the frames must be those that went in."""

import os
import sys
import tempfile
import time

from common import done, video_client
from video_common import (
    PRODUCER_TIMESTAMP, check_acks, check_document, create_stream, make_mkv,
    numbers_of, parse_source, put_media, read_documents, server_range, tag, video_clients,
    wait_listed, watchdog, with_unknown_sizes,
)

watchdog(120)
endpoint = sys.argv[1]
kv = video_client("kinesisvideo")
tmp = tempfile.TemporaryDirectory()

def endpoint_for(stream):
    return kv.get_data_endpoint(StreamName=stream, APIName="PUT_MEDIA")["DataEndpoint"]


# --- RELATIVE: Cluster timecodes 0, 2000, 4000 from a start with millis.
create_stream(kv, "relative")
data = make_mkv(os.path.join(tmp.name, "relative.mkv"), 6)
source = parse_source(data)["clusters"]
start = round(time.time() - 300, 3)
t0 = time.time()
put = put_media(endpoint_for("relative"), data, name="relative", relative_start=start)
t1 = time.time()
# Acks carry the timecode as sent.
numbers = check_acks(put, [0, 2000, 4000])
media, archive = video_clients(endpoint, "relative")
listed = wait_listed(archive, "relative", numbers, server_range(t0 - 5, t1 + 5))
by_number = {f["FragmentNumber"]: f for f in listed}
assert sorted(by_number) == sorted(numbers) and len(listed) == 3, f"listed {sorted(by_number)}, PERSISTED {numbers}"
for i, number in enumerate(numbers):
    producer = by_number[number]["ProducerTimestamp"].timestamp()
    assert abs(producer - (start + 2 * i)) < 0.0015, f"fragment {i}: ProducerTimestamp {producer}, expected {start + 2 * i:.3f}"
out = media.get_media(StreamName="relative", StartSelector={"StartSelectorType": "EARLIEST"})
_, docs, _ = read_documents(out["Payload"], lambda docs: len(docs) >= 3, 20)
assert numbers_of(docs) == numbers, f"EARLIEST gave {numbers_of(docs)}, PERSISTED {numbers}"
for i, doc in enumerate(docs):
    check_document(doc, numbers[i], source[i], start + 2 * i, (t0, t1))
# A second session continues the stream: its producer time starts later.
later = round(start + 10.5, 3)
put = put_media(endpoint_for("relative"), data, name="relative", relative_start=later)
more = check_acks(put, [0, 2000, 4000])
assert int(more[0]) > int(numbers[-1]), f"fragment numbers go back between puts: {numbers} then {more}"

# --- The stream named by ARN, in PutMedia and in ListFragments.
arn = create_stream(kv, "by-arn")
base = int(time.time()) - 400
data = make_mkv(os.path.join(tmp.name, "arn.mkv"), 4, offset=base)
t0 = time.time()
put = put_media(endpoint_for("by-arn"), data, arn=arn)
t1 = time.time()
numbers = check_acks(put, [base * 1000, base * 1000 + 2000])
_, archive = video_clients(endpoint, "by-arn")
found = archive.list_fragments(StreamARN=arn, FragmentSelector=server_range(t0 - 5, t1 + 5))["Fragments"]
assert sorted(f["FragmentNumber"] for f in found) == sorted(numbers), f"by ARN listed {found}, PERSISTED {numbers}"

# --- Unknown-size Clusters (the producer SDK's way): same fragments.
create_stream(kv, "sdk")
base = int(time.time()) - 500
data = make_mkv(os.path.join(tmp.name, "sdk.mkv"), 10, offset=base)
source = parse_source(data)["clusters"]
streamed = with_unknown_sizes(data)
t0 = time.time()
# Small chunks, so that Clusters are split across reads.
put = put_media(endpoint_for("sdk"), streamed, name="sdk", chunk_size=3000)
t1 = time.time()
numbers = check_acks(put, [base * 1000 + 2000 * i for i in range(5)])
media, archive = video_clients(endpoint, "sdk")
listed = wait_listed(archive, "sdk", numbers, server_range(t0 - 5, t1 + 5))
assert sorted(f["FragmentNumber"] for f in listed) == sorted(numbers), f"listed {listed}, PERSISTED {numbers}"
lengths = sorted(f["FragmentLengthInMilliseconds"] for f in listed)
assert all(1900 <= n <= 2100 for n in lengths), f"fragment lengths {lengths}"
out = archive.get_media_for_fragment_list(StreamName="sdk", Fragments=numbers)
_, docs, ended = read_documents(out["Payload"], lambda docs: False, 20)
assert ended and numbers_of(docs) == numbers, f"GetMediaForFragmentList gave {numbers_of(docs)} (ended: {ended})"
for i, doc in enumerate(docs):
    check_document(doc, numbers[i], source[i], base + 2 * i, (t0, t1), get_media=False)
out = media.get_media(StreamName="sdk", StartSelector={"StartSelectorType": "EARLIEST"})
_, docs, _ = read_documents(out["Payload"], lambda docs: len(docs) >= 5, 20)
assert numbers_of(docs) == numbers, f"EARLIEST gave {numbers_of(docs)}"
producer = [float(tag(d, PRODUCER_TIMESTAMP)) for d in docs]
assert all(abs(p - (base + 2 * i)) < 0.0015 for i, p in enumerate(producer)), f"producer timestamps {producer}, base {base}"

tmp.cleanup()
done()
