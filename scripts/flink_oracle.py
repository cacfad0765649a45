#!/usr/bin/env python3
"""Asks Apache Flink for the answers to sql/tests/flink/functions.sql.

    python scripts/flink_oracle.py [--all]    # needs PyPI apache-flink and Java 17

Every case is run by a real Flink (PyFlink's local mini-cluster, streaming
mode) over the same JSON files Runnel's test reads; each answer is the
final table its changelog describes, each row as Flink's Row.toString
prints it (the text of the print connector), sorted; an error is kept as
its message. The answers go to sql/tests/flink/functions.expected.json,
which sql/tests/it/flink_functions.rs compares Runnel with, without Flink.
Cases answered before keep their answers unless --all is given (each
asks a fresh mini-cluster job, about two seconds).

`make flink-oracle` installs PyFlink 2.3.0 into a virtualenv under
~/.cache/runnel-bench and runs this.
"""

import json
import os
import sys

import pyflink
from pyflink.table import EnvironmentSettings, TableEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "..", "sql", "tests", "flink")

TABLES = {
    "t": "i INT, n INT, b BIGINT, d DOUBLE, dn DOUBLE, s STRING, e STRING, sn STRING, "
         "ts TIMESTAMP(3), bo BOOLEAN, m DECIMAL(10, 2)",
    "r": "k STRING, v INT, x DOUBLE, w STRING, ts TIMESTAMP(3)",
    "o": "id BIGINT, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND",
    "p": "k STRING, v INT, x DOUBLE, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND",
    "a": "id BIGINT, tags ARRAY<STRING>, nums ARRAY<INT>, m MAP<STRING, INT>",
    "m": "sym STRING, price INT, tax INT, ts TIMESTAMP(3), "
         "WATERMARK FOR ts AS ts - INTERVAL '1' SECOND",
    "od": "id BIGINT, currency STRING, amount INT, ts TIMESTAMP(3), "
          "WATERMARK FOR ts AS ts - INTERVAL '1' SECOND",
    "rt": "currency STRING, rate INT, ts TIMESTAMP(3), "
          "WATERMARK FOR ts AS ts - INTERVAL '1' SECOND, PRIMARY KEY (currency) NOT ENFORCED",
    "rc": "currency STRING, rate INT, ts TIMESTAMP(3), "
          "WATERMARK FOR ts AS ts - INTERVAL '1' SECOND, PRIMARY KEY (currency) NOT ENFORCED",
    "tm": "id INT, t0 TIME, t3 TIME(3)",
}
# Tables read in another format than 'json': `rc` is a Debezium changelog.
FORMATS = {"rc": "debezium-json"}


def cases(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("--"):
                yield line


def environment():
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("parallelism.default", "1")
    config.set("table.local-time-zone", "UTC")
    for name, columns in TABLES.items():
        path = os.path.abspath(os.path.join(DIR, "data", f"{name}.jsonl"))
        fmt = FORMATS.get(name, "json")
        env.execute_sql(f"CREATE TABLE {name} ({columns}) WITH ("
                        f"'connector' = 'filesystem', 'path' = '{path}', 'format' = '{fmt}')")
    return env


def fields(row_text):
    """`+I[a, b]` -> (`+I`, `a, b`)."""
    return row_text[:2], row_text[3:-1]


def final_table(env, query):
    """The rows a query's changelog ends with, each as Flink prints it."""
    rows = []
    result = env.execute_sql(query)
    iterator = result._j_table_result.collect()
    try:
        while iterator.hasNext():
            kind, text = fields(iterator.next().toString())
            if kind in ("+I", "+U"):
                rows.append(text)
            else:
                rows.remove(text)
    finally:
        iterator.close()
    return sorted(rows)


def message(error):
    java = getattr(error, "java_exception", None)
    text = java.toString() if java is not None else str(error)
    cause = java
    while cause is not None and cause.getCause() is not None:
        cause = cause.getCause()
    if cause is not None and cause is not java:
        text = cause.toString()
    return text.splitlines()[0][:400]


def ask(env, sql):
    query = sql if sql.upper().startswith("SELECT ") else f"SELECT {sql} FROM t"
    try:
        return {"sql": sql, "rows": final_table(env, query)}
    except Exception as error:  # Flink's answer is the error
        return {"sql": sql, "error": message(error)}


def main():
    env = environment()
    out_path = os.path.join(DIR, "functions.expected.json")
    answers = {}
    if "--all" not in sys.argv[1:] and os.path.exists(out_path):
        with open(out_path) as f:
            answers = {a["sql"]: a for a in json.load(f)["cases"]}
    all_cases = list(cases(os.path.join(DIR, "functions.sql")))
    for sql in all_cases:
        if sql not in answers:
            answers[sql] = ask(env, sql)
            print(("ok   " if "rows" in answers[sql] else "err  ") + sql, file=sys.stderr)
    version = pyflink.__version__
    out = {
        "flink": version,
        "tables": TABLES,
        "formats": FORMATS,
        "cases": [answers[c] for c in all_cases],
    }
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    failed = sum(1 for a in out["cases"] if "error" in a)
    print(f"{len(all_cases)} cases, {failed} answered with an error, Flink {version}", file=sys.stderr)


if __name__ == "__main__":
    main()
