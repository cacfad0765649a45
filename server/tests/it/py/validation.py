"""Bad input gets Kinesis's errors, with the right status, never a 500."""

import botocore.exceptions

from common import client, done, expect_error, raw

k = client()
k.create_stream(StreamName="v", ShardCount=1)

msg = expect_error("ValidationException", k.create_stream, StreamName="bad name!", ShardCount=1)
assert msg == ("1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy "
               "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"), msg
msg = expect_error("ValidationException", k.create_stream, StreamName="x" * 129, ShardCount=1)
assert "Member must have length less than or equal to 128" in msg
status, body = raw("CreateStream", {"StreamName": "zero", "ShardCount": 0})
assert status == 400 and body["__type"] == "ValidationException", body
assert "Value '0' at 'shardCount'" in body["message"] and "greater than or equal to 1" in body["message"]
expect_error("ResourceInUseException", k.create_stream, StreamName="v", ShardCount=1)
expect_error("LimitExceededException", k.create_stream, StreamName="huge", ShardCount=600)
expect_error("ResourceNotFoundException", k.describe_stream, StreamName="missing")
expect_error("ResourceNotFoundException", k.put_record, StreamName="missing", Data=b"x", PartitionKey="k")

msg = expect_error("ValidationException", k.put_record, StreamName="v", Data=b"x", PartitionKey="k" * 257)
assert "at 'partitionKey'" in msg
expect_error("ValidationException", k.put_record, StreamName="v", Data=b"x" * (1024 * 1024), PartitionKey="k")
expect_error("InvalidArgumentException", k.put_record, StreamName="v", Data=b"x", PartitionKey="k",
             ExplicitHashKey=str(2**128))
expect_error("InvalidArgumentException", k.put_record, StreamName="v", Data=b"x", PartitionKey="k",
             ExplicitHashKey="12a")

msg = expect_error("ValidationException", k.put_records, StreamName="v",
                   Records=[{"Data": b"x", "PartitionKey": "k"}] * 501)
assert "less than or equal to 500" in msg
expect_error("InvalidArgumentException", k.put_records, StreamName="v",
             Records=[{"Data": b"x" * (1000 * 1000), "PartitionKey": "k"}] * 6)
status, body = raw("PutRecords", {"StreamName": "v", "Records": [
    {"Data": "eA==", "PartitionKey": "k"}, {"Data": "eA==", "PartitionKey": ""}]})
assert status == 400 and body["__type"] == "ValidationException", body
assert "records.2.member.partitionKey" in body["message"], body
status, body = raw("PutRecords", {"StreamName": "v", "Records": []})
assert status == 400 and "greater than or equal to 1" in body["message"], body
status, body = raw("PutRecord", {"StreamName": "v", "Data": "not base64!", "PartitionKey": "k"})
assert status == 400 and body["__type"] == "SerializationException", body
status, body = raw("DescribeStream", {})
assert status == 400 and body["__type"] == "InvalidArgumentException", body

expect_error("ResourceNotFoundException", k.get_shard_iterator, StreamName="v",
             ShardId="shardId-000000000009", ShardIteratorType="LATEST")
msg = expect_error("ValidationException", k.get_shard_iterator, StreamName="v",
                   ShardId="shardId-000000000000", ShardIteratorType="SOMEWHERE")
assert "shardIteratorType" in msg
expect_error("InvalidArgumentException", k.get_shard_iterator, StreamName="v",
             ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER")
expect_error("InvalidArgumentException", k.get_shard_iterator, StreamName="v",
             ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER",
             StartingSequenceNumber=str(5 << 64))
expect_error("InvalidArgumentException", k.get_records, ShardIterator="bm90IGFuIGl0ZXJhdG9y")
it = k.get_shard_iterator(StreamName="v", ShardId="shardId-000000000000", ShardIteratorType="LATEST")["ShardIterator"]
expect_error("ValidationException", k.get_records, ShardIterator=it, Limit=10001)
status, body = raw("GetRecords", {"ShardIterator": it, "Limit": 0})
assert status == 400 and body["__type"] == "ValidationException", body

expect_error("InvalidArgumentException", k.split_shard, StreamName="v", ShardToSplit="shardId-000000000000",
             NewStartingHashKey="0")
expect_error("ResourceNotFoundException", k.split_shard, StreamName="v", ShardToSplit="shardId-000000000007",
             NewStartingHashKey="10")
expect_error("InvalidArgumentException", k.update_shard_count, StreamName="v", TargetShardCount=3,
             ScalingType="UNIFORM_SCALING")
expect_error("InvalidArgumentException", k.describe_stream, StreamARN="arn:aws:s3:::bucket")
# Where AWS behaves otherwise than a strict reading: no shard count and no
# mode is an on-demand stream of 4 shards.
k.create_stream(StreamName="od")
summary = k.describe_stream_summary(StreamName="od")["StreamDescriptionSummary"]
assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND", summary
assert summary["OpenShardCount"] == 4, summary

# Every GetRecords hands out a new iterator, and a quoted one is taken.
shard = k.list_shards(StreamName="v")["Shards"][0]["ShardId"]
it = k.get_shard_iterator(StreamName="v", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
seen = {it}
for _ in range(5):
    it = k.get_records(ShardIterator=it)["NextShardIterator"]
    assert it not in seen, "the same iterator twice"
    seen.add(it)
status, body = raw("GetRecords", {"ShardIterator": f'"{it}"'})
assert status == 200 and "NextShardIterator" in body, body

# A member of the wrong type is refused whatever the operation reads of it.
for bad in [{"StreamName": "v", "StreamId": 7}, {"StreamName": "v", "StreamId": [1]},
            {"StreamName": "v", "StreamId": {"a": 1}}, {"StreamName": 12}]:
    status, body = raw("DescribeStreamSummary", bad)
    assert status == 400 and body["__type"] == "SerializationException", (bad, body)

# Tags: at most 50 keys to remove, and the aws: prefix is AWS's.
msg = expect_error("ValidationException", k.remove_tags_from_stream, StreamName="v",
                   TagKeys=[f"k{i}" for i in range(51)])
assert "Member must have length less than or equal to 50" in msg, msg
expect_error("InvalidArgumentException", k.add_tags_to_stream, StreamName="v", Tags={"aws:x": "1"})
expect_error("InvalidArgumentException", k.remove_tags_from_stream, StreamName="v", TagKeys=["AWS:x"])
arn = k.describe_stream_summary(StreamName="v")["StreamDescriptionSummary"]["StreamARN"]
expect_error("ValidationException", k.untag_resource, ResourceARN=arn, TagKeys=[f"k{i}" for i in range(51)])

done()
