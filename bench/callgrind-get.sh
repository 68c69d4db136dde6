#!/bin/bash
# Server instructions per request, deterministic (valgrind's callgrind counts
# instructions, not time, so the figure holds on a loaded machine).
# usage: BIN=target/release bench/callgrind-get.sh [WORKLOAD] [CLIENTS] [TARGET]
# Starts BIN/zk-server under callgrind (--sync never, loopback port 41181), warms up
# with a 3 s zk-bench run, zeroes the counters, runs a 6 s zk-bench run, dumps the
# counters and prints instructions per operation of that run. KEEP=FILE keeps the dump
# (for callgrind_annotate).
set -euo pipefail
BIN=${BIN:-target/release}
workload=${1:-get}; clients=${2:-64}; target=${3:-native}
port=${PORT:-41181}; admin=$((port - 100))
dir=$(mktemp -d); out="$dir/callgrind.out"
valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN/zk-server" --data-dir "$dir/data" \
  --client-addr 127.0.0.1:$port --admin-addr 127.0.0.1:$admin --sync never --max-client-cnxns 0 \
  > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 240); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.5; done
sleep 2
bench() { "$BIN/zk-bench" --server 127.0.0.1:$port --target "$target" --workload "$workload" \
  --clients "$clients" --inflight 1 --duration "$1"; }
bench 3 > /dev/null
callgrind_control -z $pid > /dev/null
ops=$(bench 6 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ops"])')
callgrind_control -d $pid > /dev/null
sleep 1
dump=$(ls -t "$out".* | head -1)
ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
[ -n "${KEEP:-}" ] && cp "$dump" "$KEEP"
echo "{\"workload\":\"$workload\",\"clients\":$clients,\"target\":\"$target\",\"ops\":$ops,\"server_ir\":$ir,\"ir_per_op\":$((ir / ops))}"
