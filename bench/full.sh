#!/usr/bin/env bash
# The whole benchmark of issue #6 in one command, then the report:
#   1. load runs, zk-server (native and ZooKeeper protocol) and Apache ZooKeeper 3.8 side
#      by side (bench/compare.sh): standalone and 3-node ensemble, inflight 1 and 16,
#      every workload (create set get mixed watch lock), clients 1 16 64;
#   2. zk-bench lifecycle for both: cold start, RSS with 1,000,000 znodes of 100 bytes,
#      snapshot time, restart-recovery time, fsync probe in the data dir;
#   3. zk-failover for both: kill -9 of the leader -> next acknowledged write, 20 trials;
#   4. zk-bench report: the generated section of docs/benchmarks.md and docs/plots/*.svg.
#
#   bench/full.sh                                   # the full run (~30 min; prints an estimate)
#   DURATION=1 SCALE=0.02 CLIENTS="4" bench/full.sh  # a smoke run of a few minutes
#
# Knobs (environment): DURATION (3 s per load run), SCALE (1: 1,000,000 znodes and 20
# failover trials; 0.02: 20,000 znodes and 2 trials), CLIENTS ("1 16 64"), INFLIGHT
# ("1 16"), WORKLOADS ("create set get mixed watch lock"), TOPOLOGIES ("standalone
# ensemble"), SYSTEMS ("zk-server apache-zk"), OUT (results dir; default
# target/bench-full/<UTC time>), REPORT_OUT (where benchmarks.md and plots/ go; default
# docs), SKIP_BUILD=1 (use the binaries in BIN as they are), BIN (target/release).
# Everything binds 127.0.0.1; every step is bounded by `timeout`; whatever a step starts
# it stops itself, and an interrupted run stops the step that is running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
DURATION=${DURATION:-3}
SCALE=${SCALE:-1}
CLIENTS=${CLIENTS:-1 16 64}
INFLIGHT=${INFLIGHT:-1 16}
WORKLOADS=${WORKLOADS:-create set get mixed watch lock}
TOPOLOGIES=${TOPOLOGIES:-standalone ensemble}
SYSTEMS=${SYSTEMS:-zk-server apache-zk}
BIN=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}
OUT=${OUT:-$root/target/bench-full/$(date -u +%Y%m%dT%H%M%SZ)}
REPORT_OUT=${REPORT_OUT:-$root/docs}
ZNODES=$(awk -v s="$SCALE" 'BEGIN { n = int(1000000 * s); print (n < 1000 ? 1000 : n) }')
TRIALS=${TRIALS:-$(awk -v s="$SCALE" 'BEGIN { n = int(20 * s + 0.5); print (n < 1 ? 1 : n) }')}
case "$DURATION" in '' | *[!0-9]*) echo "DURATION must be whole seconds" >&2; exit 2 ;; esac

