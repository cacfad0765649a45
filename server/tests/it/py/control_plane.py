"""Every control-plane operation through boto3."""

import json

from common import client, done, expect_error, wait_active

k = client()
k.create_stream(StreamName="ctl", ShardCount=1, Tags={"team": "data"})
wait_active(k, "ctl")
arn = k.describe_stream_summary(StreamName="ctl")["StreamDescriptionSummary"]["StreamARN"]
assert arn == "arn:aws:kinesis:us-east-1:000000000000:stream/ctl"

# Listing, with pagination.
for i in range(3):
    k.create_stream(StreamName=f"list-{i}", ShardCount=1)
page = k.list_streams(Limit=2)
assert page["HasMoreStreams"] and len(page["StreamNames"]) == 2
names = list(page["StreamNames"])
while page["HasMoreStreams"]:
    page = k.list_streams(Limit=2, NextToken=page["NextToken"])
    names += page["StreamNames"]
assert names == sorted(["ctl", "list-0", "list-1", "list-2"]), names
assert k.list_streams(ExclusiveStartStreamName="list-1")["StreamNames"] == ["list-2"]

# Tags, both APIs.
k.add_tags_to_stream(StreamName="ctl", Tags={"env": "test", "tier": "1"})
tags = k.list_tags_for_stream(StreamName="ctl")
assert {t["Key"]: t["Value"] for t in tags["Tags"]} == {"team": "data", "env": "test", "tier": "1"}
assert tags["HasMoreTags"] is False
k.remove_tags_from_stream(StreamName="ctl", TagKeys=["tier"])
k.tag_resource(ResourceARN=arn, Tags={"owner": "me"})
k.untag_resource(ResourceARN=arn, TagKeys=["env"])
tags = k.list_tags_for_resource(ResourceARN=arn)["Tags"]
assert {t["Key"]: t["Value"] for t in tags} == {"team": "data", "owner": "me"}
expect_error("InvalidArgumentException", k.add_tags_to_stream, StreamName="ctl",
             Tags={f"k{i}": "v" for i in range(60)})

# Retention.
k.increase_stream_retention_period(StreamName="ctl", RetentionPeriodHours=48)
assert k.describe_stream(StreamName="ctl")["StreamDescription"]["RetentionPeriodHours"] == 48
expect_error("InvalidArgumentException", k.increase_stream_retention_period, StreamName="ctl", RetentionPeriodHours=30)
k.decrease_stream_retention_period(StreamName="ctl", RetentionPeriodHours=24)
expect_error("InvalidArgumentException", k.decrease_stream_retention_period, StreamName="ctl", RetentionPeriodHours=10)
expect_error("InvalidArgumentException", k.increase_stream_retention_period, StreamName="ctl", RetentionPeriodHours=9000)

# Enhanced monitoring.
out = k.enable_enhanced_monitoring(StreamName="ctl", ShardLevelMetrics=["IncomingBytes"])
assert out["CurrentShardLevelMetrics"] == [] and out["DesiredShardLevelMetrics"] == ["IncomingBytes"]
out = k.enable_enhanced_monitoring(StreamName="ctl", ShardLevelMetrics=["ALL"])
assert len(out["DesiredShardLevelMetrics"]) == 7
out = k.disable_enhanced_monitoring(StreamName="ctl", ShardLevelMetrics=["ALL"])
assert out["DesiredShardLevelMetrics"] == []
expect_error("ValidationException", k.enable_enhanced_monitoring, StreamName="ctl", ShardLevelMetrics=["Nope"])

