"""Split, merge and rescale while writers run: no record lost, none
reordered within a partition key, and readers that follow ChildShards see
every key's records in order."""

import threading
import time

from common import client, done, read_shard

k = client()
k.create_stream(StreamName="rs", ShardCount=2)

KEYS = [f"key-{i}" for i in range(20)]
acked = {key: [] for key in KEYS}
stop = threading.Event()
errors = []


def writer(worker):
    w = client()
    n = 0
    while not stop.is_set() and n < 400:
        records = [{"Data": f"{key}:{worker}:{n}".encode(), "PartitionKey": key} for key in KEYS[worker::4]]
        out = w.put_records(StreamName="rs", Records=records)
        if out["FailedRecordCount"]:
            errors.append(out)
            return
        for rec, res in zip(records, out["Records"]):
            acked[rec["PartitionKey"]].append((rec["Data"].decode(), res["ShardId"], int(res["SequenceNumber"])))
        n += 1


def written():
    return sum(len(v) for v in acked.values())


def after_progress():
    """Lets the writers get some records in before the next reshard (bounded)."""
    start = written()
    deadline = time.time() + 20
    while written() < start + 100 and time.time() < deadline and not errors:
        time.sleep(0.01)


threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
after_progress()
k.split_shard(StreamName="rs", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**126))
after_progress()
k.merge_shards(StreamName="rs", ShardToMerge="shardId-000000000002", AdjacentShardToMerge="shardId-000000000003")
after_progress()
k.update_shard_count(StreamName="rs", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
after_progress()
k.update_shard_count(StreamName="rs", TargetShardCount=3, ScalingType="UNIFORM_SCALING")
after_progress()
stop.set()
for t in threads:
    t.join(timeout=120)
assert not errors, errors

desc = k.describe_stream(StreamName="rs")["StreamDescription"]
shards = {s["ShardId"]: s for s in desc["Shards"]}
open_shards = [s for s in shards.values() if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
assert len(open_shards) == 3, len(open_shards)
merged = [s for s in shards.values() if s.get("AdjacentParentShardId")]
assert merged, "a merge leaves a child with an adjacent parent"

# Read like a KCL would: roots first, children once all their parents ended.
records_by_key = {key: [] for key in KEYS}
finished = set()
pending = [sid for sid, s in shards.items() if not s.get("ParentShardId")]
seen_children = set()
rounds = 0
while pending:
    rounds += 1
    assert rounds < 1000
    sid = pending.pop(0)
    s = shards[sid]
    parents = [p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p]
    if any(p not in finished for p in parents):
        pending.append(sid)
        continue
    it = k.get_shard_iterator(StreamName="rs", ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records, last = read_shard(k, it)
    for r in records:
        records_by_key[r["PartitionKey"]].append(r["Data"].decode())
    finished.add(sid)
    if "EndingSequenceNumber" in s["SequenceNumberRange"]:
        assert last.get("NextShardIterator") is None, "a closed shard ends"
        for child in last.get("ChildShards", []):
            assert sid in child["ParentShards"]
            if child["ShardId"] not in seen_children:
                seen_children.add(child["ShardId"])
                pending.append(child["ShardId"])

total = 0
for key in KEYS:
    expected = [d for d, _, _ in acked[key]]
    assert records_by_key[key] == expected, f"{key}: order or loss"
    total += len(expected)
assert total > 0
done()