words() { echo $#; }
n_sys=$(words $SYSTEMS)
n_cols=$(( $([[ " $SYSTEMS " == *" zk-server "* ]] && echo 2 || echo 0) + $([[ " $SYSTEMS " == *" apache-zk "* ]] && echo 1 || echo 0) ))
runs=$(( $(words $TOPOLOGIES) * n_cols * $(words $WORKLOADS) * $(words $CLIENTS) * $(words $INFLIGHT) ))
# ~2 s per run besides its DURATION (process, sessions, 1000 keys, cleanup); lifecycle:
# the tree at ~15k creates/s, built once, loaded three times; failover: ~4 s per trial.
estimate=$(( runs * (DURATION + 2) + $(words $TOPOLOGIES) * n_sys * 15 \
  + n_sys * (ZNODES / 15000 * 2 + 30) + n_sys * TRIALS * 4 + 60 ))
echo "# bench/full.sh: $runs load runs of ${DURATION} s, lifecycle with $ZNODES znodes, $TRIALS failover trials per system" >&2
echo "# estimated run time: ~$(( (estimate + 59) / 60 )) min (plus the release build if needed); results in $OUT" >&2

if [ "${SKIP_BUILD:-}" != 1 ]; then
  (cd "$root" && cargo build --release -p zk-server -p zk-bench)
fi
for b in zk-server zk-bench zk-failover; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b: cargo build --release -p zk-server -p zk-bench" >&2; exit 2; }
done
mkdir -p "$OUT"
results=$OUT/results.jsonl
: > "$results"
commands=()

step_pid=""
cleanup() {
  if [ -n "$step_pid" ] && kill -0 "$step_pid" 2>/dev/null; then
    kill -TERM "$step_pid" 2>/dev/null || true
    wait "$step_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step LIMIT_S CMD...: runs one step in the background (so an interrupt can stop it),
# bounded by `timeout`, its stdout appended to $results; a failed step is reported
# and the run goes on.
step() {
  local limit=$1
  shift
  local quoted
  quoted=$(printf '%q ' "$@")
  commands+=("${quoted% }")
  echo "# $(date -u +%H:%M:%S) $*" >&2
  timeout --kill-after=30 "$limit" "$@" >> "$results" &
  step_pid=$!
  if ! wait "$step_pid"; then
    echo "# step failed or timed out: $*" >&2
  fi
  step_pid=""
}

cd "$root"
step 120 "$BIN/zk-bench" fsync --dir "$OUT" --phase start
per_topology=$(( runs / $(words $TOPOLOGIES) * (DURATION * 4 + 60) + 300 ))
for topology in $TOPOLOGIES; do
  # compare.sh prints its JSON lines; its results.jsonl (with the fsync probes) is the one kept.
  step "$per_topology" env TOPOLOGY="$topology" SYSTEMS="$SYSTEMS" WORKLOADS="$WORKLOADS" \
    CLIENTS="$CLIENTS" INFLIGHT="$INFLIGHT" DURATION="$DURATION" BIN="$BIN" \
    OUT="$OUT/compare-$topology" "$here/compare.sh"
done
# compare.sh's stdout (lines and table) went to $results too: keep only its own file.
: > "$results.tmp"
grep -h '^{' "$results" | jq -c 'select(.workload == null)' >> "$results.tmp" || true
for topology in $TOPOLOGIES; do
  [ -f "$OUT/compare-$topology/results.jsonl" ] && cat "$OUT/compare-$topology/results.jsonl" >> "$results.tmp"
done
mv "$results.tmp" "$results"

lifecycle_limit=$(( ZNODES / 1000 * 6 + 600 ))
for system in $SYSTEMS; do
  step "$lifecycle_limit" "$BIN/zk-bench" lifecycle --system "$system" --znodes "$ZNODES" \
    --dir "$OUT/lifecycle-$system" --apache-scripts "$here/apache-zk" --timeout $(( lifecycle_limit / 3 ))
done
for system in $SYSTEMS; do
  step $(( TRIALS * 90 + 120 )) "$BIN/zk-failover" --system "$system" --trials "$TRIALS" \
    --data-dir "$OUT/failover-$system" --apache-scripts "$here/apache-zk"
done
step 120 "$BIN/zk-bench" fsync --dir "$OUT" --phase end

report=("$BIN/zk-bench" report --input "$results" --out "$REPORT_OUT"
  --title "Full run, $(date -u +%Y-%m-%d) (bench/full.sh, DURATION=$DURATION, SCALE=$SCALE)"
  --command "cargo build --release -p zk-server -p zk-bench"
  --command "DURATION=$DURATION SCALE=$SCALE CLIENTS=\"$CLIENTS\" INFLIGHT=\"$INFLIGHT\" WORKLOADS=\"$WORKLOADS\" TOPOLOGIES=\"$TOPOLOGIES\" SYSTEMS=\"$SYSTEMS\" bench/full.sh"
  --command "# which ran, in order:")
for c in "${commands[@]}"; do report+=(--command "${c//$root\//}"); done
"${report[@]}" >&2
echo "# results: $results; report: $REPORT_OUT/benchmarks.md, $REPORT_OUT/plots/" >&2
