"""The Kinesis Analytics V2 API with boto3's `kinesisanalyticsv2`: a Flink
SQL application created, started, fed through a Kinesis stream, updated,
stopped and deleted, with AWS's statuses and errors.

Usage: analytics_applications.py <endpoint>"""

import datetime
import json
import random
import sys
import time
import urllib.request

import boto3
import botocore.config
import duckdb
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

CHECKPOINTS = {
    "ConfigurationType": "CUSTOM",
    "CheckpointingEnabled": True,
    "CheckpointInterval": 300,
    "MinPauseBetweenCheckpoints": 0,
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
            # Exactly-once output appears when the checkpoint covering it
            # completes: a short interval keeps the test quick.
            "CheckpointConfiguration": CHECKPOINTS,
        },
        "EnvironmentProperties": properties,
    },
    Tags=[{"Key": "team", "Value": "data"}],
)["ApplicationDetail"]
assert created["ApplicationStatus"] == "READY" and created["ApplicationVersionId"] == 1, created
assert created["ApplicationARN"] == "arn:aws:kinesisanalytics:us-east-1:000000000000:application/big-orders"
flink = created["ApplicationConfigurationDescription"]["FlinkApplicationConfigurationDescription"]
assert flink["ParallelismConfigurationDescription"]["Parallelism"] == 2, flink
assert flink["CheckpointConfigurationDescription"]["CheckpointInterval"] == 300, flink

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

# --- an application with a windowed aggregation, against DuckDB's answer ----

for name, shards in [("sales", 4), ("sales-per-minute", 1)]:
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    wait_active(kinesis, name)
TOTALS = """
CREATE TABLE sales (store STRING, amount BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'kinesis', 'stream' = 'sales', 'source.init.position' = 'TRIM_HORIZON', 'format' = 'json');
CREATE TABLE totals (window_start TIMESTAMP(3), store STRING, total BIGINT, sales BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'sales-per-minute', 'format' = 'json');
INSERT INTO totals
SELECT window_start, store, SUM(amount), COUNT(*)
FROM TABLE(TUMBLE(TABLE sales, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, store;
"""
analytics.create_application(
    ApplicationName="sales-per-minute",
    RuntimeEnvironment="FLINK-1_20",
    ServiceExecutionRole=ROLE,
    ApplicationConfiguration={
        "ApplicationCodeConfiguration": {"CodeContentType": "PLAINTEXT", "CodeContent": {"TextContent": TOTALS}},
        "FlinkApplicationConfiguration": {
            "ParallelismConfiguration": {"ConfigurationType": "CUSTOM", "Parallelism": 2},
            "CheckpointConfiguration": CHECKPOINTS,
        },
        "ApplicationSnapshotConfiguration": {"SnapshotsEnabled": True},
    },
)
analytics.start_application(ApplicationName="sales-per-minute")
wait_status("sales-per-minute", "RUNNING")


def sql_time(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


random.seed(5)
base = 1_700_000_040_000  # a whole minute


def send_sales(start):
    """2000 sales over the ten minutes from `start`, then one an hour later
    on every shard, which moves every shard's watermark past the last
    window (its own window stays open). The sales and the closers, for
    the oracle."""
    sales = sorted(
        ((f"s{random.randrange(6)}", random.randrange(1, 500), start + random.randrange(0, 600_000)) for _ in range(2000)),
        key=lambda sale: sale[2],
    )
    for i in range(0, len(sales), 500):
        out = kinesis.put_records(StreamName="sales", Records=[
            {"Data": json.dumps({"store": store, "amount": amount, "ts": sql_time(ts)}).encode(), "PartitionKey": store + str(k)}
            for k, (store, amount, ts) in enumerate(sales[i:i + 500])])
        assert out["FailedRecordCount"] == 0, out
    closers = []
    for shard in kinesis.list_shards(StreamName="sales")["Shards"]:
        kinesis.put_record(StreamName="sales", PartitionKey="closer", ExplicitHashKey=shard["HashKeyRange"]["StartingHashKey"],
                           Data=json.dumps({"store": "closer", "amount": 0, "ts": sql_time(start + 3_600_000)}).encode())
        closers.append(("closer", 0, start + 3_600_000))
    return sales, closers


def per_minute(sales):
    batch = duckdb.connect()
    batch.execute("CREATE TABLE sales (store VARCHAR, amount BIGINT, ts_ms BIGINT)")
    batch.executemany("INSERT INTO sales VALUES (?, ?, ?)", sales)
    return sorted(
        (sql_time(start), store, total, count)
        for start, store, total, count in batch.execute(
            "SELECT ts_ms // 60000 * 60000, store, SUM(amount), COUNT(*) FROM sales GROUP BY ALL"
        ).fetchall()
    )


def totals_reach(expected):
    deadline = time.time() + 60
    got = []
    while time.time() < deadline:
        got = sorted((r["window_start"], r["store"], r["total"], r["sales"]) for r in read_values("sales-per-minute"))
        if len(got) >= len(expected):
            break
        time.sleep(0.2)
    # Anything written twice would show a little later.
    time.sleep(1)
    got = sorted((r["window_start"], r["store"], r["total"], r["sales"]) for r in read_values("sales-per-minute"))
    assert got == expected, f"totals differ: {sorted(set(got) ^ set(expected))[:10]}, {len(got)} vs {len(expected)}"


first, first_closers = send_sales(base)
expected = per_minute(first)
totals_reach(expected)

# Snapshots: one asked for, and one StopApplication takes; the next start
# restores the latest, so the job goes on where it stopped: the second
# batch's windows are added, none of the first's written again.
analytics.create_application_snapshot(ApplicationName="sales-per-minute", SnapshotName="after-first")
code, _ = code_error(analytics.create_application_snapshot, ApplicationName="sales-per-minute", SnapshotName="after-first")
assert code == "InvalidArgumentException", code
snapshot = analytics.describe_application_snapshot(ApplicationName="sales-per-minute", SnapshotName="after-first")["SnapshotDetails"]
assert snapshot["SnapshotStatus"] == "READY" and snapshot["SnapshotName"] == "after-first", snapshot
code, _ = code_error(analytics.describe_application_snapshot, ApplicationName="sales-per-minute", SnapshotName="nope")
assert code == "ResourceNotFoundException", code
analytics.stop_application(ApplicationName="sales-per-minute")
wait_status("sales-per-minute", "READY")
summaries = analytics.list_application_snapshots(ApplicationName="sales-per-minute")["SnapshotSummaries"]
assert len(summaries) == 2 and summaries[0]["SnapshotName"] == "after-first", summaries
second, _ = send_sales(base + 7_200_000)
analytics.start_application(ApplicationName="sales-per-minute")
wait_status("sales-per-minute", "RUNNING")
# The later sales close the window the first batch's closers opened.
totals_reach(per_minute(first + first_closers + second))
analytics.delete_application_snapshot(
    ApplicationName="sales-per-minute", SnapshotName="after-first",
    SnapshotCreationTimestamp=snapshot["SnapshotCreationTimestamp"],
)
summaries = analytics.list_application_snapshots(ApplicationName="sales-per-minute")["SnapshotSummaries"]
assert [s["SnapshotName"] for s in summaries] != ["after-first"] and len(summaries) == 1, summaries
analytics.stop_application(ApplicationName="sales-per-minute", Force=True)
wait_status("sales-per-minute", "READY")

done()
