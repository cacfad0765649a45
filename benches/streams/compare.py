"""`runnel bench streams` against Runnel and kinesis-local (npm), side by
side in one run, at the same fixed rates: throughput in and out,
PutRecords latency from the intended send time, put-to-get latency, and
what was throttled or lost. Prints a Markdown table.

Each target gets a fresh process (Runnel: a release server on a new data
dir, shard limits on, as AWS has them) and an unmeasured 5 s warm-up run
first (kinesis-local runs on Node and is slow until its code is hot).

env: RUNNEL_BIN (release binary), KINESIS_LOCAL_DIR (holding main.js),
BENCH_SECONDS (default 20), BENCH_RATES (default "1000,4000")."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

RUNNEL = os.environ.get("RUNNEL_BIN", "target/release/runnel")
KINESIS_LOCAL = os.environ.get("KINESIS_LOCAL_DIR", os.path.expanduser(
    "~/.cache/runnel-bench/kinesis-local/node_modules/kinesis-local"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "1000,4000").split(",")]
SHARDS, RECORD, PRODUCERS = 8, 1024, 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port} after {seconds} s")


def start_runnel(tmp):
    port = free_port()
    process = subprocess.Popen(
        [RUNNEL, "server", "--port", str(port), "--data-dir", os.path.join(tmp, "runnel")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(port)
    return process, port


def start_kinesis_local(_tmp):
    port = free_port()
    env = dict(os.environ, KINESIS_MOCK_PLAIN_PORT=str(port), KINESIS_MOCK_TLS_PORT=str(free_port()),
               CREATE_STREAM_DURATION="0ms", DELETE_STREAM_DURATION="0ms",
               REGISTER_STREAM_CONSUMER_DURATION="0ms", LOG_LEVEL="ERROR")
    # It reads its server.json from the working directory.
    process = subprocess.Popen(["node", "main.js"], env=env, cwd=KINESIS_LOCAL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(port)
    return process, port


def load(port, stream, rate, seconds):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    out = subprocess.run(
        [RUNNEL, "bench", "streams", "--endpoint", f"http://127.0.0.1:{port}", "--stream", stream,
         "--create", "--shards", str(SHARDS), "--rate", str(rate), "--record-size", str(RECORD),
         "--duration", str(seconds), "--producers", str(PRODUCERS), "--json", "--quiet"],
        env=env, capture_output=True, text=True, timeout=seconds + 600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout)


def main():
    results = {}
    for name, start in [("runnel", start_runnel), ("kinesis-local", start_kinesis_local)]:
        with tempfile.TemporaryDirectory() as tmp:
            process, port = start(tmp)
            try:
                load(port, "warmup", 1000, 5)
                for rate in RATES:
                    print(f"{name}: {rate} records/s for {SECONDS} s", file=sys.stderr)
                    results[(name, rate)] = load(port, f"load-{rate}", rate, SECONDS)
            finally:
                process.kill()
                process.wait()
    print(f"`runnel bench streams`, {SHARDS} shards, {RECORD} B records, {PRODUCERS} producers, "
          f"{SECONDS} s per rate, GetRecords polling\n")
    print("| target | rate (rec/s) | sent of planned | in rec/s | out rec/s | PutRecords p50 / p99 / p99.9 (ms) "
          "| put-to-get p50 / p99 / p99.9 (ms) | throttled | failed | missing |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (name, rate), r in results.items():
        if "error" in r:
            print(f"| {name} | {rate} | {r['error']} | | | | | | | |")
            continue
        p, g, n = r["put_records_latency"], r["put_to_get_latency"], r["records"]
        print(f"| {name} | {rate} | {n['sent']:,} of {n['planned']:,} "
              f"| {r['in']['records_per_s']:,.0f} | {r['out']['records_per_s']:,.0f} "
              f"| {p['p50_ms']:.1f} / {p['p99_ms']:.1f} / {p['p999_ms']:.1f} "
              f"| {g['p50_ms']:.1f} / {g['p99_ms']:.1f} / {g['p999_ms']:.1f} "
              f"| {n['throttled']} | {n['failed']} | {n['missing']} |")
    print()
    for rate in RATES:
        a, b = results.get(("runnel", rate), {}), results.get(("kinesis-local", rate), {})
        if "put_records_latency" in a and "put_records_latency" in b:
            ratio = b["put_to_get_latency"]["p99_ms"] / max(a["put_to_get_latency"]["p99_ms"], 1e-3)
            print(f"At {rate} records/s, kinesis-local's p99 put-to-get latency is {ratio:,.1f}x Runnel's.")


if __name__ == "__main__":
    main()
