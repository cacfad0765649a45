"""Firehose through boto3: the control plane, puts, validation, and the
objects a delivery stream writes to its local bucket.

argv: endpoint, the server's data dir."""

import gzip
import json
import os
import sys
import time
import urllib.request

import boto3
import botocore.config

from common import done, expect_error
from common import raw as common_raw

endpoint, data_dir = sys.argv[1], sys.argv[2]
firehose = boto3.client(
    "firehose",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="runnel",
    aws_secret_access_key="runnel",
    config=botocore.config.Config(retries={"max_attempts": 1}),
)


def raw(op, body):
    """A request boto3 would refuse to send; returns (status, body)."""
    return common_raw(op, body, endpoint, target="Firehose_20150804")


def objects(bucket):
    root = os.path.join(data_dir, "buckets", bucket)
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            if "#" not in name:
                found.append(os.path.relpath(os.path.join(folder, name), root))
    return sorted(found)


def wait_for(check, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def status_of(name):
    try:
        described = firehose.describe_delivery_stream(DeliveryStreamName=name)
    except firehose.exceptions.ResourceNotFoundException:
        return None
    return described["DeliveryStreamDescription"]["DeliveryStreamStatus"]


s3 = {
    "RoleARN": "arn:aws:iam::000000000000:role/firehose",
    "BucketARN": "arn:aws:s3:::lake",
    "Prefix": "orders/",
    "CompressionFormat": "GZIP",
    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
}
arn = firehose.create_delivery_stream(
    DeliveryStreamName="orders",
    DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration=s3,
    Tags=[{"Key": "team", "Value": "data"}],
)["DeliveryStreamARN"]
assert arn == "arn:aws:firehose:us-east-1:000000000000:deliverystream/orders", arn
expect_error("ResourceInUseException", firehose.create_delivery_stream,
             DeliveryStreamName="orders", ExtendedS3DestinationConfiguration=s3)

# CREATING, then ACTIVE once its tasks run.
assert status_of("orders") in ("CREATING", "ACTIVE")
assert wait_for(lambda: status_of("orders") == "ACTIVE")
description = firehose.describe_delivery_stream(DeliveryStreamName="orders")["DeliveryStreamDescription"]
assert description["DeliveryStreamType"] == "DirectPut"
assert description["VersionId"] == "1"
assert description["HasMoreDestinations"] is False
destination = description["Destinations"][0]
assert destination["DestinationId"] == "destinationId-000000000001"
extended = destination["ExtendedS3DestinationDescription"]
assert extended["BucketARN"] == "arn:aws:s3:::lake"
assert extended["CompressionFormat"] == "GZIP"
assert extended["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 0}
assert extended["EncryptionConfiguration"] == {"NoEncryptionConfig": "NoEncryption"}
assert destination["S3DestinationDescription"]["Prefix"] == "orders/"

# Records in: one, then a batch; every record is acknowledged with an id.
one = firehose.put_record(DeliveryStreamName="orders", Record={"Data": b'{"id": 0}\n'})
assert one["RecordId"] and one["Encrypted"] is False, one
batch = [{"Data": json.dumps({"id": i}).encode() + b"\n"} for i in range(1, 501)]
out = firehose.put_record_batch(DeliveryStreamName="orders", Records=batch)
assert out["FailedPutCount"] == 0, out
assert len(out["RequestResponses"]) == 500
ids = {r["RecordId"] for r in out["RequestResponses"]} | {one["RecordId"]}
assert len(ids) == 501, "record ids are unique"

# ... and out, as GZIP objects under the prefix, in the hourly default key.
def delivered():
    lines = []
    for key in objects("lake"):
        with open(os.path.join(data_dir, "buckets", "lake", key), "rb") as f:
            lines.extend(gzip.decompress(f.read()).splitlines())
    return lines

assert wait_for(lambda: len(delivered()) == 501), len(delivered())
assert sorted(json.loads(l)["id"] for l in delivered()) == list(range(501))
for key in objects("lake"):
    parts = key.split("/")
    assert parts[0] == "orders" and len(parts) == 6, key
    assert parts[5].startswith("orders-1-") and parts[5].endswith(".gz"), key

# UpdateDestination: guarded by the version; each change adds one.
expect_error("ConcurrentModificationException", firehose.update_destination,
             DeliveryStreamName="orders", CurrentDeliveryStreamVersionId="5",
             DestinationId="destinationId-000000000001",
             ExtendedS3DestinationUpdate={"CompressionFormat": "UNCOMPRESSED"})
firehose.update_destination(
    DeliveryStreamName="orders", CurrentDeliveryStreamVersionId="1",
    DestinationId="destinationId-000000000001",
    ExtendedS3DestinationUpdate={"CompressionFormat": "UNCOMPRESSED", "Prefix": "plain/"},
)
after = firehose.describe_delivery_stream(DeliveryStreamName="orders")["DeliveryStreamDescription"]
assert after["VersionId"] == "2", after["VersionId"]
assert after["Destinations"][0]["ExtendedS3DestinationDescription"]["CompressionFormat"] == "UNCOMPRESSED"
firehose.put_record(DeliveryStreamName="orders", Record={"Data": b"plain\n"})
assert wait_for(lambda: any(k.startswith("plain/") and "orders-2-" in k for k in objects("lake")))

# Listing, paged, and by type.
for name in ["a-stream", "b-stream"]:
    firehose.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3)
page = firehose.list_delivery_streams(Limit=2)
assert page["DeliveryStreamNames"] == ["a-stream", "b-stream"] and page["HasMoreDeliveryStreams"], page
rest = firehose.list_delivery_streams(ExclusiveStartDeliveryStreamName="b-stream")
assert rest["DeliveryStreamNames"] == ["orders"] and not rest["HasMoreDeliveryStreams"], rest
assert firehose.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"] == []

# Tags.
firehose.tag_delivery_stream(DeliveryStreamName="orders", Tags=[{"Key": "env", "Value": "test"}])
firehose.untag_delivery_stream(DeliveryStreamName="orders", TagKeys=["team"])
tags = firehose.list_tags_for_delivery_stream(DeliveryStreamName="orders")
assert tags["Tags"] == [{"Key": "env", "Value": "test"}] and not tags["HasMoreTags"], tags

# Bad input: AWS's error names, 400s, and the server keeps serving.
expect_error("ResourceNotFoundException", firehose.put_record,
             DeliveryStreamName="nope", Record={"Data": b"x"})
message = expect_error("ResourceNotFoundException", firehose.describe_delivery_stream, DeliveryStreamName="nope")
assert message == "Firehose nope under account 000000000000 not found.", message
status, body = raw("PutRecordBatch", {"DeliveryStreamName": "orders",
                                      "Records": [{"Data": "eA=="}] * 501})
assert status == 400 and body["__type"] == "ValidationException", (status, body)
assert "'records'" in body["message"] and "less than or equal to 500" in body["message"], body
status, body = raw("PutRecord", {"DeliveryStreamName": "orders", "Record": {"Data": "not base64!"}})
assert status == 400 and body["__type"] == "SerializationException", (status, body)
big = "A" * (1_400_000)  # 1,050,000 bytes once decoded
status, body = raw("PutRecord", {"DeliveryStreamName": "orders", "Record": {"Data": big}})
assert status == 400 and body["__type"] == "ValidationException", (status, body)
status, body = raw("PutRecordBatch", {"DeliveryStreamName": "orders",
                                      "Records": [{"Data": "A" * 1_360_000}] * 5})
assert status == 400 and body["__type"] == "InvalidArgumentException", (status, body)
status, body = raw("CreateDeliveryStream", {"DeliveryStreamName": "bad name!",
                                            "ExtendedS3DestinationConfiguration": dict(s3, BufferingHints={"SizeInMBs": 500})})
assert status == 400 and body["__type"] == "ValidationException", (status, body)
assert body["message"].startswith("2 validation errors detected"), body
assert "extendedS3DestinationConfiguration.bufferingHints.sizeInMBs" in body["message"], body
status, body = raw("CreateDeliveryStream", {"DeliveryStreamName": "snowflake", "SnowflakeDestinationConfiguration": {
    "AccountUrl": "https://example.invalid", "Database": "d", "Schema": "s", "Table": "t", "RoleARN": "r",
    "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}}})
assert status == 400 and body["__type"] == "InvalidArgumentException", (status, body)
assert "SnowflakeDestinationConfiguration" in body["message"], body
firehose.create_delivery_stream(DeliveryStreamName="redshift", RedshiftDestinationConfiguration={
    "RoleARN": "r", "ClusterJDBCURL": "jdbc:redshift://127.0.0.1:9/db",
    "CopyCommand": {"DataTableName": "t", "CopyOptions": "csv"}, "Username": "u", "Password": "password1",
    "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}})
redshift = firehose.describe_delivery_stream(DeliveryStreamName="redshift")["DeliveryStreamDescription"]
redshift = redshift["Destinations"][0]["RedshiftDestinationDescription"]
assert "Password" not in redshift and redshift["CopyCommand"]["DataTableName"] == "t", redshift
firehose.delete_delivery_stream(DeliveryStreamName="redshift")
firehose.create_delivery_stream(DeliveryStreamName="splunk", SplunkDestinationConfiguration={
    "HECEndpoint": "http://127.0.0.1:9", "HECEndpointType": "Event", "HECToken": "t",
    "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}})
splunk = firehose.describe_delivery_stream(DeliveryStreamName="splunk")["DeliveryStreamDescription"]
splunk = splunk["Destinations"][0]["SplunkDestinationDescription"]
assert splunk["HECEndpointType"] == "Event" and splunk["HECAcknowledgmentTimeoutInSeconds"] == 180, splunk
firehose.delete_delivery_stream(DeliveryStreamName="splunk")

# An HTTP endpoint destination is described as configured, its access key hidden.
firehose.create_delivery_stream(DeliveryStreamName="http", HttpEndpointDestinationConfiguration={
    "EndpointConfiguration": {"Url": "http://127.0.0.1:9/never", "Name": "hook", "AccessKey": "hidden"},
    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
    "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}})
http = firehose.describe_delivery_stream(DeliveryStreamName="http")["DeliveryStreamDescription"]["Destinations"][0]
http = http["HttpEndpointDestinationDescription"]
assert http["EndpointConfiguration"] == {"Url": "http://127.0.0.1:9/never", "Name": "hook"}, http
assert http["S3BackupMode"] == "FailedDataOnly" and http["RetryOptions"] == {"DurationInSeconds": 300}, http
assert http["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::b", http
firehose.delete_delivery_stream(DeliveryStreamName="http")

# So is an OpenSearch destination, AWS's defaults filled in.
firehose.create_delivery_stream(DeliveryStreamName="search", AmazonopensearchserviceDestinationConfiguration={
    "RoleARN": "r", "ClusterEndpoint": "http://127.0.0.1:9", "IndexName": "logs",
    "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}})
search = firehose.describe_delivery_stream(DeliveryStreamName="search")["DeliveryStreamDescription"]["Destinations"][0]
search = search["AmazonopensearchserviceDestinationDescription"]
assert search["IndexName"] == "logs" and search["IndexRotationPeriod"] == "OneDay", search
assert search["S3BackupMode"] == "FailedDocumentsOnly", search
message = expect_error("InvalidArgumentException", firehose.create_delivery_stream,
                       DeliveryStreamName="domain", AmazonopensearchserviceDestinationConfiguration={
                           "RoleARN": "r", "DomainARN": "arn:aws:es:us-east-1:000000000000:domain/d",
                           "IndexName": "logs", "S3Configuration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}})
assert "ClusterEndpoint" in message, message
firehose.delete_delivery_stream(DeliveryStreamName="search")
message = expect_error("InvalidArgumentException", firehose.create_delivery_stream,
                       DeliveryStreamName="exprs", ExtendedS3DestinationConfiguration=dict(s3, Prefix="a/!{timestamp:yyyy}/"))
assert "ErrorOutputPrefix" in message, message
message = expect_error("InvalidArgumentException", firehose.create_delivery_stream,
                       DeliveryStreamName="exprs", ExtendedS3DestinationConfiguration=dict(
                           s3, Prefix="a/!{nope:x}/", ErrorOutputPrefix="e/"))
assert "nope" in message, message

# Server-side encryption needs the server's key, which this server lacks.
message = expect_error("InvalidArgumentException", firehose.start_delivery_stream_encryption,
                       DeliveryStreamName="orders",
                       DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
assert "streams.encryption_key" in message, message
described = firehose.describe_delivery_stream(DeliveryStreamName="orders")["DeliveryStreamDescription"]
assert described["DeliveryStreamEncryptionConfiguration"] == {"Status": "DISABLED"}, described
firehose.stop_delivery_stream_encryption(DeliveryStreamName="orders")

# Delete: DELETING, taking no records and no changes, then gone from
# describe and list.
firehose.delete_delivery_stream(DeliveryStreamName="a-stream")
assert status_of("a-stream") in ("DELETING", None)
expect_error("ResourceNotFoundException", firehose.put_record,
             DeliveryStreamName="a-stream", Record={"Data": b"late"})
assert wait_for(lambda: status_of("a-stream") is None)
expect_error("ResourceNotFoundException", firehose.describe_delivery_stream, DeliveryStreamName="a-stream")
assert "a-stream" not in firehose.list_delivery_streams()["DeliveryStreamNames"]
assert firehose.describe_delivery_stream(DeliveryStreamName="orders")["DeliveryStreamDescription"]["DeliveryStreamName"] == "orders"

# Dynamic partitioning: a jq query's keys choose each record's prefix.
firehose.create_delivery_stream(DeliveryStreamName="by-customer", ExtendedS3DestinationConfiguration=dict(
    s3, BucketARN="arn:aws:s3:::partitioned", CompressionFormat="UNCOMPRESSED",
    Prefix="customer=!{partitionKeyFromQuery:customer}/year=!{timestamp:yyyy}/",
    ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
    DynamicPartitioningConfiguration={"Enabled": True},
    ProcessingConfiguration={"Enabled": True, "Processors": [
        {"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .customer}"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
        {"Type": "AppendDelimiterToRecord"}]}))
firehose.put_record_batch(DeliveryStreamName="by-customer", Records=[
    {"Data": json.dumps({"customer": c, "n": n}).encode()} for n, c in enumerate("aabab")])
assert wait_for(lambda: len(objects("partitioned")) == 2), objects("partitioned")
year = time.strftime("%Y", time.gmtime())
for key in objects("partitioned"):
    customer = key.split("/")[0]
    assert customer in ("customer=a", "customer=b") and key.split("/")[1] == f"year={year}", key
    with open(os.path.join(data_dir, "buckets", "partitioned", key)) as f:
        rows = [json.loads(line) for line in f]
    assert {r["customer"] for r in rows} == {customer.split("=")[1]}, rows

# KinesisStreamAsSource: a Kinesis stream's records, from its trim horizon.
kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="runnel", aws_secret_access_key="runnel")
kinesis.create_stream(StreamName="clicks", ShardCount=2)
kinesis.get_waiter("stream_exists").wait(StreamName="clicks", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
kinesis.put_records(StreamName="clicks", Records=[
    {"Data": f"click-{i}\n".encode(), "PartitionKey": str(i)} for i in range(200)])
stream_arn = kinesis.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]["StreamARN"]
firehose.create_delivery_stream(
    DeliveryStreamName="clicks-to-lake", DeliveryStreamType="KinesisStreamAsSource",
    KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": "arn:aws:iam::000000000000:role/r"},
    ExtendedS3DestinationConfiguration=dict(s3, BucketARN="arn:aws:s3:::clicks", CompressionFormat="UNCOMPRESSED"))
source = firehose.describe_delivery_stream(DeliveryStreamName="clicks-to-lake")["DeliveryStreamDescription"]
assert source["DeliveryStreamType"] == "KinesisStreamAsSource", source
assert source["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == stream_arn, source
expect_error("InvalidArgumentException", firehose.put_record,
             DeliveryStreamName="clicks-to-lake", Record={"Data": b"x"})

def clicks():
    lines = []
    for key in objects("clicks"):
        with open(os.path.join(data_dir, "buckets", "clicks", key), "rb") as f:
            lines.extend(f.read().splitlines())
    return lines

assert wait_for(lambda: len(clicks()) == 200), len(clicks())
assert sorted(clicks()) == sorted(f"click-{i}".encode() for i in range(200))

# /metrics counts the stream's records.
with urllib.request.urlopen(endpoint + "/metrics", timeout=30) as response:
    metrics = response.read().decode()
assert 'runnel_firehose_delivered_records{delivery_stream="orders"} 502' in metrics, \
    [l for l in metrics.splitlines() if "firehose" in l]

done()
