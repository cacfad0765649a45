#!/usr/bin/env python3
"""Runnel beside Apache Flink: the same SQL over the same file, measured alike.

Run through compare.sh, which installs Flink first. The queries are
those of queries/<name>.sql (`tumble`, `over-range`, over a JSON-lines
file; their `-- input:` line names the dataset) and `nexmark-q0` ...
`nexmark-q22`: the files of benches/nexmark/queries/, the same text for both
engines but where queries/nexmark-qN.flink.sql gives Flink's own spelling of
a query whose Runnel text Flink does not read alike. For every query and
every worker count:

1. correctness: both engines run the query over a small input into a
   filesystem JSON sink, and the two outputs must be the same rows;
2. start-up: both run it over a tiny input, so that what an engine spends
   before and after the data (Flink's JVM, planner and local cluster) shows;
3. the measured runs over the full input into a blackhole sink, Runnel and
   Flink alternating, so that the load from anything else on the machine
   falls on both alike.

What is counted, the same way for both engines: user + system CPU seconds of
the engine command and of every process it started (for Flink that is the
PyFlink driver and the JVM it launches, which runs the local cluster and the
job), taken from getrusage(RUSAGE_CHILDREN) after all of them were reaped.
This process makes itself a child subreaper so that a grandchild orphaned by
its parent (the JVM, when the PyFlink driver exits first) is reparented to
it, waited for and counted. Wall seconds run from the start of the command
to the exit of its last process.

The placeholders in the SQL: ${INPUT} (the input path), ${SINK} (the WITH
options of the sink table), ${NEXMARK_DDL} (benches/nexmark/ddl.sql, the
Nexmark table and its views, with the table read from the exported events
instead of the generator) and ${SIDE_INPUT} (q13's side table as a CSV
file: Flink's side_input_gen, keys 0..9999 each with its own value).
`-- compare: check skipped (why)` in a query's header skips step 1 for
outputs that cannot be compared as rows (updating, processing time).
"""

import argparse
import collections
import ctypes
import datetime
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PR_SET_CHILD_SUBREAPER = 36


def log(message):
    print(message, file=sys.stderr, flush=True)


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reap_all(pgid, deadline):
    """Waits for every remaining descendant (orphans are reparented to us).

    Past the deadline the command's process group is killed, so a lingering
    JVM cannot hang the benchmark.
    """
    killed = False
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if not killed and time.monotonic() > deadline:
                log(f"compare: descendants of {pgid} still running past the deadline; killing them")
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                killed = True
            time.sleep(0.02)


class Failed(Exception):
    pass


PAGE = os.sysconf("SC_PAGE_SIZE")


def session_rss(session):
    """Bytes resident in every process of `session` (the command and all it
    started: they inherit its session, the JVM PyFlink launches included)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # Fields after the command name, which may hold spaces.
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) != session:
                continue
            with open(f"/proc/{entry}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


class PeakRss(threading.Thread):
    """Samples a session's summed RSS every 50 ms; `peak` is the most seen."""

    def __init__(self, session):
        super().__init__(daemon=True)
        self.session, self.peak, self.done = session, 0, threading.Event()

    def run(self):
        while not self.done.wait(0.05):
            self.peak = max(self.peak, session_rss(self.session))


def run_measured(cmd, log_path, timeout):
    """Runs cmd to its end; returns (wall seconds, CPU seconds, peak RSS
    bytes) of its process tree."""
    cpu_before = children_cpu()
    started = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        rss = PeakRss(proc.pid)
        rss.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reap_all(proc.pid, time.monotonic())
            raise Failed(f"timed out after {timeout} s: {' '.join(map(str, cmd))}; log: {log_path}")
    # The driver is done; whatever it started and left (Flink's JVM shuts down
    # once the driver's pipe to it closes) ends on its own within seconds.
    reap_all(proc.pid, time.monotonic() + 60)
    rss.done.set()
    rss.join()
    wall = time.monotonic() - started
    cpu = children_cpu() - cpu_before
    if proc.returncode != 0:
        tail = "".join(Path(log_path).read_text(errors="replace").splitlines(True)[-25:])
        raise Failed(f"exit {proc.returncode}: {' '.join(map(str, cmd))}\n--- last lines of {log_path}:\n{tail}")
    return wall, cpu, rss.peak


