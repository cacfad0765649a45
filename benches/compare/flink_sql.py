"""Runs one Flink SQL script as one streaming job in a local PyFlink cluster.

    <flink-venv>/bin/python flink_sql.py --parallelism N --result OUT.json SCRIPT.sql

Run by compare.py under the venv that compare.sh installs. The statements
run in order; every INSERT goes into one statement set, so the script is one
job as it is in `runnel sql run`, and this waits until that job finishes
(bounded filesystem sources end it). On success it writes the Flink
version, the JVM's pid and the job id as JSON to the --result file.
"""

import argparse
import json
import os
import re
import sys
import time


def statements(text):
    """The script's statements: `--` comment lines dropped, split at `;`.

    Good enough for the benchmark's queries, which keep `;` out of strings.
    """
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


INSERT = re.compile(r"^INSERT\s+INTO\s+\S+\s+(.*)$", re.S | re.I)
KINDS = {0: "+I", 1: "-U", 2: "+U", 3: "-D"}


def plain(value):
    """A collected value as JSON: times as ISO text with a space, as Flink's
    JSON format writes them; DECIMALs as numbers; nested rows as lists."""
    import datetime
    import decimal

    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def collect(env, script_statements, out_path):
    """The changelog of each INSERT's query, with every row's kind: what an
    updating query's sink would be told, for comparing final tables."""
    with open(out_path, "w") as out:
        for statement in script_statements:
            found = INSERT.match(statement)
            if not found:
                env.execute_sql(statement)
                continue
            with env.sql_query(found.group(1)).execute().collect() as rows:
                for row in rows:
                    kind = KINDS[row.get_row_kind().value]
                    out.write(json.dumps({"op": kind, "row": [plain(v) for v in row]}) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parallelism", type=int, required=True)
    parser.add_argument("--result", required=True, help="where the JSON goes")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Flink configuration option, after the parallelism")
    parser.add_argument("--collect", metavar="OUT.jsonl",
                        help="run each INSERT's query instead and write its changelog here, a JSON line "
                             "per row: {\"op\": \"+I|-U|+U|-D\", \"row\": [...]}")
    parser.add_argument("script")
    args = parser.parse_args()

    # Imported here so that `--help` works without a JVM.
    from pyflink.table import EnvironmentSettings, TableEnvironment
    from pyflink.version import __version__ as flink_version
    from pyflink.java_gateway import get_gateway

    started = time.monotonic()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    # Parallelism of every operator, sources included, as Runnel's --workers.
    config.set("parallelism.default", str(args.parallelism))
    for kv in args.conf:
        key, _, value = kv.partition("=")
        config.set(key.strip(), value.strip())
    jvm_pid = get_gateway().jvm.ProcessHandle.current().pid()
    print(f"flink: JVM {jvm_pid} up in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)

    with open(args.script) as f:
        script = f.read()
    if args.collect:
        collect(env, statements(script), args.collect)
        with open(args.result, "w") as f:
            json.dump({"flink_version": flink_version, "jvm_pid": jvm_pid, "job_id": None}, f)
        return
    inserts = env.create_statement_set()
    n_inserts = 0
    for statement in statements(script):
        if statement.upper().startswith("INSERT"):
            inserts.add_insert_sql(statement)
            n_inserts += 1
        else:
            env.execute_sql(statement)
    if n_inserts == 0:
        sys.exit("flink_sql.py: the script has no INSERT INTO")
    result = inserts.execute()
    job_id = str(result.get_job_client().get_job_id())
    # Bounded sources: the job finishes once they are read, firing every window.
    result.wait()
    print(f"flink: job {job_id} finished {time.monotonic() - started:.1f} s after start", file=sys.stderr, flush=True)
    with open(args.result, "w") as f:
        json.dump({"flink_version": flink_version, "jvm_pid": jvm_pid, "job_id": job_id}, f)


if __name__ == "__main__":
    main()
