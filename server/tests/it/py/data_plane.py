"""Put and get with every iterator type, lineage-free basics, encryption."""

import datetime
import time

from common import client, done, read_shard, wait_active

k = client()
k.create_stream(StreamName="orders", ShardCount=2)
wait_active(k, "orders")

desc = k.describe_stream(StreamName="orders")["StreamDescription"]
assert desc["StreamStatus"] == "ACTIVE"
assert [s["ShardId"] for s in desc["Shards"]] == ["shardId-000000000000", "shardId-000000000001"]
assert desc["Shards"][1]["HashKeyRange"]["StartingHashKey"] == str(2**127)
assert desc["Shards"][1]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)

# Explicit hash keys pin records to shards.
low = k.put_record(StreamName="orders", Data=b"first", PartitionKey="p", ExplicitHashKey="0")
assert low["ShardId"] == "shardId-000000000000"
high = k.put_record(StreamName="orders", Data=b"high", PartitionKey="p", ExplicitHashKey=str(2**128 - 1))
assert high["ShardId"] == "shardId-000000000001"

shard0 = "shardId-000000000000"
latest = k.get_shard_iterator(StreamName="orders", ShardId=shard0, ShardIteratorType="LATEST")["ShardIterator"]
# botocore sends timestamps in whole seconds: start the next batch in a new second.
time.sleep(1.05 - time.time() % 1)
before_second = datetime.datetime.now(datetime.timezone.utc)
batch = k.put_records(
    StreamName="orders",
    Records=[{"Data": f"r{i}".encode(), "PartitionKey": "x", "ExplicitHashKey": "1"} for i in range(5)],
)
assert batch["FailedRecordCount"] == 0
seqs = [r["SequenceNumber"] for r in batch["Records"]]
assert all(r["ShardId"] == shard0 for r in batch["Records"])
assert [int(s) for s in seqs] == sorted(int(s) for s in seqs)
assert int(seqs[0]) > int(low["SequenceNumber"])


def read(kind, **extra):
    it = k.get_shard_iterator(StreamName="orders", ShardId=shard0, ShardIteratorType=kind, **extra)["ShardIterator"]
    records, _ = read_shard(k, it)
    return [r["Data"].decode() for r in records]


everything = ["first"] + [f"r{i}" for i in range(5)]
assert read("TRIM_HORIZON") == everything
assert read("LATEST") == []
assert [r["Data"].decode() for r in read_shard(k, latest)[0]] == everything[1:]
assert read("AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]) == ["r2", "r3", "r4"]
assert read("AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]) == ["r3", "r4"]
assert read("AT_TIMESTAMP", Timestamp=before_second) == everything[1:]
# By StreamARN as well as by name.
arn = desc["StreamARN"]
it = k.get_shard_iterator(StreamARN=arn, ShardId=shard0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
out = k.get_records(ShardIterator=it, Limit=2)
assert [r["Data"] for r in out["Records"]] == [b"first", b"r0"]
assert out["Records"][0]["PartitionKey"] == "p"
assert isinstance(out["Records"][0]["ApproximateArrivalTimestamp"], datetime.datetime)
assert out["MillisBehindLatest"] >= 0
rest, last = read_shard(k, out["NextShardIterator"])
assert [r["Data"] for r in rest] == [f"r{i}".encode() for i in range(1, 5)]
assert last["MillisBehindLatest"] == 0

# Partition keys route by MD5: the same key always lands on the same shard.
shards = {k.put_record(StreamName="orders", Data=b"x", PartitionKey="user-42")["ShardId"] for _ in range(5)}
assert len(shards) == 1

# A 1 MiB record (data + key) is the largest accepted.
big = k.put_record(StreamName="orders", Data=b"z" * (1024 * 1024 - 1), PartitionKey="k")
it = k.get_shard_iterator(
    StreamName="orders", ShardId=big["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
    StartingSequenceNumber=big["SequenceNumber"],
)["ShardIterator"]
assert len(k.get_records(ShardIterator=it, Limit=1)["Records"][0]["Data"]) == 1024 * 1024 - 1

# GetRecords stops at its Limit and at 10 MiB.
k.create_stream(StreamName="bulk", ShardCount=1)
for _ in range(3):
    k.put_records(StreamName="bulk", Records=[{"Data": b"y" * (1000 * 1000), "PartitionKey": "k"} for _ in range(4)])
it = k.get_shard_iterator(StreamName="bulk", ShardId=shard0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
out = k.get_records(ShardIterator=it)
assert len(out["Records"]) == 10, len(out["Records"])
assert out["MillisBehindLatest"] >= 0
out = k.get_records(ShardIterator=out["NextShardIterator"])
assert len(out["Records"]) == 2

# Deleting a stream removes it and its records.
k.delete_stream(StreamName="bulk")
assert "bulk" not in k.list_streams()["StreamNames"]
done()