# ---------------------------------------------------------------- datasets

def tumble_json(runnel, path, rows, work):
    """The input of benches/sql/tumble_json.sh: Runnel's datagen -> filesystem JSON.

    `rows` rows of {"k", "v", "ts"}: 10K random keys, v in [0, 1e6], one row
    per event-time millisecond from 2023-11-14 22:13:20.000.
    """
    script = work / "generate.sql"
    script.write_text(f"""
CREATE TABLE gen (k BIGINT, v BIGINT, ts TIMESTAMP(3)) WITH (
  'connector' = 'datagen', 'rows-per-second' = '0', 'number-of-rows' = '{rows}',
  'fields.k.min' = '0', 'fields.k.max' = '9999',
  'fields.v.min' = '0', 'fields.v.max' = '1000000',
  'fields.ts.kind' = 'sequence', 'fields.ts.start' = '1700000000000',
  'fields.ts.end' = '{1700000000000 + rows - 1}'
);
CREATE TABLE input (k BIGINT, v BIGINT, ts TIMESTAMP(3)) WITH (
  'connector' = 'filesystem', 'path' = '{path}', 'format' = 'json'
);
INSERT INTO input SELECT * FROM gen;
""")
    subprocess.run([runnel, "sql", "run", "-q", "--file", str(script)], check=True)


def nexmark(runnel, path, events, work, rate=10_000_000):
    """`runnel bench nexmark --export`: Nexmark events as JSON lines, in Flink's shape.

    One file in the directory `path` (both engines' filesystem sources read a
    directory). The generator's defaults, as `runnel bench nexmark`: event-time
    rate 10M events/s (so 1M events span 0.1 s of event time, and the 10 s
    windows of q5, q7, q8 see one or two windows), Flink's event mix 1:3:46.
    """
    path.mkdir(parents=True)
    subprocess.run([runnel, "bench", "nexmark", "--quiet", "--export", str(path / "events.jsonl"),
                    "--events", str(events), "--rate", str(rate)], check=True, timeout=1800)


DATASETS = {"tumble-json": tumble_json, "nexmark": nexmark}


def dataset(args, kind, rows, rate=None):
    """The path of `rows` rows of dataset `kind` (Nexmark: at `rate` events
    per second of event time), made once and kept in the cache."""
    if kind not in DATASETS:
        raise Failed(f"unknown dataset {kind!r}; known: {', '.join(DATASETS)}")
    rate = rate or args.event_rate
    suffix = f"-rate{rate}" if kind == "nexmark" and rate != 10_000_000 else ""
    base = Path(args.cache) / "data" / f"{kind}-{rows}{suffix}"
    path = base / "input"
    if not (base / "complete").exists():
        log(f"compare: generating {rows} rows of {kind} into {path} ...")
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        if kind == "nexmark":
            nexmark(args.runnel_bin, path, rows, base, rate)
        else:
            DATASETS[kind](args.runnel_bin, path, rows, base)
        # Written last, so that an interrupted generation is redone.
        (base / "complete").write_text("")
    return path


def count_lines(path):
    n = 0
    for f in sorted(Path(path).rglob("*")):
        if f.is_file() and not f.name.startswith((".", "_")):
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 24):
                    n += chunk.count(b"\n")
    return n


# ----------------------------------------------------------------- engines

NEXMARK_QUERIES = REPO / "benches" / "nexmark" / "queries"


def own_queries():
    """queries/<name>.sql: queries of their own, the same text for both
    engines, over the dataset their `-- input:` line names."""
    return sorted(p.stem for p in (HERE / "queries").glob("*.sql")
                  if not p.name.endswith(".flink.sql"))


def all_queries():
    numbers = sorted(int(p.stem[1:]) for p in NEXMARK_QUERIES.glob("q*.sql"))
    return own_queries() + [f"nexmark-q{n}" for n in numbers]


