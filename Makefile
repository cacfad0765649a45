# The commands the README names. Every target installs what it needs first,
# so `make demo` and `make test` work on a fresh Debian machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# One persistent target dir for development and CI, so CI rebuilds only what
# changed. An existing CARGO_TARGET_DIR wins.
CARGO_TARGET_DIR ?= $(HOME)/.cache/runnel-target
export CARGO_TARGET_DIR

APT_PACKAGES := librocksdb-dev libclang-dev clang mold curl time python3-pip libssl-dev pkg-config postgresql ffmpeg chromium nodejs

# hls.js, dash.js and playwright-core for the browser tests, outside the repo:
# scripts/deps.sh installs them there, and the test reads them from there.
RUNNEL_TEST_NODE_DIR ?= $(HOME)/.cache/runnel-test-node
export RUNNEL_TEST_NODE_DIR

RELEASE_BIN := $(CARGO_TARGET_DIR)/release/runnel

.PHONY: help deps build demo test lint bench bench-analytics bench-streams compare flink-oracle

help:
	@echo "make demo   build a release runnel, start a server on ./runnel-data at :4567 and show it working"
	@echo "make test   lint, then run the whole test suite (unit, integration and end-to-end)"
	@echo "make bench  run the benchmarks and print their figures"
	@echo "make bench-analytics  SQL jobs in the server: stream vs file throughput, put-to-row latency, idle cost"
	@echo "make bench-streams  runnel bench streams against Runnel and kinesis-local (npm) at the same rates"
	@echo "make compare  run Runnel beside Apache Flink (from PyPI) on the same SQL and file; print one table"
	@echo "make flink-oracle  ask Apache Flink 2.3 (PyPI) for the answers sql/tests/flink/functions.sql is checked against"
	@echo "make deps   install the system and Python packages the project needs (idempotent)"
	@echo "make lint   rustfmt and clippy"

deps:
	@scripts/deps.sh $(APT_PACKAGES)

build: deps
	cargo build --release -p runnel

demo: build
	@RUNNEL_BIN=$(RELEASE_BIN) scripts/demo.sh

test: lint
	cargo nextest run --workspace --no-fail-fast

lint: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

KINESIS_LOCAL_DIR ?= $(HOME)/.cache/runnel-bench/kinesis-local

# One cargo invocation for every bench: features are unified per
# invocation, and `-p runnel-engine` alone would build DataFusion a second
# time with another feature set.
bench: deps
	@# The Kinesis comparison runs kinesis-local (npm) beside runnel when npm is there.
	@if command -v npm >/dev/null && [ ! -e $(KINESIS_LOCAL_DIR)/node_modules/kinesis-local/main.js ]; then \
	  mkdir -p $(KINESIS_LOCAL_DIR) && npm install --prefix $(KINESIS_LOCAL_DIR) --no-audit --no-fund --silent kinesis-local@0.6.2; fi
	@# The Firehose ingest comparison runs moto's server (PyPI) beside runnel.
	@command -v moto_server >/dev/null || python3 -m pip install --quiet 'moto[server]==5.*' \
	  || python3 -m pip install --quiet --user --break-system-packages 'moto[server]==5.*'
	KINESIS_LOCAL_DIR=$(KINESIS_LOCAL_DIR)/node_modules/kinesis-local \
	  cargo bench -p runnel-engine -p runnel-store -p runnel -p runnel-firehose \
	  --bench window --bench store --bench kinesis --bench firehose --bench delivery --bench video

# Minutes of work on a release build (10M rows written twice, then read).
bench-analytics: build
	RUNNEL_BIN=$(RELEASE_BIN) python3 benches/analytics/analytics.py throughput
	RUNNEL_BIN=$(RELEASE_BIN) python3 benches/analytics/analytics.py latency
	RUNNEL_BIN=$(RELEASE_BIN) python3 benches/analytics/analytics.py idle
	RUNNEL_BIN=$(RELEASE_BIN) python3 benches/analytics/analytics.py checkpoints

# `runnel bench streams` at fixed rates against Runnel and kinesis-local.
bench-streams: build
	@if [ ! -e $(KINESIS_LOCAL_DIR)/node_modules/kinesis-local/main.js ]; then \
	  mkdir -p $(KINESIS_LOCAL_DIR) && npm install --prefix $(KINESIS_LOCAL_DIR) --no-audit --no-fund --silent kinesis-local@0.6.2; fi
	RUNNEL_BIN=$(RELEASE_BIN) KINESIS_LOCAL_DIR=$(KINESIS_LOCAL_DIR)/node_modules/kinesis-local \
	  python3 benches/streams/compare.py

# Not part of test or bench: it installs Flink (700 MB) and takes minutes.
# The published table's run (benches/README.md, "Nexmark beside Flink,
# tuned"): every query, 1M events spanning 100 s of event time, Flink by
# default and as Nexmark tunes it. COMPARE_ARGS overrides it.
COMPARE_ARGS ?= --rows 1000000 --check-rows 50000 --workers 1 --repeat 1 --event-rate 10000 \
  --check-event-rate 1000 --timeout 900 --flink-setups default tuned minibatch \
  --chart benches/compare/nexmark-1m.svg
compare: build
	@scripts/deps.sh python3-venv openjdk-17-jre-headless
	@RUNNEL_BIN=$(RELEASE_BIN) benches/compare/compare.sh $(COMPARE_ARGS)

# Not part of test: CI compares with the stored answers and needs no Flink.
# New cases are asked; `ORACLE_ARGS=--all` asks every case again.
FLINK_ORACLE_VENV ?= $(HOME)/.cache/runnel-bench/flink23-venv
flink-oracle:
	@scripts/deps.sh python3-venv openjdk-17-jre-headless
	@if [ "$$(cat $(FLINK_ORACLE_VENV)/.installed 2>/dev/null)" != "apache-flink==2.3.0" ]; then \
	  python3 -m venv $(FLINK_ORACLE_VENV) && \
	  $(FLINK_ORACLE_VENV)/bin/pip install --quiet --disable-pip-version-check apache-flink==2.3.0 && \
	  echo "apache-flink==2.3.0" > $(FLINK_ORACLE_VENV)/.installed; fi
	$(FLINK_ORACLE_VENV)/bin/python scripts/flink_oracle.py $(ORACLE_ARGS)
