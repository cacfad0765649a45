"""The second half of the kill -9 test, against the restarted server: every
fragment acknowledged PERSISTED before the kill is listed, with its producer
time, and GetMediaForFragmentList gives back its very frames; the stream
then takes more video, numbered after everything stored.

argv: endpoint, stream name, the directory video_put.py wrote."""

import json
import os
import sys
import time

from common import done, video_client
from video_common import (
    check_acks, check_document, make_mkv, numbers_of, parse_source,
    put_media, read_documents, server_range, video_clients, wait_listed, watchdog,
)

watchdog(90)
endpoint, stream, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
with open(os.path.join(out_dir, "persisted.jsonl")) as f:
    acked = [json.loads(line) for line in f if line.endswith("\n")]
assert acked, "video_put.py recorded no PERSISTED ack"
with open(os.path.join(out_dir, "source.mkv"), "rb") as f:
    clusters = parse_source(f.read())["clusters"]
index_of = {c["timecode"]: i for i, c in enumerate(clusters)}
numbers = [a["FragmentNumber"] for a in acked]

kv = video_client("kinesisvideo")
info = kv.describe_stream(StreamName=stream)["StreamInfo"]
assert info["Status"] == "ACTIVE" and info["DataRetentionInHours"] == 24, info
media, archive = video_clients(endpoint, stream)
everything = server_range(time.time() - 3600, time.time() + 60)
listed = wait_listed(archive, stream, numbers, everything)
by_number = {f["FragmentNumber"]: f for f in listed}
missing = [n for n in numbers if n not in by_number]
assert not missing, f"PERSISTED before the kill but not listed after it: {missing}; listed {sorted(by_number)}"
assert len(by_number) == len(listed), f"a fragment is listed twice: {listed}"
# Fragments stored but not yet acknowledged at the kill may be there too,
# but only whole ones of the video that was put.
producer_ms = sorted(round(f["ProducerTimestamp"].timestamp() * 1000) for f in listed)
assert len(set(producer_ms)) == len(producer_ms), f"a producer time is listed twice: {producer_ms}"
assert all(ms in index_of for ms in producer_ms), f"listed producer times {producer_ms}, put {sorted(index_of)}"
for ack in acked:
    listed_ms = round(by_number[ack["FragmentNumber"]]["ProducerTimestamp"].timestamp() * 1000)
    assert listed_ms == ack["FragmentTimecode"], f"{ack} is listed with producer time {listed_ms}"

out = archive.get_media_for_fragment_list(StreamName=stream, Fragments=numbers)
_, docs, ended = read_documents(out["Payload"], lambda docs: False, 20)
assert ended and numbers_of(docs) == numbers, f"GetMediaForFragmentList gave {numbers_of(docs)}, asked {numbers}"
for ack, doc in zip(acked, docs):
    i = index_of[ack["FragmentTimecode"]]
    check_document(doc, ack["FragmentNumber"], clusters[i], ack["FragmentTimecode"] / 1000, None, get_media=False)

# More video after the restart: numbered after all that survived, and
# GetMedia reads the lot in order.
offset = clusters[-1]["timecode"] // 1000 + 10
more = make_mkv(os.path.join(out_dir, "more.mkv"), 4, offset=offset)
after = check_acks(put_media(kv.get_data_endpoint(StreamName=stream, APIName="PUT_MEDIA")["DataEndpoint"],
                             more, name=stream), [offset * 1000, offset * 1000 + 2000])
stored = sorted(by_number, key=int)
assert int(after[0]) > int(stored[-1]), f"new fragment {after[0]} is not after the stored {stored[-1]}"
out = media.get_media(StreamName=stream, StartSelector={"StartSelectorType": "EARLIEST"})
_, docs, _ = read_documents(out["Payload"], lambda docs: len(docs) >= len(stored) + 2, 20)
assert numbers_of(docs) == stored + after, f"EARLIEST after the restart gave {numbers_of(docs)}, expected {stored + after}"
done()