def source_of(query):
    """The file a query's Runnel text (and its header) is in."""
    if query in own_queries():
        return HERE / "queries" / f"{query}.sql"
    return NEXMARK_QUERIES / f"{query.removeprefix('nexmark-')}.sql"


def dataset_kind(query):
    if query in own_queries():
        found = re.search(r"^--\s*input:\s*(\S+)", source_of(query).read_text(), re.M)
        if not found or found.group(1) not in DATASETS:
            raise Failed(f"{source_of(query)}: no '-- input: <{'|'.join(DATASETS)}>' line")
        return found.group(1)
    return "nexmark"


def nexmark_ddl():
    """benches/nexmark/ddl.sql with the nexmark table read from ${INPUT}
    (the exported events, JSON lines) instead of the generator."""
    lines = (REPO / "benches" / "nexmark" / "ddl.sql").read_text().splitlines()
    while lines and (lines[0].startswith("--") or not lines[0].strip()):
        lines.pop(0)
    text = "\n".join(lines) + "\n"
    text, found = re.subn(
        r"WITH \(\s*'connector' = 'nexmark'.*?\);",
        "WITH (\n    'connector' = 'filesystem',\n    'path' = '${INPUT}',\n    'format' = 'json'\n);",
        text,
        count=1,
        flags=re.S,
    )
    if not found:
        raise Failed("benches/nexmark/ddl.sql: no WITH ('connector' = 'nexmark' ...);")
    return text


def nexmark_query(query):
    """The statements of benches/nexmark/queries/qN.sql as they run here:
    the result table's WITH clause becomes ${SINK} and its PARTITIONED BY
    (a filesystem sink's) goes, and q13's side table is read from
    ${SIDE_INPUT}."""
    name = query.removeprefix("nexmark-")
    lines = source_of(query).read_text().splitlines()
    while lines and (lines[0].startswith("--") or not lines[0].strip()):
        lines.pop(0)
    body = "\n".join(lines) + "\n"
    result_table = re.compile(
        rf"(CREATE TABLE nexmark_{name}\s*\(.*?\))\s*(?:PARTITIONED BY\s*\([^)]*\)\s*)?WITH\s*\([^)]*\);",
        re.S,
    )
    body, found = result_table.subn(lambda m: m.group(1) + " WITH (${SINK});", body, count=1)
    if not found:
        raise Failed(f"benches/nexmark/queries/{name}.sql: no CREATE TABLE nexmark_{name} ... WITH (...);")
    return "${NEXMARK_DDL}\n" + body.replace("${OUTPUT_DIR}/side_input.csv", "${SIDE_INPUT}")


def query_text(query, engine):
    """What `engine` runs for `query`, placeholders still in."""
    if query in own_queries():
        return source_of(query).read_text()
    own = HERE / "queries" / f"{query}.flink.sql"
    if engine == "flink" and own.exists():
        return own.read_text()
    return nexmark_query(query)


def check_skipped(query):
    """Why a query's outputs cannot be compared at all, if they cannot."""
    skip = re.search(r"^--\s*compare:\s*check skipped\s*(.*)$", source_of(query).read_text(), re.M)
    return (skip.group(1).strip() or "skipped") if skip else None


def compared_as_changelog(query):
    """An updating query (`-- compare: changelog`): each engine's changelog
    is applied and the final tables compared."""
    return re.search(r"^--\s*compare:\s*changelog", source_of(query).read_text(), re.M) is not None


def script_for(args, query, engine, input_path, sink, work):
    text = query_text(query, engine)
    # The DDL holds ${INPUT} itself, so it is inlined first.
    text = text.replace("${NEXMARK_DDL}", nexmark_ddl())
    text = text.replace("${INPUT}", str(input_path)).replace("${SINK}", sink)
    if "${SIDE_INPUT}" in text:
        side = work / "side_input.csv"
        side.write_text("".join(f"{k},{k}\n" for k in range(10_000)))
        text = text.replace("${SIDE_INPUT}", str(side))
    left = re.findall(r"\$\{[A-Z_]+\}", text)
    if left:
        raise Failed(f"{query} ({engine}): unknown placeholders {left}")
    path = work / f"{query}.{engine}.sql"
    path.write_text(text)
    return path


