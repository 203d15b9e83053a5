#!/usr/bin/env bash
# The simulator soak: `teal sim --runs N` (release build) from two seed bases
# nobody used before (the time now, and a number derived from it), each run
# timed, written as the "Simulator soak" section of docs/BENCHMARKS.md (the
# section benches/teal.rs keeps when it rewrites the rest).
#
#   bash benches/soak.sh            # 1,000,000 seeds per base (about 7 minutes each here)
#   SOAK_RUNS=200000 bash benches/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${SOAK_RUNS:-1000000}
b1=${SOAK_BASE:-$(date +%s)}
b2=$(( (b1 * 7919) % 4000000000 + 10000000 ))
cargo build --release --locked --bin teal >&2
doc=docs/BENCHMARKS.md
rows=""
for base in "$b1" "$b2"; do
  log=$(mktemp)
  start=$(date +%s.%N)
  status=0
  target/release/teal sim --seed "$base" --runs "$runs" >"$log" 2>&1 || status=$?
  secs=$(python3 -c "import time; print(f'{time.time() - $start:.0f}')")
  summary=$(tail -n 1 "$log")
  echo "$summary ($secs s)" >&2
  if [ "$status" -ne 0 ]; then
    grep '^seed ' "$log" | cut -c1-120 >&2 || true
  fi
  rows+="| $base | $runs | ${summary##*: } | $secs s |"$'\n'
  rm -f "$log"
done
section="## Simulator soak

Written by \`benches/soak.sh\`: \`teal sim --seed BASE --runs N\` on a release build, every safety
invariant checked after every step of every run (faults, kills and resumes, operator commands,
reconcile passes, rolling updates, hooks), from two bases no earlier run used. A seed that breaks
an invariant is printed and replays with \`teal sim --seed S\`.

- machine: $(python3 -c 'import platform, os; print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")'); teal \`$(git rev-parse --short HEAD)\`

| base | seeds | result | wall time |
|---:|---:|---|---:|
$rows"
python3 - "$doc" "$section" <<'PY'
import sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
i = text.find("## Simulator soak")
text = (text[:i] if i >= 0 else text.rstrip() + "\n\n") + section
open(path, "w").write(text)
PY
echo "written to $doc" >&2
