"""The avro format as Flink's: Apache Avro's own Python library writes
records under the schema Flink derives from a table (a record named
`record` in `org.apache.flink.avro.generated`, nullable columns as unions
with null, DECIMAL as bytes, TIMESTAMP(3) as timestamp-millis) into a
stream; a job in the server reads them with 'format' = 'avro' and writes
what it computed into another stream in avro, which the library reads
back. `runnel sql run` writes a filesystem sink's part files as Avro
object container files (deflate), which the library's DataFileReader reads.

Usage: avro_format.py <endpoint> <runnel binary>"""

import datetime
import decimal
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import avro.datafile
import avro.io
import avro.schema

from common import client, done, wait_active

ENDPOINT, RUNNEL = sys.argv[1], sys.argv[2]
kinesis = client()
UTC = datetime.timezone.utc


def flink_schema(fields):
    """The schema Flink's AvroSchemaConverter gives a table of nullable
    columns."""
    return avro.schema.parse(json.dumps({
        "type": "record", "name": "record", "namespace": "org.apache.flink.avro.generated",
        "fields": [{"name": name, "type": ["null", kind], "default": None} for name, kind in fields],
    }))


DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
IN = flink_schema([("sensor", "string"), ("celsius", "double"), ("price", DECIMAL),
                   ("at", MILLIS), ("ok", "boolean"), ("n", "int")])
OUT = flink_schema([("sensor", "string"), ("fahrenheit", "double"), ("price", DECIMAL),
                    ("at", MILLIS), ("ok", "boolean"), ("n", "long")])


def encode(schema, datum):
    out = io.BytesIO()
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(out))
    return out.getvalue()


def decode(schema, data):
    return avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data)))


for name in ("avro_in", "avro_out"):
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)

base = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
# The library writes a Decimal's own digits as the unscaled value, so each
# has the schema's scale (scaleb keeps two places: -50.00, not -50).
readings = [
    {"sensor": f"s{i % 3}", "celsius": i * 1.5 - 10, "price": decimal.Decimal(i * 1234 - 5000).scaleb(-2),
     "at": base + datetime.timedelta(seconds=i), "ok": i % 2 == 0, "n": i * 1000}
    for i in range(20)
]
readings.append({"sensor": None, "celsius": None, "price": None, "at": None, "ok": None, "n": None})
kinesis.put_records(StreamName="avro_in", Records=[
    {"Data": encode(IN, r), "PartitionKey": str(i)} for i, r in enumerate(readings)
])

JOB = """
CREATE TABLE avro_in (sensor STRING, celsius DOUBLE, price DECIMAL(10, 2), `at` TIMESTAMP(3),
                      ok BOOLEAN, n INT)
WITH ('connector' = 'kinesis', 'stream' = 'avro_in', 'source.init.position' = 'TRIM_HORIZON',
      'format' = 'avro');
CREATE TABLE avro_out (sensor STRING, fahrenheit DOUBLE, price DECIMAL(10, 2), `at` TIMESTAMP(3),
                       ok BOOLEAN, n BIGINT)
WITH ('connector' = 'kinesis', 'stream' = 'avro_out', 'format' = 'avro');
INSERT INTO avro_out SELECT sensor, celsius * 9 / 5 + 32, price, `at`, ok, CAST(n AS BIGINT) * 2 FROM avro_in;
"""
submitted = subprocess.run([RUNNEL, "jobs", "--endpoint", ENDPOINT, "submit", "-", "--name", "avro"],
                           input=JOB, capture_output=True, text=True, timeout=60)
assert submitted.returncode == 0, submitted.stderr


def read_all(stream):
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = []
    for _ in range(50):
        out = kinesis.get_records(ShardIterator=iterator)
        records.extend(r["Data"] for r in out["Records"])
        iterator = out["NextShardIterator"]
        if not out["Records"]:
            break
    return records


deadline = time.time() + 60
out = []
while time.time() < deadline and len(out) < len(readings):
    out = read_all("avro_out")
    time.sleep(0.2)