# Encryption at rest with the configured key.
k.start_stream_encryption(StreamName="ctl", EncryptionType="KMS", KeyId="alias/aws/kinesis")
summary = k.describe_stream_summary(StreamName="ctl")["StreamDescriptionSummary"]
assert summary["EncryptionType"] == "KMS" and summary["KeyId"] == "alias/aws/kinesis"
put = k.put_record(StreamName="ctl", Data=b"secret", PartitionKey="a")
assert put["EncryptionType"] == "KMS"
it = k.get_shard_iterator(StreamName="ctl", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
rec = k.get_records(ShardIterator=it)["Records"][0]
assert rec["Data"] == b"secret" and rec["EncryptionType"] == "KMS"
k.stop_stream_encryption(StreamName="ctl", EncryptionType="KMS", KeyId="alias/aws/kinesis")
assert k.describe_stream(StreamName="ctl")["StreamDescription"]["EncryptionType"] == "NONE"

# Consumers.
c = k.register_stream_consumer(StreamARN=arn, ConsumerName="app1")["Consumer"]
assert c["ConsumerARN"].startswith(arn + "/consumer/app1:") and c["ConsumerStatus"] == "ACTIVE"
k.register_stream_consumer(StreamARN=arn, ConsumerName="app2")
expect_error("ResourceInUseException", k.register_stream_consumer, StreamARN=arn, ConsumerName="app1")
d = k.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]
assert d["ConsumerName"] == "app1" and d["StreamARN"] == arn
d = k.describe_stream_consumer(StreamARN=arn, ConsumerName="app2")["ConsumerDescription"]
assert d["ConsumerName"] == "app2"
page = k.list_stream_consumers(StreamARN=arn, MaxResults=1)
assert [x["ConsumerName"] for x in page["Consumers"]] == ["app1"]
page = k.list_stream_consumers(StreamARN=arn, NextToken=page["NextToken"])
assert [x["ConsumerName"] for x in page["Consumers"]] == ["app2"]
assert k.describe_stream_summary(StreamName="ctl")["StreamDescriptionSummary"]["ConsumerCount"] == 2
k.deregister_stream_consumer(ConsumerARN=c["ConsumerARN"])
expect_error("ResourceNotFoundException", k.describe_stream_consumer, ConsumerARN=c["ConsumerARN"])

# Resource policies.
policy = json.dumps({"Version": "2012-10-17", "Statement": []})
k.put_resource_policy(ResourceARN=arn, Policy=policy)
assert k.get_resource_policy(ResourceARN=arn)["Policy"] == policy
k.delete_resource_policy(ResourceARN=arn)
assert k.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"
expect_error("ResourceNotFoundException", k.delete_resource_policy, ResourceARN=arn)

# Capacity mode.
k.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
assert k.describe_stream_summary(StreamName="ctl")["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
expect_error("ValidationException", k.update_shard_count, StreamName="ctl", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
out = k.update_stream_warm_throughput(StreamName="ctl", WarmThroughputMiBps=10)
assert out["WarmThroughput"]["TargetMiBps"] == 10
k.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "PROVISIONED"})
k.create_stream(StreamName="od", StreamModeDetails={"StreamMode": "ON_DEMAND"})
assert k.describe_stream_summary(StreamName="od")["StreamDescriptionSummary"]["OpenShardCount"] == 4

# Max record size.
k.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=2048)
assert k.describe_stream_summary(StreamName="ctl")["StreamDescriptionSummary"]["MaxRecordSizeInKiB"] == 2048
k.put_record(StreamName="ctl", Data=b"m" * (1536 * 1024), PartitionKey="a")

# Limits and account settings.
limits = k.describe_limits()
assert limits["ShardLimit"] == 500 and limits["OpenShardCount"] >= 5 and limits["OnDemandStreamCount"] == 1
out = k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
assert out["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"
assert k.describe_account_settings()["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"

# ListShards with filters and pagination.
k.create_stream(StreamName="many", ShardCount=5)
page = k.list_shards(StreamName="many", MaxResults=2)
ids = [s["ShardId"] for s in page["Shards"]]
while "NextToken" in page:
    page = k.list_shards(NextToken=page["NextToken"], MaxResults=2)
    ids += [s["ShardId"] for s in page["Shards"]]
assert ids == [f"shardId-00000000000{i}" for i in range(5)], ids
expect_error("InvalidArgumentException", k.list_shards, StreamName="many", NextToken="abc")
after = k.list_shards(StreamName="many", ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000002"})
assert [s["ShardId"] for s in after["Shards"]] == ["shardId-000000000003", "shardId-000000000004"]
assert len(k.list_shards(StreamName="many", ShardFilter={"Type": "AT_LATEST"})["Shards"]) == 5
k.split_shard(StreamName="many", ShardToSplit="shardId-000000000000", NewStartingHashKey="1000")
latest = [s["ShardId"] for s in k.list_shards(StreamName="many", ShardFilter={"Type": "AT_LATEST"})["Shards"]]
assert "shardId-000000000000" not in latest and "shardId-000000000006" in latest, latest
horizon = [s["ShardId"] for s in k.list_shards(StreamName="many", ShardFilter={"Type": "AT_TRIM_HORIZON"})["Shards"]]
assert len(horizon) == 7, horizon

# Deletion, with consumers guarded.
expect_error("ResourceInUseException", k.delete_stream, StreamName="ctl")
k.delete_stream(StreamName="ctl", EnforceConsumerDeletion=True)
expect_error("ResourceNotFoundException", k.describe_stream, StreamName="ctl")
done()
