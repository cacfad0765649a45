#!/usr/bin/env bash
# Runnel beside Apache Flink: the same SQL over the same file, rows per
# CPU-second of each engine's processes, in one table (issues 4 and 6).
#
#   benches/compare/compare.sh [compare.py options]
#       e.g. --rows 10000000 --workers 1 2 --queries tumble --repeat 1
#       or   --rows 1000000 --workers 1 --queries nexmark-q0 nexmark-q7 --check-rows 50000
#
# Installs Flink from PyPI (apache-flink, which bundles Flink's jars; it runs
# on the machine's Java 17) into a venv in the cache once, then hands over to
# compare.py, which makes the inputs, checks that both engines give the same
# rows on a small input and measures both. See compare.py's docstring for
# what is counted.
#
# Environment: RUNNEL_BIN (default: the release build), RUNNEL_BENCH_CACHE
# (default ~/.cache/runnel-bench: the venv, inputs, run dirs and logs),
# FLINK_VERSION (default 1.20.5, Flink's last 1.x line, which supports
# Java 17 and Python 3.11).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${RUNNEL_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/runnel-target}/release/runnel}
CACHE=${RUNNEL_BENCH_CACHE:-$HOME/.cache/runnel-bench}
FLINK_VERSION=${FLINK_VERSION:-1.20.5}
VENV=$CACHE/flink-venv

if [ ! -x "$BIN" ]; then
  echo "no runnel binary at $BIN: build it with 'make build' or set RUNNEL_BIN" >&2
  exit 1
fi
command -v java >/dev/null || { echo "PyFlink needs java (17) on PATH" >&2; exit 1; }

# A marker naming the version, written only after pip succeeded, makes the
# install idempotent and redoes an interrupted or other-version one.
if [ "$(cat "$VENV/.installed" 2>/dev/null || true)" != "apache-flink==$FLINK_VERSION" ]; then
  echo "installing apache-flink==$FLINK_VERSION into $VENV (about 700 MB) ..." >&2
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "apache-flink==$FLINK_VERSION" >&2
  echo "apache-flink==$FLINK_VERSION" >"$VENV/.installed"
fi

# PyFlink imports apache-beam, which warns about pkg_resources on every start.
export PYTHONWARNINGS=ignore
exec python3 "$HERE/compare.py" --runnel-bin "$BIN" --flink-python "$VENV/bin/python" --cache "$CACHE" "$@"
