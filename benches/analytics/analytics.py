#!/usr/bin/env python3
"""Analytics jobs inside `runnel server`, measured as a user runs them.

    benches/analytics/analytics.py throughput [--rows N] [--parallelism P]
    benches/analytics/analytics.py latency [--seconds S] [--rate R]
    benches/analytics/analytics.py idle [--jobs J] [--parallelism P]
    benches/analytics/analytics.py checkpoints [--keys K] [--changed C]

Each starts its own server (release build: $RUNNEL_BIN, else the shared
target dir's release/runnel) with --no-shard-limits on a fresh data dir,
and prints its figures.

- throughput: N JSON rows (made by Runnel's datagen, 100 keys, one row per
  event-time millisecond) are written to a file, and the file to a 4-shard
  stream (by a job with the kinesis sink). Then two jobs run one after the
  other with the same query, TUMBLE(10 s) COUNT(*), SUM(v) GROUP BY k, into
  an output stream: one reading the file, one reading the stream from
  TRIM_HORIZON. Each is measured by the server process's CPU time (user +
  system, /proc) from submit until it has read all N rows; rows per
  CPU-second and their ratio are printed.
- latency: boto3 puts R records/s (PutRecords of R/100 records every 10 ms)
  into a 4-shard stream; a job filters them into a 1-shard stream read by
  boto3 SubscribeToShard. Per record: the time from its PutRecords being
  acknowledged (and from its being sent) to its row being received, p50,
  p99 and max. Producer and consumer are two processes on one clock
  (CLOCK_MONOTONIC).
- idle: J jobs, each a kinesis source (an empty stream) into a kinesis sink
  with P workers; the server's RSS before and after, per job, and the CPU
  they use while idle.
- checkpoints: K rows with K distinct keys are written to a 4-shard stream
  (by a datagen job); a job checkpointed every second counts them, GROUP BY
  k, into another stream in debezium-json (exactly-once). The first
  checkpoint after all K are read (the state holds K keys) and the first
  after C more rows for C of the keys are read: their duration and bytes,
  from the job's figures; once with whole checkpoints
  (`execution.checkpointing.incremental` false), then, after that job is
  stopped, with incremental ones. Then the server is killed with SIGKILL and
  started again on its data dir; a record is put, and the time from the
  restart until its row is read from the output stream is the recovery
  time (server start, restore of the K keys, the read, and the next
  checkpoint, which publishes the row).
"""

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import boto3
import botocore.config

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def binary():
    if os.environ.get("RUNNEL_BIN"):
        return os.environ["RUNNEL_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/runnel-target")
    return os.path.join(target, "release", "runnel")