# Flink as the Nexmark benchmark's own configuration runs it
# (nexmark-flink/src/main/resources/conf/config.yaml in github.com/nexmark/
# nexmark): mini-batch, the split of distinct aggregates, RocksDB state with
# incremental checkpoints every 3 minutes. Left out: its parallelism 8 (both
# engines run at the --workers asked), its 8 GB process sizes and GC options
# (PyFlink runs a local mini cluster in one JVM), local recovery (nothing
# fails here).
NEXMARK_MINI_BATCH = [
    "table.exec.mini-batch.enabled=true",
    "table.exec.mini-batch.allow-latency=2s",
    "table.exec.mini-batch.size=50000",
    "table.optimizer.distinct-agg.split.enabled=true",
]


def flink_tuned(work):
    return NEXMARK_MINI_BATCH + [
        "state.backend.type=rocksdb",
        "state.backend.incremental=true",
        f"state.checkpoints.dir=file://{work}/checkpoints",
        f"state.backend.rocksdb.localdir={work}/rocksdb",
        "execution.checkpointing.interval=180000",
        "execution.checkpointing.mode=EXACTLY_ONCE",
        "execution.checkpointing.checkpoints-after-tasks-finish.enabled=false",
    ]


# `minibatch`: the tuned setup's mini-batch and distinct split alone, state
# on the heap as by default: what mini-batch buys, apart from RocksDB.
FLINK_SETUPS = {"default": "flink", "tuned": "flink-tuned", "minibatch": "flink-minibatch"}


# An updating query's changelog grows with every input row, and PyFlink's
# collect() passes it row by row: mini-batch folds a batch's updates into
# one, which changes the changelog but not the final table compared.
COLLECT_CONF = [
    "table.exec.mini-batch.enabled=true",
    "table.exec.mini-batch.allow-latency=1s",
    "table.exec.mini-batch.size=50000",
]


def run_engine(args, engine, query, workers, input_path, sink, tag, collect=None):
    """Runs `query` on `engine` (runnel, flink, flink-tuned); returns wall
    and CPU seconds and peak RSS. `collect`: Flink writes the changelog of
    each INSERT's query there instead of running the INSERT."""
    work = Path(args.cache) / "work" / f"{query}-{engine}-w{workers}-{tag}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    script = script_for(args, query, "runnel" if engine == "runnel" else "flink", input_path, sink, work)
    if engine == "runnel":
        cmd = [args.runnel_bin, "sql", "run", "-q", "--workers", str(workers), "--file", str(script)]
    else:
        conf = list(args.flink_conf) + {"flink-tuned": flink_tuned(work),
                                         "flink-minibatch": NEXMARK_MINI_BATCH}.get(engine, [])
        cmd = [args.flink_python, str(HERE / "flink_sql.py"), "--parallelism", str(workers),
               "--result", str(work / "result.json")]
        if collect:
            cmd += ["--collect", str(collect)]
            conf += COLLECT_CONF
        cmd += [f"--conf={kv}" for kv in conf] + [str(script)]
    wall, cpu, rss = run_measured(cmd, work / "log.txt", args.timeout)
    if engine != "runnel":
        info = json.loads((work / "result.json").read_text())
        args.versions["flink"] = info["flink_version"]
    return wall, cpu, rss


def sink_json_dir(path):
    return f"'connector' = 'filesystem', 'path' = '{path}', 'format' = 'json'"


BLACKHOLE = "'connector' = 'blackhole'"

# ------------------------------------------------------------- correctness

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


def canonical(value):
    """One spelling per value: Flink writes 22:13:20 where Runnel writes 22:13:20.000, 454 for 454.0."""
    if isinstance(value, str) and TIMESTAMP.match(value):
        return datetime.datetime.fromisoformat(value.replace(" ", "T")).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, float):
        # A DECIMAL's whole value: Flink writes 454 where Runnel writes 454.0.
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return float(f"{value:.12g}")
    return value


