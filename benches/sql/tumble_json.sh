#!/usr/bin/env bash
# End to end: `runnel sql run` of a tumbling aggregation over a JSON-lines
# file, reported as rows per second and rows per CPU-second.
#
#   benches/sql/tumble_json.sh [ROWS] [WORKERS...]     (defaults: 10000000, 1 2)
#
# The input is made by Runnel itself (datagen -> filesystem JSON sink) once
# and kept in $BENCH_DIR (default ./bench-data).
set -euo pipefail

ROWS=${1:-10000000}
shift || true
WORKER_COUNTS=("${@:-1 2}")
BIN=${RUNNEL_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/runnel-target}/release/runnel}
DIR=${BENCH_DIR:-./bench-data}/tumble-json-$ROWS
mkdir -p "$DIR"

if [ ! -s "$DIR/input/part-0.json" ]; then
  echo "generating $ROWS rows into $DIR/input ..." >&2
  cat >"$DIR/generate.sql" <<SQL
CREATE TABLE gen (k BIGINT, v BIGINT, ts TIMESTAMP(3)) WITH (
  'connector' = 'datagen', 'rows-per-second' = '0', 'number-of-rows' = '$ROWS',
  'fields.k.min' = '0', 'fields.k.max' = '9999',
  'fields.v.min' = '0', 'fields.v.max' = '1000000',
  'fields.ts.kind' = 'sequence', 'fields.ts.start' = '1700000000000', 'fields.ts.end' = '$((1700000000000 + ROWS - 1))'
);
CREATE TABLE input (k BIGINT, v BIGINT, ts TIMESTAMP(3)) WITH (
  'connector' = 'filesystem', 'path' = '$DIR/input', 'format' = 'json'
);
INSERT INTO input SELECT * FROM gen;
SQL
  "$BIN" sql run -q --file "$DIR/generate.sql"
fi

cat >"$DIR/query.sql" <<SQL
CREATE TABLE input (k BIGINT, v BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '$DIR/input', 'format' = 'json');
CREATE TABLE out_table (window_start TIMESTAMP(3), k BIGINT, c BIGINT, s BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out_table
SELECT window_start, k, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k;
SQL

bytes=$(du -b "$DIR/input" | cut -f1)
printf '%s rows, %s MB of JSON lines; TUMBLE(10 s) COUNT(*), SUM(v) GROUP BY k (10K keys) -> blackhole\n' "$ROWS" $((bytes / 1000000))
printf '%-8s %10s %10s %14s %18s\n' workers "wall s" "cpu s" "rows/s" "rows/cpu-s"
for workers in ${WORKER_COUNTS[*]}; do
  out=$( { /usr/bin/time -f '%e %U %S' "$BIN" sql run -q --workers "$workers" --file "$DIR/query.sql" >/dev/null; } 2>&1 | tail -n 1)
  read -r wall user sys <<<"$out"
  awk -v w="$workers" -v wall="$wall" -v u="$user" -v s="$sys" -v n="$ROWS" \
    'BEGIN { cpu = u + s; printf "%-8s %10.2f %10.2f %14.0f %18.0f\n", w, wall, cpu, n / wall, n / cpu }'
done
