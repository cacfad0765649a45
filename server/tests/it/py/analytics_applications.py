"""The Kinesis Analytics V2 API with boto3's `kinesisanalyticsv2`: a Flink
SQL application created, started, fed through a Kinesis stream, updated,
stopped and deleted, with AWS's statuses and errors.

Usage: analytics_applications.py <endpoint>"""

import json
import sys
import time
import urllib.request

import boto3
import botocore.config
from botocore.exceptions import ClientError

from common import client, done, wait_active

ENDPOINT = sys.argv[1]
kinesis = client()
analytics = boto3.client(
    "kinesisanalyticsv2",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="runnel",
    aws_secret_access_key="runnel",
    config=botocore.config.Config(retries={"max_attempts": 1}),
)
ROLE = "arn:aws:iam::000000000000:role/runnel"


def code_error(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError(f"{call.__name__} should have failed")


def wait_status(name, status, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        detail = analytics.describe_application(ApplicationName=name)["ApplicationDetail"]
        if detail["ApplicationStatus"] == status:
            return detail
        time.sleep(0.2)
    raise AssertionError(f"{name} never became {status}: {detail['ApplicationStatus']}")


def read_values(stream):
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [json.loads(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]


for name in ["orders", "big-orders"]:
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)

CODE = """
CREATE TABLE orders (id BIGINT, amount DOUBLE) WITH (
    'connector' = 'kinesis', 'stream.arn' = 'arn:aws:kinesis:eu-west-1:123456789012:stream/orders',
    'aws.region' = 'eu-west-1', 'source.init.position' = 'TRIM_HORIZON', 'format' = 'json');
CREATE TABLE big_orders (id BIGINT, amount DOUBLE) WITH (
    'connector' = 'kinesis', 'stream' = '${app.output}', 'format' = 'json');
INSERT INTO big_orders SELECT id, amount FROM orders WHERE amount > ${app.threshold};
"""
properties = {
    "PropertyGroups": [
        {"PropertyGroupId": "app", "PropertyMap": {"output": "big-orders", "threshold": "100"}}
    ]
}

created = analytics.create_application(
    ApplicationName="big-orders",
    RuntimeEnvironment="FLINK-1_20",
    ServiceExecutionRole=ROLE,
    ApplicationConfiguration={
        "ApplicationCodeConfiguration": {
            "CodeContentType": "PLAINTEXT",
            "CodeContent": {"TextContent": CODE},
        },
        "FlinkApplicationConfiguration": {
            "ParallelismConfiguration": {"ConfigurationType": "CUSTOM", "Parallelism": 2},
        },
        "EnvironmentProperties": properties,
    },
    Tags=[{"Key": "team", "Value": "data"}],
)["ApplicationDetail"]
assert created["ApplicationStatus"] == "READY" and created["ApplicationVersionId"] == 1, created
assert created["ApplicationARN"] == "arn:aws:kinesisanalytics:us-east-1:000000000000:application/big-orders"
flink = created["ApplicationConfigurationDescription"]["FlinkApplicationConfigurationDescription"]
assert flink["ParallelismConfigurationDescription"]["Parallelism"] == 2, flink
assert flink["CheckpointConfigurationDescription"]["CheckpointInterval"] == 60000, flink

code, message = code_error(
    analytics.create_application,
    ApplicationName="big-orders",
    RuntimeEnvironment="FLINK-1_20",
    ServiceExecutionRole=ROLE,
    ApplicationConfiguration={
        "ApplicationCodeConfiguration": {"CodeContentType": "PLAINTEXT", "CodeContent": {"TextContent": CODE}},
        "EnvironmentProperties": properties,
    },
)
assert code == "ResourceInUseException", (code, message)
code, message = code_error(
    analytics.create_application,
    ApplicationName="broken",
    RuntimeEnvironment="FLINK-1_20",
    ServiceExecutionRole=ROLE,
    ApplicationConfiguration={
        "ApplicationCodeConfiguration": {
            "CodeContentType": "PLAINTEXT",
            "CodeContent": {"TextContent": "SELECT 1 FROM\nWHERE x"},
        }
    },
)
assert code == "CodeValidationException" and "at line 2, column" in message, (code, message)
code, message = code_error(
    analytics.create_application,
    ApplicationName="jar",
    RuntimeEnvironment="FLINK-1_20",
    ServiceExecutionRole=ROLE,
    ApplicationConfiguration={
        "ApplicationCodeConfiguration": {
            "CodeContentType": "ZIPFILE",
            "CodeContent": {"ZipFileContent": b"PK"},
        }
    },
)
assert code == "InvalidArgumentException" and "PLAINTEXT" in message, (code, message)
code, _ = code_error(analytics.describe_application, ApplicationName="nope")
assert code == "ResourceNotFoundException"
code, _ = code_error(analytics.stop_application, ApplicationName="big-orders")
assert code == "ResourceInUseException"

analytics.start_application(ApplicationName="big-orders")
wait_status("big-orders", "RUNNING")
code, _ = code_error(analytics.start_application, ApplicationName="big-orders")
assert code == "ResourceInUseException"
with urllib.request.urlopen(ENDPOINT + "/v1/jobs", timeout=10) as response:
    jobs = json.loads(response.read())["jobs"]
assert any(j["name"] == "big-orders" and j["status"] == "RUNNING" for j in jobs), jobs

for i, amount in enumerate([50.0, 150.0, 99.0, 300.0]):
    kinesis.put_record(
        StreamName="orders", Data=json.dumps({"id": i, "amount": amount}).encode(), PartitionKey=str(i)
    )
deadline = time.time() + 30
while len(read_values("big-orders")) < 2 and time.time() < deadline:
    time.sleep(0.2)
assert sorted(v["id"] for v in read_values("big-orders")) == [1, 3], read_values("big-orders")

detail = analytics.describe_application(ApplicationName="big-orders", IncludeAdditionalDetails=True)[
    "ApplicationDetail"
]
assert "JobPlanDescription" in detail["ApplicationConfigurationDescription"]["FlinkApplicationConfigurationDescription"]

# A stale version is refused; the current one moves the version on, and the
# new threshold applies once the job has restarted.
code, _ = code_error(
    analytics.update_application,
    ApplicationName="big-orders",
    CurrentApplicationVersionId=7,
    ApplicationConfigurationUpdate={
        "EnvironmentPropertyUpdates": {"PropertyGroups": properties["PropertyGroups"]}
    },
)
assert code == "ConcurrentModificationException", code
updated = analytics.update_application(
    ApplicationName="big-orders",
    CurrentApplicationVersionId=1,
    ApplicationConfigurationUpdate={
        "EnvironmentPropertyUpdates": {
            "PropertyGroups": [
                {"PropertyGroupId": "app", "PropertyMap": {"output": "big-orders", "threshold": "200"}}
            ]
        }
    },
)["ApplicationDetail"]
assert updated["ApplicationVersionId"] == 2, updated
wait_status("big-orders", "RUNNING")

summaries = analytics.list_applications()["ApplicationSummaries"]
assert [s["ApplicationName"] for s in summaries] == ["big-orders"], summaries
arn = updated["ApplicationARN"]
analytics.tag_resource(ResourceARN=arn, Tags=[{"Key": "stage", "Value": "test"}])
tags = {t["Key"]: t["Value"] for t in analytics.list_tags_for_resource(ResourceARN=arn)["Tags"]}
assert tags == {"team": "data", "stage": "test"}, tags
analytics.untag_resource(ResourceARN=arn, TagKeys=["team"])

# Outputs as resources are for SQL-based applications; a Flink
# application's are the tables its SQL writes.
code, message = code_error(
    analytics.add_application_output,
    ApplicationName="big-orders",
    CurrentApplicationVersionId=2,
    Output={"Name": "extra", "KinesisStreamsOutput": {"ResourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/orders"},
            "DestinationSchema": {"RecordFormatType": "JSON"}},
)
assert code == "InvalidArgumentException" and "SQL-based" in message, (code, message)
code, _ = code_error(
    analytics.delete_application_output, ApplicationName="nope", CurrentApplicationVersionId=1, OutputId="1.1"
)
assert code == "ResourceNotFoundException", code

analytics.stop_application(ApplicationName="big-orders")
stopped = wait_status("big-orders", "READY")
code, _ = code_error(
    analytics.delete_application, ApplicationName="big-orders", CreateTimestamp=0
)
assert code == "InvalidArgumentException", code
analytics.delete_application(
    ApplicationName="big-orders", CreateTimestamp=stopped["CreateTimestamp"]
)
assert analytics.list_applications()["ApplicationSummaries"] == []

done()
