#!/usr/bin/env bash
# Group-commit efficiency of one zk-server build: starts a fresh server (fsync on), runs
# one zk-bench workload, and prints the bench's figures with the number of WAL fsyncs,
# writes per fsync, the mean fsync time and the server's CPU ticks (from /metrics and
# /proc). Writes per fsync is the figure to compare between builds on a noisy machine:
# throughput is roughly writes-per-fsync / fsync time.
#
#   cargo build --release -p zk-server -p zk-bench
#   bench/write-batching.sh --workload set --clients 16 --duration 3 --keys 16
#
# Knobs (environment): BIN (dir with zk-server and zk-bench; default target/release),
# PORT (27181; the admin port is PORT+100), SYNC (always). Binds 127.0.0.1 only; the
# server is stopped and its data removed on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$here/../target}/release}
PORT=${PORT:-27181}
ADMIN=$((PORT + 100))
SYNC=${SYNC:-always}
data=$(mktemp -d "${TMPDIR:-/tmp}/zk-batching.XXXXXX")
"$BIN/zk-server" --data-dir "$data/d" --client-addr "127.0.0.1:$PORT" \
  --admin-addr "127.0.0.1:$ADMIN" --sync "$SYNC" > "$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"' EXIT
metric() { curl -sf "127.0.0.1:$ADMIN/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
for _ in $(seq 100); do metric zk_fsync_latency_seconds_count > /dev/null 2>&1 && break; sleep 0.1; done
ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
f0=$(metric zk_fsync_latency_seconds_count); s0=$(metric zk_fsync_latency_seconds_sum); c0=$(ticks)
out=$("$BIN/zk-bench" --server "127.0.0.1:$PORT" "$@" | tail -n 1)
f1=$(metric zk_fsync_latency_seconds_count); s1=$(metric zk_fsync_latency_seconds_sum); c1=$(ticks)
ops=$(jq .ops <<< "$out")
awk -v ops="$ops" -v f="$((f1 - f0))" -v s="$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')" \
  -v cpu="$((c1 - c0))" -v out="$out" 'BEGIN {
    printf "%s\nfsyncs=%d writes_per_fsync=%.1f fsync_mean_ms=%.2f server_cpu_ticks=%d\n",
      out, f, (f ? ops / f : 0), (f ? s * 1000 / f : 0), cpu }'
