"""SQL jobs inside the server over Kinesis streams: boto3 writes clicks to a
4-shard stream (split and merged halfway) while a job submitted with
`runnel jobs submit` counts them per page in 10-second tumbling windows into
another stream; boto3 reads the counts back and they must equal the counts
computed here from the input.
A bare SELECT's rows are followed over server-sent events; a job fed a
malformed record fails alone; records aggregated by the Kinesis Producer
Library (made by PyPI's aws-kinesis-agg) are read as their user records; a
script with an error is refused with its position.

Usage: analytics_jobs.py <endpoint> <runnel binary>"""

import collections
import datetime
import json
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import duckdb

from common import client, done, runnel_api, wait_active

ENDPOINT, RUNNEL = sys.argv[1], sys.argv[2]
ACCOUNT_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream"
kinesis = client()


def http(method, path, body=None):
    return runnel_api(ENDPOINT, method, path, body)


def runnel(*args, stdin=None):
    return subprocess.run(
        [RUNNEL, "jobs", "--endpoint", ENDPOINT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for(what, check, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def sql_time(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S.%f"
    )[:-3]


def read_all(stream):
    rows = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for _ in range(100):
            out = kinesis.get_records(ShardIterator=iterator)
            rows.extend(json.loads(r["Data"]) for r in out["Records"])
            iterator = out.get("NextShardIterator")
            if not iterator or (not out["Records"] and out["MillisBehindLatest"] == 0):
                break
    return rows


# --- a windowed aggregation from one stream into another -------------------

for name, shards in [("clicks", 4), ("counts", 1)]:
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    wait_active(kinesis, name)

WINDOWED = f"""
CREATE TABLE clicks (
    user_id BIGINT,
    page STRING,
    ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
    'connector' = 'kinesis',
    'stream.arn' = '{ACCOUNT_ARN}/clicks',
    'aws.region' = 'us-east-1',
    'source.init.position' = 'TRIM_HORIZON',
    'format' = 'json'
);
CREATE TABLE counts (
    window_start TIMESTAMP(3),
    window_end TIMESTAMP(3),
    page STRING,
    clicks BIGINT
) PARTITIONED BY (page) WITH (
    'connector' = 'kinesis',
    'stream.arn' = '{ACCOUNT_ARN}/counts',
    'aws.region' = 'us-east-1',
    'format' = 'json'
);
INSERT INTO counts
SELECT window_start, window_end, page, COUNT(*) AS clicks
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, page;
"""

submitted = runnel("submit", "-", "--name", "click-counts", "--parallelism", "2", stdin=WINDOWED)
assert submitted.returncode == 0, submitted.stderr
job_id = submitted.stdout.strip()
assert len(job_id) == 32, job_id

random.seed(7)
base = 1_700_000_000_000  # a multiple of 10 s
events = sorted(
    (base + random.randrange(0, 100_000), random.randrange(1000), f"p{random.randrange(5)}")
    for _ in range(4000)
)
# The batch answer over the same clicks, from DuckDB.
batch = duckdb.connect()
batch.execute("CREATE TABLE clicks (ts_ms BIGINT, user_id BIGINT, page VARCHAR)")
batch.executemany("INSERT INTO clicks VALUES (?, ?, ?)", events)
expected = collections.Counter()
for start, page, clicks in batch.execute(
    "SELECT ts_ms // 10000 * 10000 AS start, page, COUNT(*) FROM clicks GROUP BY ALL"
).fetchall():
    expected[(sql_time(start), sql_time(start + 10_000), page)] = clicks

for i in range(0, len(events), 500):
    if i == len(events) // 2:
        # The stream is resharded while the job reads it: a split and a
        # merge; children are read after their parents, nothing is lost.
        shards = kinesis.list_shards(StreamName="clicks")["Shards"]
        first = shards[0]["HashKeyRange"]
        middle = (int(first["StartingHashKey"]) + int(first["EndingHashKey"])) // 2
        kinesis.split_shard(
            StreamName="clicks", ShardToSplit=shards[0]["ShardId"], NewStartingHashKey=str(middle)
        )
        wait_active(kinesis, "clicks")
        kinesis.merge_shards(
            StreamName="clicks",
            ShardToMerge=shards[2]["ShardId"],
            AdjacentShardToMerge=shards[3]["ShardId"],
        )
        wait_active(kinesis, "clicks")
    records = [
        {
            "Data": json.dumps({"user_id": user, "page": page, "ts": sql_time(ts)}).encode(),
            "PartitionKey": f"user-{user}",
        }
        for ts, user, page in events[i : i + 500]
    ]
    out = kinesis.put_records(StreamName="clicks", Records=records)
    assert out["FailedRecordCount"] == 0, out
# Each open shard's watermark must pass the last window: a click far later
# on every one closes them (its own window stays open).
open_shards = [
    shard
    for shard in kinesis.list_shards(StreamName="clicks")["Shards"]
    if "EndingSequenceNumber" not in shard["SequenceNumberRange"]
]
assert len(open_shards) == 4, open_shards
for key in (shard["HashKeyRange"]["StartingHashKey"] for shard in open_shards):
    kinesis.put_record(
        StreamName="clicks",
        Data=json.dumps({"user_id": 0, "page": "late", "ts": sql_time(base + 200_000)}).encode(),
        PartitionKey="closer",
        ExplicitHashKey=key,
    )


def counted():
    rows = read_all("counts")
    got = collections.Counter()
    for row in rows:
        got[(row["window_start"], row["window_end"], row["page"])] += row["clicks"]
    return got if sum(got.values()) >= len(events) else None


got = wait_for("the windowed counts", counted)
assert got == expected, f"counts differ: {sorted(set(got.items()) ^ set(expected.items()))[:10]}"

status, job = http("GET", f"/v1/jobs/{job_id}")
assert status == 200 and job["status"] == "RUNNING", job
assert job["name"] == "click-counts" and job["parallelism"] == 2, job
assert "Source" in job["plan"] or "TUMBLE" in job["plan"].upper(), job["plan"]
(source,) = job["sources"]
assert source["table"] == "clicks" and source["rows_read"] == len(events) + 4, source
# Seven shards were read: four, then a split's two children and a merge's one;
# the three parents were read to their end.
assert len(source["shards"]) == 7, source
assert sum(1 for s in source["shards"] if s["finished"]) == 3, source
(sink,) = job["sinks"]
assert sink["table"] == "counts" and sink["rows_written"] == len(expected), sink

with urllib.request.urlopen(ENDPOINT + "/metrics", timeout=10) as response:
    metrics = response.read().decode()
labels = f'{{job="{job_id}",name="click-counts"}}'
assert f"runnel_job_running{labels} 1" in metrics, metrics
assert f"runnel_job_rows_in{labels} {len(events) + 4}" in metrics, metrics
assert f"runnel_job_watermark_lag_milliseconds{labels}" in metrics, metrics

listed = runnel("list")
assert listed.returncode == 0 and job_id in listed.stdout and "RUNNING" in listed.stdout, listed

stopped = runnel("stop", job_id)
assert stopped.returncode == 0, stopped.stderr
wait_for("the job to stop", lambda: http("GET", f"/v1/jobs/{job_id}")[1]["status"] == "STOPPED")
# Stopping ends the sources: the window of the closing clicks fires too.
assert sum(1 for r in read_all("counts") if r["page"] == "late") == 1

# A job that has not ended cannot be deleted; one that has can.
deleted = runnel("delete", job_id)
assert deleted.returncode == 0, deleted.stderr
assert http("GET", f"/v1/jobs/{job_id}")[0] == 404

# --- an interval join of two streams, against DuckDB's answer ---------------

for name, shards in [("orders", 4), ("payments", 4), ("paid", 1)]:
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    wait_active(kinesis, name)


def stream_table(name, columns):
    return f"""CREATE TABLE {name} ({columns}, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'kinesis', 'stream' = '{name}', 'source.init.position' = 'TRIM_HORIZON', 'format' = 'json');"""


JOINED = "\n".join([
    stream_table("orders", "id BIGINT, amount BIGINT, ts TIMESTAMP(3)"),
    stream_table("payments", "order_id BIGINT, paid BIGINT, ts TIMESTAMP(3)"),
    """CREATE TABLE paid (id BIGINT, amount BIGINT, paid BIGINT, order_ts TIMESTAMP(3), paid_ts TIMESTAMP(3))
WITH ('connector' = 'kinesis', 'stream' = 'paid', 'format' = 'json');
INSERT INTO paid
SELECT o.id, o.amount, p.paid, o.ts, p.ts
FROM orders o JOIN payments p
  ON o.id = p.order_id AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '5' SECOND;""",
])
submitted = runnel("submit", "-", "--name", "paid-orders", "--parallelism", "2", stdin=JOINED)
assert submitted.returncode == 0, submitted.stderr
join_id = submitted.stdout.strip()

random.seed(11)
orders = [(i, random.randrange(1, 1000), base + i * 100) for i in range(600)]
# Most orders are paid within 8 s (so some too late to join), some twice,
# some never; a few payments name no order.
payments = sorted(
    [(i, amount, ts + random.randrange(0, 8_000)) for i, amount, ts in orders if random.random() < 0.8]
    + [(i, 1, ts + random.randrange(0, 3_000)) for i, _, ts in orders if random.random() < 0.1]
    + [(10_000 + j, 5, base + random.randrange(0, 60_000)) for j in range(20)],
    key=lambda p: p[2],
)
for stream, rows in (("orders", [{"id": i, "amount": a, "ts": sql_time(t)} for i, a, t in orders]),
                     ("payments", [{"order_id": i, "paid": a, "ts": sql_time(t)} for i, a, t in payments])):
    for i in range(0, len(rows), 500):
        out = kinesis.put_records(StreamName=stream, Records=[
            {"Data": json.dumps(row).encode(), "PartitionKey": str(k)} for k, row in enumerate(rows[i:i + 500], i)])
        assert out["FailedRecordCount"] == 0, out

batch.execute("CREATE TABLE orders (id BIGINT, amount BIGINT, ts_ms BIGINT)")
batch.executemany("INSERT INTO orders VALUES (?, ?, ?)", orders)
batch.execute("CREATE TABLE payments (order_id BIGINT, paid BIGINT, ts_ms BIGINT)")
batch.executemany("INSERT INTO payments VALUES (?, ?, ?)", payments)
joined = sorted(
    (i, amount, paid, sql_time(order_ts), sql_time(paid_ts))
    for i, amount, paid, order_ts, paid_ts in batch.execute(
        """SELECT o.id, o.amount, p.paid, o.ts_ms, p.ts_ms FROM orders o JOIN payments p
           ON o.id = p.order_id AND p.ts_ms BETWEEN o.ts_ms AND o.ts_ms + 5000"""
    ).fetchall()
)
assert 300 < len(joined) < len(payments), len(joined)


def all_paid():
    rows = read_all("paid")
    return rows if len(rows) >= len(joined) else None


got_joined = sorted(
    (r["id"], r["amount"], r["paid"], r["order_ts"], r["paid_ts"]) for r in wait_for("the joined rows", all_paid)
)
assert got_joined == joined, f"joins differ: {sorted(set(got_joined) ^ set(joined))[:10]}"
runnel("stop", join_id)

# --- a bare SELECT, followed over server-sent events ------------------------

kinesis.create_stream(StreamName="readings", ShardCount=2)
wait_active(kinesis, "readings")
status, job = http(
    "POST",
    "/v1/jobs",
    {
        "sql": f"""
CREATE TABLE readings (sensor STRING, celsius DOUBLE) WITH (
    'connector' = 'kinesis', 'stream' = 'readings', 'format' = 'json');
SELECT sensor, celsius * 9 / 5 + 32 AS fahrenheit FROM readings WHERE celsius > 0;
""",
        "name": "hot",
    },
)
assert status == 201, job
select_id = job["id"]
followed = []


def follow():
    with urllib.request.urlopen(ENDPOINT + f"/v1/jobs/{select_id}/results", timeout=30) as response:
        event = None
        for line in response:
            line = line.decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "row":
                followed.append(json.loads(line.split(":", 1)[1]))
                if len(followed) == 2:
                    return


follower = threading.Thread(target=follow, daemon=True)
follower.start()
time.sleep(0.5)  # the follower connects; rows before it are not replayed
for sensor, celsius in [("a", 10.0), ("b", -5.0), ("c", 100.0)]:
    kinesis.put_record(
        StreamName="readings",
        Data=json.dumps({"sensor": sensor, "celsius": celsius}).encode(),
        PartitionKey=sensor,
    )
follower.join(timeout=30)
assert sorted(map(json.dumps, followed)) == sorted(
    map(json.dumps, [{"op": "+I", "row": ["a", 50.0]}, {"op": "+I", "row": ["c", 212.0]}])
), followed

# --- a malformed record fails its own job only ------------------------------

kinesis.create_stream(StreamName="bad", ShardCount=1)
wait_active(kinesis, "bad")
status, job = http(
    "POST",
    "/v1/jobs",
    {
        "sql": """
CREATE TABLE bad (k BIGINT) WITH ('connector' = 'kinesis', 'stream' = 'bad', 'format' = 'json',
  'scan.stream.initpos' = 'TRIM_HORIZON');
CREATE TABLE sink (k BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO sink SELECT k FROM bad;
""",
        "name": "fragile",
    },
)
assert status == 201, job
# From the trim horizon: the record is read however late the job starts.
kinesis.put_record(StreamName="bad", Data=b"{not json", PartitionKey="x")
failed = wait_for(
    "the fragile job to fail",
    lambda: (lambda j: j if j["status"] == "FAILED" else None)(http("GET", f"/v1/jobs/{job['id']}")[1]),
)
assert "bad" in failed["error"], failed
assert http("GET", f"/v1/jobs/{select_id}")[1]["status"] == "RUNNING"

# --- records aggregated by the Kinesis Producer Library ---------------------

from aws_kinesis_agg.aggregator import RecordAggregator

for name in ("kpl", "kpl-out"):
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
KPL_SQL = """
CREATE TABLE kpl (
    k BIGINT,
    seq STRING METADATA FROM 'sequence-number' VIRTUAL,
    sub BIGINT METADATA FROM 'sub-sequence-number' VIRTUAL,
    shard STRING METADATA FROM 'shard-id' VIRTUAL,
    arrival TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
) WITH ('connector' = 'kinesis', 'stream' = 'kpl', 'format' = 'json',
    'source.init.position' = 'TRIM_HORIZON');
CREATE TABLE kpl_out (k BIGINT, seq STRING, sub BIGINT, shard STRING, arrival STRING)
    WITH ('connector' = 'kinesis', 'stream' = 'kpl-out', 'format' = 'json');
INSERT INTO kpl_out SELECT k, seq, sub, shard, CAST(arrival AS STRING) FROM kpl;
"""
status, job = http("POST", "/v1/jobs", {"sql": KPL_SQL, "name": "deaggregate"})
assert status == 201, job
aggregator = RecordAggregator()
for k in range(100):
    assert aggregator.add_user_record(f"key-{k}", json.dumps({"k": k}).encode()) is None
partition_key, hash_key, data = aggregator.clear_and_get().get_contents()
put = {"StreamName": "kpl", "Data": data, "PartitionKey": partition_key}
if hash_key:
    put["ExplicitHashKey"] = hash_key
before_put = time.time()
aggregated_seq = kinesis.put_record(**put)["SequenceNumber"]
# And one plain record beside it.
plain_seq = kinesis.put_record(StreamName="kpl", Data=json.dumps({"k": 100}).encode(), PartitionKey="plain")["SequenceNumber"]
after_put = time.time()


def all_copied():
    rows = read_all("kpl-out")
    return rows if len(rows) >= 101 else None


copied = sorted(wait_for("the user records", all_copied), key=lambda r: r["k"])
assert [r["k"] for r in copied] == list(range(101)), copied
# Each user record carries its aggregated record's sequence number and its
# place in it; the plain record is its own, at sub-sequence 0.
assert [(r["seq"], r["sub"]) for r in copied] == [(aggregated_seq, k) for k in range(100)] + [(plain_seq, 0)], copied
assert {r["shard"] for r in copied} == {"shardId-000000000000"}, copied
for row in copied:
    arrival = datetime.datetime.fromisoformat(row["arrival"].replace(" ", "T")).replace(tzinfo=datetime.timezone.utc).timestamp()
    assert before_put - 1 <= arrival <= after_put + 1, (row, before_put, after_put)

# --- refused at submit, with where ------------------------------------------

refused = runnel("submit", "-", stdin="CREATE TABLE t (a INT) WITH ('connector' = 'kinesis', 'stream' = 'nope', 'format' = 'json');\nINSERT INTO t SELECT a FROM t;")
assert refused.returncode != 0 and "nope" in refused.stderr, refused
status, body = http("POST", "/v1/jobs", {"sql": "SELECT a FROM\n  WHERE"})
assert status == 400 and body["line"] == 2 and body["column"] >= 1, body
assert http("GET", "/v1/jobs/nosuchjob")[0] == 404
# Metadata: only the kinesis connector has it, only its keys, and never written.
status, body = http("POST", "/v1/jobs", {"sql": "CREATE TABLE f (a INT, t TIMESTAMP_LTZ(3) METADATA FROM 'timestamp') WITH ('connector' = 'datagen');\nSELECT a FROM f"})
assert status == 400 and "has no metadata" in body["message"], body
status, body = http("POST", "/v1/jobs", {"sql": "CREATE TABLE m (a INT, t STRING METADATA FROM 'partition') WITH ('connector' = 'kinesis', 'stream' = 'kpl', 'format' = 'json');\nSELECT a FROM m"})
assert status == 400 and "no metadata key 'partition'" in body["message"], body
status, body = http("POST", "/v1/jobs", {"sql": "CREATE TABLE w (a INT,\n  t STRING METADATA FROM 'shard-id') WITH ('connector' = 'kinesis', 'stream' = 'kpl-out', 'format' = 'json');\nCREATE TABLE g (a INT) WITH ('connector' = 'datagen');\nINSERT INTO w SELECT a, 'x' FROM g"})
assert status == 400 and "declare it VIRTUAL" in body["message"] and body["line"] == 2 and body["column"] == 3, body

done()