def read_rows(directory):
    rows = collections.Counter()
    for f in sorted(Path(directory).rglob("*")):
        # Hidden files are a sink's in-progress or marker files, not output.
        if f.is_file() and not f.name.startswith((".", "_")):
            for line in f.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    # A canonical string per row keeps millions of rows in little memory.
                    rows[json.dumps({k: canonical(v) for k, v in row.items()}, sort_keys=True)] += 1
    return rows


def row_key(values):
    return json.dumps([canonical(v) for v in values])


def read_debezium(directory):
    """Runnel's changelog (filesystem sink, debezium-json) applied: the final
    table as counts of rows (a negative count is a delete of a row never
    inserted, and fails the comparison)."""
    rows = collections.Counter()
    for f in sorted(Path(directory).rglob("*")):
        if f.is_file() and not f.name.startswith((".", "_")):
            for line in f.read_text().splitlines():
                if line.strip():
                    message = json.loads(line)
                    if message.get("before"):
                        rows[row_key(message["before"].values())] -= 1
                    if message.get("after"):
                        rows[row_key(message["after"].values())] += 1
    return {k: n for k, n in rows.items() if n != 0}


def read_collected(path):
    """Flink's changelog (collected with each row's RowKind) applied."""
    rows = collections.Counter()
    with open(path) as f:
        for line in f:
            change = json.loads(line)
            rows[row_key(change["row"])] += 1 if change["op"] in ("+I", "+U") else -1
    return {k: n for k, n in rows.items() if n != 0}


def check(args, query, workers, input_path):
    outs = {}
    changelog = compared_as_changelog(query)
    for engine in ("runnel", "flink"):
        out = Path(args.cache) / "work" / f"{query}-{engine}-w{workers}-check-out"
        shutil.rmtree(out, ignore_errors=True)
        log(f"compare: check {query} {engine} workers={workers} ...")
        if not changelog:
            run_engine(args, engine, query, workers, input_path, sink_json_dir(out), "check")
            outs[engine] = read_rows(out)
        elif engine == "runnel":
            sink = f"'connector' = 'filesystem', 'path' = '{out}', 'format' = 'debezium-json'"
            run_engine(args, engine, query, workers, input_path, sink, "check")
            outs[engine] = collections.Counter(read_debezium(out))
        else:
            out.mkdir(parents=True)
            collected = out / "changelog.jsonl"
            run_engine(args, engine, query, workers, input_path, BLACKHOLE, "check", collect=collected)
            outs[engine] = collections.Counter(read_collected(collected))
    runnel, flink = outs["runnel"], outs["flink"]
    n_runnel, n_flink = sum(runnel.values()), sum(flink.values())
    if runnel == flink and n_runnel > 0:
        return True, f"{query}, workers={workers}: same {n_runnel} output rows from both engines"
    only_runnel = list((runnel - flink).elements())[:5]
    only_flink = list((flink - runnel).elements())[:5]
    lines = [f"{query}, workers={workers}: DIFFERENT: Runnel {n_runnel} rows, Flink {n_flink} rows, "
             f"{sum((runnel - flink).values())} only in Runnel's, {sum((flink - runnel).values())} only in Flink's"]
    lines += [f"    only Runnel's: {r}" for r in only_runnel]
    lines += [f"    only Flink's:  {r}" for r in only_flink]
    return False, "\n".join(lines)


# ------------------------------------------------------------------- report

def machine(args):
    cpu_model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    built = datetime.datetime.fromtimestamp(os.path.getmtime(args.runnel_bin), datetime.timezone.utc)
    return [
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine: {os.cpu_count()} CPUs ({cpu_model}), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"load average {os.getloadavg()[0]:.2f} at the end",
        f"runnel: {args.runnel_bin} (built {built:%Y-%m-%d %H:%M} UTC; worktree at {commit})",
        f"flink: apache-flink {args.versions.get('flink', '?')} (PyFlink local cluster, streaming mode)",
        f"java: {java[0] if java else '?'}" + (f"; {java[1]}" if len(java) > 1 else ""),
    ]