class Server:
    def __init__(self, workdir):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(workdir, "server.log"), "w")
        self.process = subprocess.Popen(
            [binary(), "server", "--port", str(self.port), "--data-dir", os.path.join(workdir, "data"),
             "--no-shard-limits", "--log", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/v1/health", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    raise SystemExit(f"the server did not start; see {self.log.name}")
                time.sleep(0.1)
        self.kinesis = kinesis_client(self.endpoint)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def settle(self, seconds=300):
        """Waits until the server uses under 2% of a core (compactions
        done), so that their CPU is not counted against a job."""
        started = time.time()
        while time.time() - started < seconds:
            before = self.cpu_seconds()
            time.sleep(1)
            if self.cpu_seconds() - before < 0.02:
                break
        return time.time() - started

    def rss_mb(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def http(self, method, path, body=None):
        request = urllib.request.Request(
            self.endpoint + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read()
            return json.loads(text) if text else None

    def submit(self, sql, name, parallelism):
        return self.http("POST", "/v1/jobs", {"sql": sql, "name": name, "parallelism": parallelism})["id"]

    def job(self, job_id):
        return self.http("GET", f"/v1/jobs/{job_id}")

    def wait_job(self, job_id, done, seconds=3600, poll=0.1):
        deadline = time.time() + seconds
        while time.time() < deadline:
            job = self.job(job_id)
            if job["status"] == "FAILED":
                raise SystemExit(f"job {job_id} failed: {job.get('error')}")
            if done(job):
                return job
            time.sleep(poll)
        raise SystemExit(f"job {job_id} did not get there in {seconds} s")

    def create_stream(self, name, shards):
        self.kinesis.create_stream(StreamName=name, ShardCount=shards)
        for _ in range(600):
            if self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
            time.sleep(0.05)
        raise SystemExit(f"stream {name} did not become ACTIVE")


def rows_read(job):
    return sum(source["rows_read"] for source in job["sources"])


def throughput(args, workdir):
    server = Server(workdir)
    try:
        data = os.path.join(workdir, "input")
        rows = args.rows
        columns = "k BIGINT, v BIGINT, ts TIMESTAMP(3)"
        generate = f"""
CREATE TABLE gen ({columns}) WITH (
  'connector' = 'datagen', 'rows-per-second' = '0', 'number-of-rows' = '{rows}',
  'fields.k.min' = '0', 'fields.k.max' = '99', 'fields.v.min' = '0', 'fields.v.max' = '1000000',
  'fields.ts.kind' = 'sequence', 'fields.ts.start' = '1700000000000', 'fields.ts.end' = '{1700000000000 + rows - 1}');
CREATE TABLE input ({columns}) WITH ('connector' = 'filesystem', 'path' = '{data}', 'format' = 'json');
INSERT INTO input SELECT * FROM gen;
"""
        started = time.time()
        server.wait_job(server.submit(generate, "generate", 1), lambda j: j["status"] == "FINISHED")
        size = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))
        print(f"{rows:,} rows into {data} ({size / 1e6:.0f} MB of JSON lines) in {time.time() - started:.1f} s", flush=True)

        server.create_stream("input", 4)
        fill = f"""
CREATE TABLE input ({columns}) WITH ('connector' = 'filesystem', 'path' = '{data}', 'format' = 'json');
CREATE TABLE stream_input ({columns}) WITH ('connector' = 'kinesis', 'stream' = 'input', 'format' = 'json');
INSERT INTO stream_input SELECT * FROM input;
"""
        started = time.time()
        server.wait_job(server.submit(fill, "fill", 1), lambda j: j["status"] == "FINISHED")
        print(f"the same rows into the 4-shard stream 'input' in {time.time() - started:.1f} s", flush=True)
        settled = server.settle()
        print(f"RocksDB's compactions after the fill settled in {settled:.1f} s", flush=True)

        query = """
INSERT INTO counts
SELECT window_start, k, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k;
"""
        sources = {
            "file": f"'connector' = 'filesystem', 'path' = '{data}', 'format' = 'json'",
            "stream": "'connector' = 'kinesis', 'stream' = 'input', 'format' = 'json', 'source.init.position' = 'TRIM_HORIZON'",
        }
        results = {}
        for run in range(args.runs):
            for kind, options in sources.items():
                out = f"counts-{kind}-{run}"
                server.create_stream(out, 1)
                sql = f"""
CREATE TABLE src ({columns}, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ({options});
CREATE TABLE counts (window_start TIMESTAMP(3), k BIGINT, c BIGINT, s BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = '{out}', 'format' = 'json');
{query}"""
                server.settle()
                cpu_before, wall_before = server.cpu_seconds(), time.time()
                job_id = server.submit(sql, f"tumble-{kind}-{run}", args.parallelism)
                job = server.wait_job(job_id, lambda j: rows_read(j) >= rows or j["status"] == "FINISHED", poll=0.05)
                cpu, wall = server.cpu_seconds() - cpu_before, time.time() - wall_before
                if rows_read(job) != rows:
                    raise SystemExit(f"{kind}: read {rows_read(job)} rows of {rows}")
                if job["status"] == "RUNNING":
                    try:
                        server.http("POST", f"/v1/jobs/{job_id}/stop")
                    except urllib.error.HTTPError as e:
                        if e.code != 409:  # it finished in the meantime
                            raise
                    server.wait_job(job_id, lambda j: j["status"] in ("STOPPED", "FINISHED"))
                results.setdefault(kind, []).append((wall, cpu))
                print(f"run {run + 1} {kind:>6}: {wall:6.2f} s wall, {cpu:6.2f} CPU-s, "
                      f"{rows / wall:12,.0f} rows/s, {rows / cpu:12,.0f} rows per CPU-second", flush=True)
        best = {kind: min(cpu for _, cpu in runs) for kind, runs in results.items()}
        print(f"\nbest of {args.runs}, parallelism {args.parallelism}: file {rows / best['file']:,.0f}, "
              f"stream {rows / best['stream']:,.0f} rows per CPU-second; stream / file = {best['file'] / best['stream']:.2f}")
    finally:
        server.stop()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def latency(args, workdir):
    server = Server(workdir)
    try:
        server.create_stream("readings", 4)
        server.create_stream("alerts", 1)
        sql = """
CREATE TABLE readings (id BIGINT, v INT) WITH ('connector' = 'kinesis', 'stream' = 'readings', 'format' = 'json');
CREATE TABLE alerts (id BIGINT, v INT) WITH ('connector' = 'kinesis', 'stream' = 'alerts', 'format' = 'json');
INSERT INTO alerts SELECT id, v FROM readings WHERE v >= 0;
"""
        job_id = server.submit(sql, "filter", args.parallelism)
        server.wait_job(job_id, lambda j: j["status"] == "RUNNING")
        arn = server.kinesis.describe_stream_summary(StreamName="alerts")["StreamDescriptionSummary"]["StreamARN"]
        consumer = server.kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="latency")["Consumer"]["ConsumerARN"]
        shard = server.kinesis.list_shards(StreamName="alerts")["Shards"][0]["ShardId"]

        # Producer and consumer are processes of their own, so that neither
        # waits for the other's share of Python's lock; CLOCK_MONOTONIC is
        # one clock for both.
        ready, results = multiprocessing.Queue(), multiprocessing.Queue()
        consumer_process = multiprocessing.Process(
            target=consume, args=(server.endpoint, consumer, shard, args.seconds + 4, ready, results))
        consumer_process.start()
        if ready.get(timeout=30) != "subscribed":
            raise SystemExit("SubscribeToShard did not start")
        time.sleep(0.5)
        sent, acked, next_id = produce(server.endpoint, args.rate, args.seconds)
        received = results.get(timeout=60)
        consumer_process.join(timeout=30)
        missing = next_id - len([i for i in sent if i in received])
        if missing:
            raise SystemExit(f"{missing} of {next_id} records never arrived")
        from_ack = [(received[i] - acked[i]) * 1000 for i in sent]
        from_send = [(received[i] - sent[i]) * 1000 for i in sent]
        print(f"{next_id:,} records at {args.rate:,}/s for {args.seconds} s (PutRecords of {max(1, args.rate // 100)} every 10 ms), "
              f"job parallelism {args.parallelism}")
        for name, values in (("acknowledged -> received", from_ack), ("sent -> received", from_send)):
            print(f"{name:>25}: p50 {percentile(values, 50):7.2f} ms  p99 {percentile(values, 99):7.2f} ms  "
                  f"max {max(values):7.2f} ms")
        server.http("POST", f"/v1/jobs/{job_id}/stop")
    finally:
        server.stop()


def kinesis_client(endpoint):
    return boto3.client(
        "kinesis", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="runnel", aws_secret_access_key="runnel",
        config=botocore.config.Config(retries={"max_attempts": 3}, max_pool_connections=8))


def consume(endpoint, consumer, shard, seconds, ready, results):
    """Follows the output shard; sends back each id's receive time once
    `seconds` have passed or every expected record is in."""
    reader = kinesis_client(endpoint)
    received = {}
    ends = time.monotonic() + seconds
    events = reader.subscribe_to_shard(
        ConsumerARN=consumer, ShardId=shard, StartingPosition={"Type": "LATEST"})["EventStream"]
    ready.put("subscribed")
    for event in events:
        now = time.monotonic()
        for record in event.get("SubscribeToShardEvent", {}).get("Records", []):
            received[json.loads(record["Data"])["id"]] = now
        if now > ends:
            break
    results.put(received)


def produce(endpoint, rate, seconds):
    writer = kinesis_client(endpoint)
    per_put = max(1, rate // 100)
    sent, acked = {}, {}
    next_id = 0
    tick = time.monotonic()
    ends = tick + seconds
    while tick < ends:
        ids = range(next_id, next_id + per_put)
        next_id += per_put
        records = [{"Data": json.dumps({"id": i, "v": i % 1000}).encode(), "PartitionKey": str(i)} for i in ids]
        at = time.monotonic()
        answer = writer.put_records(StreamName="readings", Records=records)
        ack = time.monotonic()
        if answer.get("FailedRecordCount"):
            raise SystemExit(f"{answer['FailedRecordCount']} records were not written")
        for i in ids:
            sent[i], acked[i] = at, ack
        tick += 0.01
        pause = tick - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return sent, acked, next_id


def idle(args, workdir):
    server = Server(workdir)
    try:
        time.sleep(2)
        base_rss, base_cpu = server.rss_mb(), server.cpu_seconds()
        for j in range(args.jobs):
            server.create_stream(f"in-{j}", 4)
            server.create_stream(f"out-{j}", 1)
            sql = f"""
CREATE TABLE src (k BIGINT, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'kinesis', 'stream' = 'in-{j}', 'format' = 'json');
CREATE TABLE dst (window_start TIMESTAMP(3), k BIGINT, c BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = 'out-{j}', 'format' = 'json');
INSERT INTO dst SELECT window_start, k, COUNT(*)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k;
"""
            job_id = server.submit(sql, f"idle-{j}", args.parallelism)
            server.wait_job(job_id, lambda job: job["status"] == "RUNNING")
        time.sleep(5)
        cpu_start, wall_start = server.cpu_seconds(), time.time()
        time.sleep(10)
        idle_cpu = (server.cpu_seconds() - cpu_start) / (time.time() - wall_start)
        rss = server.rss_mb()
        print(f"server alone: {base_rss:.1f} MB RSS")
        print(f"{args.jobs} idle jobs of {args.parallelism} workers: {rss:.1f} MB RSS, "
              f"{(rss - base_rss) / args.jobs:.1f} MB per job; "
              f"{idle_cpu * 100:.1f}% of a core while idle, {idle_cpu * 100 / args.jobs:.2f}% per job")
    finally:
        server.stop()


def fill(server, stream, first_key, rows):
    sql = f"""
CREATE TABLE gen (k BIGINT, v BIGINT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '0', 'number-of-rows' = '{rows}',
  'fields.k.kind' = 'sequence', 'fields.k.start' = '{first_key}', 'fields.k.end' = '{first_key + rows - 1}',
  'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE dst (k BIGINT, v BIGINT) WITH ('connector' = 'kinesis', 'stream' = '{stream}', 'format' = 'json');
INSERT INTO dst SELECT * FROM gen;
"""
    server.wait_job(server.submit(sql, f"fill-{first_key}-{rows}", 1), lambda j: j["status"] == "FINISHED")


def checkpoint_after(server, job_id, rows):
    """The first checkpoint that completed after the job had read `rows`."""
    job = server.wait_job(job_id, lambda j: rows_read(j) >= rows, poll=0.05)
    read_at_ms = time.time() * 1000
    latest = job["checkpoints"]["completed"][0]["id"] if job["checkpoints"]["completed"] else 0
    job = server.wait_job(
        job_id, lambda j: j["checkpoints"]["completed"] and j["checkpoints"]["completed"][0]["id"] > latest + 1)
    return job["checkpoints"]["completed"][0], read_at_ms


def totals_job(server, name, out, incremental):
    sql = f"""
SET 'execution.checkpointing.interval' = '1 s';
SET 'execution.checkpointing.incremental' = '{str(incremental).lower()}';
CREATE TABLE src (k BIGINT, v BIGINT) WITH (
  'connector' = 'kinesis', 'stream' = 'in', 'format' = 'json', 'source.init.position' = 'TRIM_HORIZON');
CREATE TABLE totals (k BIGINT, n BIGINT, total BIGINT)
  WITH ('connector' = 'kinesis', 'stream' = '{out}', 'format' = 'debezium-json');
INSERT INTO totals SELECT k, COUNT(*), SUM(v) FROM src GROUP BY k;
"""
    return server.submit(sql, name, 1)


def describe(checkpoint):
    kind = "deltas" if checkpoint.get("incremental_states") else "whole"
    return (f"checkpoint {checkpoint['id']} ({kind}) took {checkpoint['duration_ms']} ms "
            f"(drain {checkpoint['drain_ms']} ms, commit {checkpoint['commit_ms']} ms), {checkpoint['bytes']:,} bytes")


def checkpoints(args, workdir):
    server = Server(workdir)
    try:
        server.create_stream("in", 4)
        server.create_stream("out-whole", 4)
        server.create_stream("out", 4)
        fill(server, "in", 0, args.keys)
        # One job at a time, so that neither takes CPU from the other's
        # checkpoints: first with whole checkpoints, as Flink's default.
        whole_job = totals_job(server, "totals-whole", "out-whole", False)
        whole, _ = checkpoint_after(server, whole_job, args.keys)
        print(f"whole checkpoints, {args.keys:,} keys held: {describe(whole)}", flush=True)
        fill(server, "in", 0, args.changed)
        read = args.keys + args.changed
        whole_after, _ = checkpoint_after(server, whole_job, read)
        print(f"whole checkpoints, after {args.changed:,} of the keys changed: {describe(whole_after)}", flush=True)
        server.http("POST", f"/v1/jobs/{whole_job}/stop")
        job_id = totals_job(server, "totals", "out", True)
        held, _ = checkpoint_after(server, job_id, read)
        print(f"incremental checkpoints, {args.keys:,} keys held: {describe(held)}", flush=True)
        before = server.job(job_id)["checkpoints"]["completed"][0]["id"]
        fill(server, "in", args.changed, args.changed)
        final, _ = checkpoint_after(server, job_id, read + args.changed)
        # The changes may be read across more than one checkpoint: all
        # after the last one before them count, up to the one after the
        # last row was read (which holds nothing new).
        covering = [c for c in server.job(job_id)["checkpoints"]["completed"]
                    if before < c["id"] < final["id"]]
        took = sum(c["duration_ms"] for c in covering)
        written = sum(c["bytes"] for c in covering)
        print(f"incremental checkpoints, after {args.changed:,} of the keys changed: "
              f"{len(covering)} checkpoints ({', '.join(describe(c) for c in reversed(covering))}): "
              f"together {took} ms and {written:,} bytes, {written / whole['bytes']:.4f} of the whole "
              f"checkpoint's bytes and {took / max(whole['duration_ms'], 1):.3f} of its time", flush=True)

        server.process.kill()
        server.process.wait()
        restarted = time.time()
        server = restart(server, workdir)
        iterators = []
        for shard in server.kinesis.list_shards(StreamName="out")["Shards"]:
            iterators.append(server.kinesis.get_shard_iterator(
                StreamName="out", ShardId=shard["ShardId"], ShardIteratorType="LATEST")["ShardIterator"])
        server.kinesis.put_record(StreamName="in", PartitionKey="k", Data=json.dumps({"k": args.keys + 1, "v": 1}).encode())
        deadline = time.time() + 600
        while time.time() < deadline:
            found = False
            for i, iterator in enumerate(iterators):
                out = server.kinesis.get_records(ShardIterator=iterator)
                iterators[i] = out["NextShardIterator"]
                found |= any(json.loads(r["Data"]).get("after", {}).get("k") == args.keys + 1 for r in out["Records"])
            if found:
                break
            time.sleep(0.01)
        else:
            raise SystemExit("the new row never came out")
        print(f"recovery after kill -9 with {args.keys:,} keys: {time.time() - restarted:.2f} s from the restart "
              f"to the new record's row in the output stream (checkpoint interval 1 s)", flush=True)
    finally:
        server.stop()


def restart(server, workdir):
    """The same data dir and port, a new process."""
    port = server.port
    log = open(os.path.join(workdir, "server.log"), "a")
    process = subprocess.Popen(
        [binary(), "server", "--port", str(port), "--data-dir", os.path.join(workdir, "data"),
         "--no-shard-limits", "--log", "warn"],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(server.endpoint + "/v1/health", timeout=1).read()
            break
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                raise SystemExit(f"the server did not restart; see {log.name}")
            time.sleep(0.02)
    server.process = process
    server.log = log
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("throughput")
    t.add_argument("--rows", type=int, default=10_000_000)
    t.add_argument("--parallelism", type=int, default=1)
    t.add_argument("--runs", type=int, default=2)
    lat = commands.add_parser("latency")
    lat.add_argument("--seconds", type=int, default=30)
    lat.add_argument("--rate", type=int, default=10_000)
    lat.add_argument("--parallelism", type=int, default=1)
    i = commands.add_parser("idle")
    i.add_argument("--jobs", type=int, default=10)
    i.add_argument("--parallelism", type=int, default=4)
    c = commands.add_parser("checkpoints")
    c.add_argument("--keys", type=int, default=1_000_000)
    c.add_argument("--changed", type=int, default=10_000)
    args = parser.parse_args()
    if not os.path.exists(binary()):
        raise SystemExit(f"no release build at {binary()}: run `cargo build --release -p runnel` or set RUNNEL_BIN")
    workdir = tempfile.mkdtemp(prefix=f"runnel-bench-{args.command}-", dir=os.environ.get("BENCH_DIR"))
    try:
        {"throughput": throughput, "latency": latency, "idle": idle, "checkpoints": checkpoints}[args.command](args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
