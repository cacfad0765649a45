"""Iterators expire (the server under test has iterator_ttl_seconds = 1)."""

import time

from common import client, done, expect_error

k = client()
k.create_stream(StreamName="e", ShardCount=1)
it = k.get_shard_iterator(StreamName="e", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
k.get_records(ShardIterator=it)
deadline = time.time() + 10
while time.time() < deadline:
    try:
        k.get_records(ShardIterator=it)
    except Exception as e:  # noqa: BLE001
        assert e.response["Error"]["Code"] == "ExpiredIteratorException", e
        assert "Iterator expired" in e.response["Error"]["Message"]
        break
    time.sleep(0.2)
else:
    raise AssertionError("iterator never expired")
# A recreated stream does not accept an old stream's iterator.
it = k.get_shard_iterator(StreamName="e", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
k.delete_stream(StreamName="e")
k.create_stream(StreamName="e", ShardCount=1)
expect_error("ResourceNotFoundException", k.get_records, ShardIterator=it)
done()