def fmt(x, digits=2):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the measured input")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="Runnel --workers, and Flink parallelism.default")
    parser.add_argument("--queries", nargs="+", help="tumble, over-range, nexmark-q0 ... nexmark-q22 (default: all)")
    parser.add_argument("--render-only", metavar="DIR",
                        help="write each engine's script of each query into DIR and stop")
    parser.add_argument("--check-rows", type=int, default=100_000, help="rows of the correctness input; 0 skips it")
    parser.add_argument("--startup-rows", type=int, default=1000, help="rows of the start-up input")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs per engine and worker count")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds any one run may take")
    parser.add_argument("--flink-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Flink configuration option for every Flink run (default: none, Flink's defaults)")
    parser.add_argument("--flink-setups", nargs="+", choices=sorted(FLINK_SETUPS), default=["default", "tuned"],
                        help="Flink as configured by default, and/or as the Nexmark benchmark's config.yaml tunes it")
    parser.add_argument("--event-rate", type=int, default=10_000_000,
                        help="Nexmark events per second of event time (10M: Flink's default; 100K makes "
                             "10M events span 100 s, so the 10 s windows fire ten times over)")
    parser.add_argument("--check-event-rate", type=int,
                        help="the event rate of the correctness input (default: --event-rate)")
    parser.add_argument("--chart", metavar="FILE.svg", help="also draw rows/CPU-s per query and engine (log scale)")
    parser.add_argument("--check-only", action="store_true", help="only the correctness check")
    parser.add_argument("--runnel-bin", required=True)
    parser.add_argument("--flink-python", required=True, help="the python of the venv with apache-flink")
    parser.add_argument("--cache", required=True, help="datasets and run dirs go here")
    args = parser.parse_args()
    args.versions = {}
    queries = args.queries or all_queries()
    unknown = sorted(set(queries) - set(all_queries()))
    if unknown:
        raise Failed(f"unknown queries {unknown}; available: {', '.join(all_queries())}")
    if args.render_only:
        out = Path(args.render_only)
        out.mkdir(parents=True, exist_ok=True)
        for query in queries:
            for engine in ("runnel", "flink"):
                script_for(args, query, engine, Path("/input"), BLACKHOLE, out)
        return
    become_subreaper()
    engines = ["runnel"] + [FLINK_SETUPS[s] for s in args.flink_setups]

    checks = []
    skipped = []
    failures = []
    results = []  # (query, engine, workers, rows, wall, cpu, startup_cpu, run)
    for query in queries:
        kind = dataset_kind(query)
        # Outputs that cannot be compared as rows (updating queries: Flink's
        # filesystem sink takes only inserts; processing-time windows:
        # timing decides the rows).
        skip = check_skipped(query)
        if skip:
            skipped.append(f"{query}: {skip}")
        small = (dataset(args, kind, args.check_rows, args.check_event_rate or args.event_rate)
                 if args.check_rows and not skip else None)
        if not args.check_only:
            full = dataset(args, kind, args.rows)
            startup = dataset(args, kind, args.startup_rows)
            rows = count_lines(full)
            startup_lines = count_lines(startup)
            # Both engines read the input from the page cache, not the disk.
            subprocess.run(["cat"] + [str(p) for p in full.rglob("*") if p.is_file()],
                           stdout=subprocess.DEVNULL, check=True)

        for workers in args.workers:
            # A query one engine cannot run is reported and the suite goes on, so
            # that one unsupported query does not cost the others' measurements.
            try:
                if small is not None:
                    # A check that cannot run (e.g. Runnel plans the query as updating
                    # and its filesystem sink refuses that) still leaves it measurable.
                    try:
                        checks.append(check(args, query, workers, small))
                        log(f"compare: {checks[-1][1]}")
                    except Failed as e:
                        failures.append(f"{query}, workers={workers}, correctness check: {e}")
                        log(f"compare: {query} check FAILED: {e}")
                if args.check_only:
                    continue
                startup_cpu = {}
                for engine in engines:
                    wall, cpu, _ = run_engine(args, engine, query, workers, startup, BLACKHOLE, "startup")
                    startup_cpu[engine] = cpu
                    log(f"compare: {query} {engine} workers={workers} start-up ({startup_lines} rows): "
                        f"wall {wall:.2f} s, CPU {cpu:.2f} s")
                for rep in range(args.repeat):
                    for engine in engines:
                        log(f"compare: {query} {engine} workers={workers} run {rep + 1}/{args.repeat} ({rows} rows) ...")
                        wall, cpu, rss = run_engine(args, engine, query, workers, full, BLACKHOLE, f"run{rep}")
                        log(f"compare:   wall {wall:.2f} s, CPU {cpu:.2f} s, {rows / cpu:,.0f} rows/CPU-s, "
                            f"peak RSS {rss / 2**20:,.0f} MiB")
                        results.append((query, engine, workers, rows, wall, cpu, startup_cpu[engine], rep, rss))
            except Failed as e:
                failures.append(f"{query}, workers={workers}: {e}")
                log(f"compare: {query} FAILED: {e}")

    print()
    for line in machine(args) + [
        f"flink options: {', '.join(args.flink_conf) or 'none (Flink defaults)'}",
        f"flink setups: {', '.join(args.flink_setups)} (tuned: {', '.join(flink_tuned(Path('<run dir>')))}; "
        f"minibatch: {', '.join(NEXMARK_MINI_BATCH)})",
        f"nexmark event rate: {args.event_rate:,} events per second of event time",
    ]:
        print(line)
    if results:
        print_table(args, results)
        print_scaling(results)
        if args.chart:
            write_chart(args.chart, results)
            print(f"\nchart: {args.chart}")
    if checks:
        print()
        print(f"correctness ({args.check_rows} rows into filesystem JSON sinks, outputs compared as sorted rows):")
        for ok, message in checks:
            print(f"  {'ok' if ok else 'FAILED'}: {message}")
    for message in skipped:
        print(f"  not checked: {message}")
    if failures:
        print()
        print("failed (a failed run is not in the table):")
        for message in failures:
            print("  " + message.replace("\n", "\n    "))
    if not all(ok for ok, _ in checks):
        print("correctness: the engines DISAGREE; the table compares different computations")
        sys.exit(1)
    if failures:
        sys.exit(1)