assert len(out) == len(readings), f"{len(out)} of {len(readings)} records came out"
got = sorted((decode(OUT, data) for data in out), key=lambda r: (r["n"] is None, r["n"]))
for reading, row in zip(readings, got):
    if reading["sensor"] is None:
        assert all(v is None for v in row.values()), row
        continue
    assert row["sensor"] == reading["sensor"], (row, reading)
    assert abs(row["fahrenheit"] - (reading["celsius"] * 9 / 5 + 32)) < 1e-9, (row, reading)
    assert row["price"] == reading["price"], (row, reading)
    assert row["at"] == reading["at"], (row, reading)
    assert row["ok"] == reading["ok"] and row["n"] == reading["n"] * 2, (row, reading)

# A record that is not a datum of the table's schema fails the job, as in
# Flink (a truncated record here).
kinesis.create_stream(StreamName="avro_bad", ShardCount=1)
wait_active(kinesis, "avro_bad")
kinesis.put_record(StreamName="avro_bad", Data=encode(IN, readings[0])[:5], PartitionKey="k")
BAD = """CREATE TABLE avro_bad (sensor STRING, celsius DOUBLE, price DECIMAL(10, 2), `at` TIMESTAMP(3),
                                ok BOOLEAN, n INT)
WITH ('connector' = 'kinesis', 'stream' = 'avro_bad', 'source.init.position' = 'TRIM_HORIZON', 'format' = 'avro');
CREATE TABLE sink (n INT) WITH ('connector' = 'blackhole');
INSERT INTO sink SELECT n FROM avro_bad;"""
bad = subprocess.run([RUNNEL, "jobs", "--endpoint", ENDPOINT, "submit", "-", "--name", "avro-bad"],
                     input=BAD, capture_output=True, text=True, timeout=60)
assert bad.returncode == 0, bad.stderr
job = bad.stdout.strip()
deadline = time.time() + 30
described = ""
while time.time() < deadline:
    described = subprocess.run([RUNNEL, "jobs", "--endpoint", ENDPOINT, "describe", job],
                               capture_output=True, text=True, timeout=30).stdout
    if "FAILED" in described:
        break
    time.sleep(0.2)
assert "FAILED" in described and "avro" in described, described

# --- runnel sql run: a filesystem sink's part files are container files.
tmp = tempfile.TemporaryDirectory()
source = os.path.join(tmp.name, "in.jsonl")
with open(source, "w") as f:
    for i in range(100):
        f.write(json.dumps({"k": i, "name": f"n{i}", "price": f"{i}.25"}) + "\n")
script = os.path.join(tmp.name, "job.sql")
with open(script, "w") as f:
    f.write(f"""
CREATE TABLE src (k BIGINT, name STRING, price DECIMAL(6, 2))
WITH ('connector' = 'filesystem', 'path' = '{source}', 'format' = 'json');
CREATE TABLE dst (k BIGINT, name STRING, price DECIMAL(6, 2))
WITH ('connector' = 'filesystem', 'path' = '{tmp.name}/out', 'format' = 'avro', 'avro.codec' = 'deflate');
INSERT INTO dst SELECT k, name, price FROM src;
""")
run = subprocess.run([RUNNEL, "sql", "run", "-q", "--workers", "2", "--file", script],
                     capture_output=True, text=True, timeout=120)
assert run.returncode == 0, run.stderr
rows = []
parts = sorted(os.listdir(os.path.join(tmp.name, "out")))
assert parts and all(p.endswith(".avro") for p in parts), parts
for part in parts:
    with open(os.path.join(tmp.name, "out", part), "rb") as f:
        reader = avro.datafile.DataFileReader(f, avro.io.DatumReader())
        assert reader.get_meta("avro.codec") == b"deflate", reader.meta
        rows.extend(reader)
rows.sort(key=lambda r: r["k"])
assert [(r["k"], r["name"], r["price"]) for r in rows] == [
    (i, f"n{i}", decimal.Decimal(f"{i}.25")) for i in range(100)
], rows[:3]

done()
