"""Kinesis's per-shard limits, on by default."""

import concurrent.futures

from common import client, done

k = client()
k.create_stream(StreamName="t", ShardCount=1)
# 1 MiB/s per shard: of 500 records of 4 KB (2 MB) in one request, about
# half are throttled, each with its own error; the rest are written.
out = k.put_records(StreamName="t", Records=[{"Data": b"x" * 4096, "PartitionKey": "k"} for _ in range(500)])
failed = out["FailedRecordCount"]
for r in out["Records"]:
    if "ErrorCode" in r:
        assert r["ErrorCode"] == "ProvisionedThroughputExceededException", r
        assert "Rate exceeded for shard shardId-000000000000" in r["ErrorMessage"], r
    else:
        assert "SequenceNumber" in r
assert 200 <= failed <= 300, failed
# PutRecord fails whole once the bucket is empty (it refills 1 record/ms,
# so a few may still fit).
for _ in range(200):
    try:
        k.put_record(StreamName="t", Data=b"x" * 200_000, PartitionKey="k")
    except Exception as e:  # noqa: BLE001
        assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException", e
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        break
else:
    raise AssertionError("PutRecord was never throttled")

# 5 GetRecords per second per shard.
it = k.get_shard_iterator(StreamName="t", ShardId="shardId-000000000000", ShardIteratorType="LATEST")["ShardIterator"]


def get(_):
    try:
        clients[_].get_records(ShardIterator=it, Limit=1)
        return "ok"
    except Exception as e:  # noqa: BLE001
        return e.response["Error"]["Code"]


# Concurrent calls, so a slow client cannot pace itself under the limit.
clients = [client() for _ in range(20)]
with concurrent.futures.ThreadPoolExecutor(20) as pool:
    codes = list(pool.map(get, range(20)))
assert "ProvisionedThroughputExceededException" in codes, codes
assert set(codes) == {"ok", "ProvisionedThroughputExceededException"}, codes
done()