def print_table(args, results):
    print("counted: user+system CPU of the engine's whole process tree (Runnel: the runnel process; Flink: the "
          "PyFlink driver and its JVM), via getrusage(RUSAGE_CHILDREN) after reaping all of it; wall from start to "
          "the last process's exit; peak RSS: the most the tree's processes held resident at once, summed, sampled "
          "every 50 ms. 'less start-up' subtracts the CPU of the same query over "
          f"{args.startup_rows} rows (JVM, planner, cluster start and stop for Flink).")
    print()
    flinks = [e for e in ("flink", "flink-tuned", "flink-minibatch") if any(r[1] == e for r in results)]
    ratio_heads = "".join(f" | Runnel/{e} | Runnel/{e} less start-up" for e in flinks)
    print("| query | engine | workers | run | rows | wall s | CPU s | peak RSS MiB | rows/CPU-s | start-up CPU s "
          f"| rows/CPU-s less start-up{ratio_heads} |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---:" + " | ---: | ---:" * len(flinks) + " |")
    by_key = {(q, e, w, rep): (rows, cpu, scpu) for q, e, w, rows, _, cpu, scpu, rep, _ in results}
    for q, e, w, rows, wall, cpu, scpu, rep, rss in results:
        raw = rows / cpu
        net = rows / (cpu - scpu) if cpu > scpu else None
        ratios = ""
        for flink in flinks:
            ratio = ratio_net = None
            if e == "runnel" and (q, flink, w, rep) in by_key:
                f_rows, f_cpu, f_scpu = by_key[(q, flink, w, rep)]
                ratio = raw / (f_rows / f_cpu)
                if net is not None and f_cpu > f_scpu:
                    ratio_net = net / (f_rows / (f_cpu - f_scpu))
            ratios += f" | {fmt(ratio) + 'x' if ratio else ''} | {fmt(ratio_net) + 'x' if ratio_net else ''}"
        print(f"| {q} | {e} | {w} | {rep + 1} | {rows:,} | {wall:.2f} | {cpu:.2f} | {rss / 2**20:,.0f} | {raw:,.0f} "
              f"| {scpu:.2f} | {fmt(net, 0)}{ratios} |")


