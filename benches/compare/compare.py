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
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
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


def run_measured(cmd, log_path, timeout):
    """Runs cmd to its end; returns (wall seconds, CPU seconds) of its process tree."""
    cpu_before = children_cpu()
    started = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
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
    wall = time.monotonic() - started
    cpu = children_cpu() - cpu_before
    if proc.returncode != 0:
        tail = "".join(Path(log_path).read_text(errors="replace").splitlines(True)[-25:])
        raise Failed(f"exit {proc.returncode}: {' '.join(map(str, cmd))}\n--- last lines of {log_path}:\n{tail}")
    return wall, cpu


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


def nexmark(runnel, path, events, work):
    """`runnel bench nexmark --export`: Nexmark events as JSON lines, in Flink's shape.

    One file in the directory `path` (both engines' filesystem sources read a
    directory). The generator's defaults, as `runnel bench nexmark`: event-time
    rate 10M events/s (so 1M events span 0.1 s of event time, and the 10 s
    windows of q5, q7, q8 see one or two windows), Flink's event mix 1:3:46.
    """
    path.mkdir(parents=True)
    subprocess.run([runnel, "bench", "nexmark", "--quiet", "--export", str(path / "events.jsonl"),
                    "--events", str(events)], check=True, timeout=1800)


DATASETS = {"tumble-json": tumble_json, "nexmark": nexmark}


def dataset(args, kind, rows):
    """The path of `rows` rows of dataset `kind`, made once and kept in the cache."""
    if kind not in DATASETS:
        raise Failed(f"unknown dataset {kind!r}; known: {', '.join(DATASETS)}")
    base = Path(args.cache) / "data" / f"{kind}-{rows}"
    path = base / "input"
    if not (base / "complete").exists():
        log(f"compare: generating {rows} rows of {kind} into {path} ...")
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
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
    """Why a query's outputs cannot be compared as rows, if they cannot."""
    skip = re.search(r"^--\s*compare:\s*check skipped\s*(.*)$", source_of(query).read_text(), re.M)
    return (skip.group(1).strip() or "skipped") if skip else None


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


def run_engine(args, engine, query, workers, input_path, sink, tag):
    work = Path(args.cache) / "work" / f"{query}-{engine}-w{workers}-{tag}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    script = script_for(args, query, engine, input_path, sink, work)
    if engine == "runnel":
        cmd = [args.runnel_bin, "sql", "run", "-q", "--workers", str(workers), "--file", str(script)]
    else:
        cmd = [args.flink_python, str(HERE / "flink_sql.py"), "--parallelism", str(workers),
               "--result", str(work / "result.json")]
        cmd += [f"--conf={kv}" for kv in args.flink_conf] + [str(script)]
    wall, cpu = run_measured(cmd, work / "log.txt", args.timeout)
    if engine == "flink":
        info = json.loads((work / "result.json").read_text())
        args.versions["flink"] = info["flink_version"]
    return wall, cpu


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


def check(args, query, workers, input_path):
    outs = {}
    for engine in ("runnel", "flink"):
        out = Path(args.cache) / "work" / f"{query}-{engine}-w{workers}-check-out"
        shutil.rmtree(out, ignore_errors=True)
        log(f"compare: check {query} {engine} workers={workers} ...")
        run_engine(args, engine, query, workers, input_path, sink_json_dir(out), "check")
        outs[engine] = read_rows(out)
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
        small = dataset(args, kind, args.check_rows) if args.check_rows and not skip else None
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
                for engine in ("runnel", "flink"):
                    wall, cpu = run_engine(args, engine, query, workers, startup, BLACKHOLE, "startup")
                    startup_cpu[engine] = cpu
                    log(f"compare: {query} {engine} workers={workers} start-up ({startup_lines} rows): "
                        f"wall {wall:.2f} s, CPU {cpu:.2f} s")
                for rep in range(args.repeat):
                    for engine in ("runnel", "flink"):
                        log(f"compare: {query} {engine} workers={workers} run {rep + 1}/{args.repeat} ({rows} rows) ...")
                        wall, cpu = run_engine(args, engine, query, workers, full, BLACKHOLE, f"run{rep}")
                        log(f"compare:   wall {wall:.2f} s, CPU {cpu:.2f} s, {rows / cpu:,.0f} rows/CPU-s")
                        results.append((query, engine, workers, rows, wall, cpu, startup_cpu[engine], rep))
            except Failed as e:
                failures.append(f"{query}, workers={workers}: {e}")
                log(f"compare: {query} FAILED: {e}")

    print()
    for line in machine(args) + [f"flink options: {', '.join(args.flink_conf) or 'none (Flink defaults)'}"]:
        print(line)
    if results:
        print_table(args, results)
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
          "the last process's exit. 'less start-up' subtracts the CPU of the same query over "
          f"{args.startup_rows} rows (JVM, planner, cluster start and stop for Flink).")
    print()
    print("| query | engine | workers | run | rows | wall s | CPU s | rows/CPU-s | start-up CPU s "
          "| rows/CPU-s less start-up | Runnel/Flink | Runnel/Flink less start-up |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    by_key = {(q, e, w, rep): (rows, wall, cpu, scpu) for q, e, w, rows, wall, cpu, scpu, rep in results}
    for q, e, w, rows, wall, cpu, scpu, rep in results:
        raw = rows / cpu
        net = rows / (cpu - scpu) if cpu > scpu else None
        ratio = ratio_net = None
        if e == "runnel" and (q, "flink", w, rep) in by_key:
            f_rows, _, f_cpu, f_scpu = by_key[(q, "flink", w, rep)]
            ratio = raw / (f_rows / f_cpu)
            if net is not None and f_cpu > f_scpu:
                ratio_net = net / (f_rows / (f_cpu - f_scpu))
        print(f"| {q} | {e} | {w} | {rep + 1} | {rows:,} | {wall:.2f} | {cpu:.2f} | {raw:,.0f} | {scpu:.2f} "
              f"| {fmt(net, 0)} | {fmt(ratio) + 'x' if ratio else ''} | {fmt(ratio_net) + 'x' if ratio_net else ''} |")


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        sys.exit(f"compare: {e}")
