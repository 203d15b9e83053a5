#!/usr/bin/env bash
# teal's benchmarks in one command, on a fresh checkout:
#
#   benches/run.sh
#
# Installs moto into a virtualenv and starts it on loopback (as .ci/run
# does), then runs the harness in benches/teal.rs, which prints one table and
# writes it to docs/BENCHMARKS.md. Knobs: BENCH_RUNS (30), BENCH_MANY (50),
# BENCH_OUT, BENCH_PROFILE (dev: the figures are I/O-bound and a cold release
# build takes ~25 minutes on 2 cores; `release` for an optimised run). The
# proxy-vs-nginx figures are a separate script,
# benches/proxy.sh (it needs nginx and wrk from the distribution).
set -euo pipefail
cd "$(dirname "$0")/.."
export TEAL_VENV="${TEAL_VENV:-$PWD/.venv}"
export TEAL_MOTO_PIDS="$(mktemp)"
trap 'kill $(cat "$TEAL_MOTO_PIDS") 2>/dev/null || true' EXIT
eval "$(tests/support/moto-up.sh)"
echo "moto at $TEAL_MOTO_ENDPOINT"
time cargo bench --locked --bench teal --profile "${BENCH_PROFILE:-dev}"