def print_scaling(results):
    """Scaling efficiency: rows/s (wall) at 2 workers over twice that at 1."""
    walls = {(q, e, w): rows / wall for q, e, w, rows, wall, _, _, rep, _ in results if rep == 0}
    lines = [(q, e, walls[(q, e, 1)], walls[(q, e, 2)]) for (q, e, w) in walls
             if w == 1 and (q, e, 2) in walls]
    if not lines:
        return
    print()
    print("| query | engine | rows/s at 1 worker | rows/s at 2 | scaling efficiency |")
    print("| --- | --- | ---: | ---: | ---: |")
    for q, e, one, two in lines:
        print(f"| {q} | {e} | {one:,.0f} | {two:,.0f} | {two / (2 * one):.0%} |")


def write_chart(path, results):
    """An SVG bar chart, by hand (no plotting library to install): rows per
    CPU-second of each engine for each query, at the fewest workers run,
    first run, on a log scale."""
    fewest = min(r[2] for r in results)
    values = collections.OrderedDict()
    for q, e, w, rows, _, cpu, _, rep, _ in results:
        if w == fewest and rep == 0:
            values.setdefault(q, {})[e] = rows / cpu
    engines = [e for e in ("runnel", "flink", "flink-tuned", "flink-minibatch")
               if any(e in v for v in values.values())]
    colors = {"runnel": "#1f77b4", "flink": "#d62728", "flink-tuned": "#ff9896", "flink-minibatch": "#ff7f0e"}
    low = 10 ** math.floor(math.log10(min(min(v.values()) for v in values.values())))
    high = 10 ** math.ceil(math.log10(max(max(v.values()) for v in values.values())))
    left, top, plot_h, bar, gap = 70, 30, 300, 10, 14
    width = max(460, left + len(values) * (len(engines) * bar + gap) + 20)
    height = top + plot_h + 90

    def y(v):
        return top + plot_h * (1 - (math.log10(v) - math.log10(low)) / (math.log10(high) - math.log10(low)))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="16" font-size="13">rows (events) per CPU-second, {fewest} worker(s), log scale</text>']
    decade = low
    while decade <= high:
        out.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(decade):.1f}" y2="{y(decade):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y(decade) + 4:.1f}" text-anchor="end">{decade:,.0f}</text>')
        decade *= 10
    for i, (query, by_engine) in enumerate(values.items()):
        x0 = left + gap / 2 + i * (len(engines) * bar + gap)
        for j, engine in enumerate(engines):
            if engine in by_engine:
                top_y = y(by_engine[engine])
                out.append(f'<rect x="{x0 + j * bar:.1f}" y="{top_y:.1f}" width="{bar - 1}" '
                           f'height="{top + plot_h - top_y:.1f}" fill="{colors[engine]}"><title>{query} {engine}: '
                           f'{by_engine[engine]:,.0f}</title></rect>')
        label_x = x0 + len(engines) * bar / 2
        out.append(f'<text transform="translate({label_x:.1f},{top + plot_h + 8}) rotate(60)">'
                   f'{query.removeprefix("nexmark-")}</text>')
    for j, engine in enumerate(engines):
        out.append(f'<rect x="{left + j * 120}" y="{height - 18}" width="10" height="10" fill="{colors[engine]}"/>'
                   f'<text x="{left + j * 120 + 14}" y="{height - 9}">{engine}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        sys.exit(f"compare: {e}")
