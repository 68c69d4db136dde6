#!/usr/bin/env bash
# Side by side: zk-server (release build, fsync on) through its native protocol and
# through the ZooKeeper protocol, then Apache ZooKeeper 3.8 (forceSync=yes) through the
# ZooKeeper protocol; same workloads, same machine, one after the other (never both
# running at once). Prints the JSON lines (with "server" added) and a markdown table.
#
#   cargo build --release -p zk-server -p zk-bench
#   bench/compare.sh                         # standalone
#   TOPOLOGY=ensemble bench/compare.sh       # 3 servers each, clients spread over all
#
# Knobs (environment): SYSTEMS ("zk-server apache-zk": which to run), TOPOLOGY (standalone|ensemble), WORKLOADS ("create set get mixed
# watch lock"), CLIENTS ("1 16 64"), INFLIGHT ("1 16"), DURATION (5 s per run), VALUE_SIZE (100),
# BIN (dir with zk-server and zk-bench; default $CARGO_TARGET_DIR/release or target/release),
# OUT (dir for results.jsonl and table.md; default a new temp dir), OUR_PORT (24181: client
# ports P.., peer P+100.., admin P+200..), ZK_CLIENT_PORT / ZK_QUORUM_PORT /
# ZK_ELECTION_PORT (Apache's, see apache-zk/start.sh; default 22181 standalone, 22191..
# ensemble, 22891.., 23891..), OUR_ARGS (extra zk-server flags, split on spaces, e.g.
# "--config /tmp/x.toml" to compare a server setting on one build).
# In an ensemble, zk-bench connects client k to server k mod 3 (clients spread evenly).
# Every JSON line gets "server" and "topology"; fsync probes (zk-bench fsync) go to the
# same results.jsonl, so `zk-bench report --input $OUT/results.jsonl` can use it.
# Everything binds 127.0.0.1; every run is bounded; what this starts is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SYSTEMS=${SYSTEMS:-zk-server apache-zk}
TOPOLOGY=${TOPOLOGY:-standalone}
WORKLOADS=${WORKLOADS:-create set get mixed watch lock}
CLIENTS=${CLIENTS:-1 16 64}
INFLIGHT=${INFLIGHT:-1 16}
DURATION=${DURATION:-5}
VALUE_SIZE=${VALUE_SIZE:-100}
BIN=${BIN:-${CARGO_TARGET_DIR:-$here/../target}/release}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/zk-compare.XXXXXX")}
OUR_PORT=${OUR_PORT:-24181}
export ZK_BENCH_DIR=${ZK_BENCH_DIR:-$OUT/apache-zk}
case "$TOPOLOGY" in
  standalone) export ZK_CLIENT_PORT=${ZK_CLIENT_PORT:-22181} ;;
  ensemble) export ZK_CLIENT_PORT=${ZK_CLIENT_PORT:-22191} ;;
  *) echo "TOPOLOGY must be standalone or ensemble" >&2; exit 2 ;;
esac
export ZK_QUORUM_PORT=${ZK_QUORUM_PORT:-22891} ZK_ELECTION_PORT=${ZK_ELECTION_PORT:-23891}
. "$here/apache-zk/env.sh"   # ask / mode / serving
for b in zk-server zk-bench; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b: cargo build --release -p zk-server -p zk-bench" >&2; exit 2; }
done
mkdir -p "$OUT"
results=$OUT/results.jsonl
: > "$results"

ours=()
stop_ours() {
  local pid
  for pid in "${ours[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${ours[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  ours=()
}
cleanup() {
  stop_ours
  "$here/apache-zk/stop.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_ours: starts zk-server (1 or 3 processes), sets $connect once all serve.
start_ours() {
  local n=1 i peers=""
  connect=""
  [ "$TOPOLOGY" = ensemble ] && n=3
  for ((i = 1; i <= n; i++)); do
    peers+="${peers:+,}$i=127.0.0.1:$((OUR_PORT + 100 + i - 1))"
  done
  rm -rf "$OUT/zk-server"
  for ((i = 1; i <= n; i++)); do
    local args=(--data-dir "$OUT/zk-server/n$i" --client-addr "127.0.0.1:$((OUR_PORT + i - 1))"
      --admin-addr "127.0.0.1:$((OUR_PORT + 200 + i - 1))" --sync always
      --max-client-cnxns 0)  # 64 sessions from one IP, as Apache's maxClientCnxns=0 here
    [ "$n" = 1 ] || args+=(--id "$i" --peers "$peers")
    if [ -n "${OUR_ARGS:-}" ]; then read -ra extra <<< "$OUR_ARGS"; args+=("${extra[@]}"); fi
    RUST_LOG=${RUST_LOG:-warn} "$BIN/zk-server" "${args[@]}" > "$OUT/zk-server-n$i.log" 2>&1 &
    ours+=($!)
    connect+="${connect:+,}127.0.0.1:$((OUR_PORT + i - 1))"
  done
  for ((i = 1; i <= n; i++)); do serving $((OUR_PORT + i - 1)); done
  sleep 1 # an ensemble: let the leader settle
}

# fsync_probe PHASE: the disk's durable-write floor right now (this machine is shared: it
# varies): 4 KiB append + fdatasync in $OUT, p50/p99, and the loopback round trip.
fsync_probe() {
  local line
  if line=$(timeout 120 "$BIN/zk-bench" fsync --dir "$OUT" --count 200 --phase "$TOPOLOGY, $1"); then
    echo "$line" >> "$results"
    echo "# fsync probe ($1): $(jq -r '"p50 \(.p50_us) µs, p99 \(.p99_us) µs per 4 KiB append + fdatasync; loopback RTT p50 \(.loopback_rtt_p50_us) µs"' <<< "$line")" >&2
  fi
}

# bench SERVER_NAME TARGET CONNECT: every workload x clients x inflight, JSON -> $results
bench() {
  local name=$1 target=$2 connect=$3 w c i line
  for w in $WORKLOADS; do for c in $CLIENTS; do for i in $INFLIGHT; do
    if line=$(timeout $((DURATION * 4 + 60)) "$BIN/zk-bench" --server "$connect" --target "$target" \
      --workload "$w" --clients "$c" --inflight "$i" --duration "$DURATION" --value-size "$VALUE_SIZE"); then
      line=$(jq -c --arg s "$name" --arg t "$TOPOLOGY" '. + {server: $s, topology: $t}' <<< "$line")
    else
      echo "$name $target $w c=$c i=$i: zk-bench failed" >&2
      line=$(jq -nc --arg s "$name" --arg t "$target" --arg w "$w" --argjson c "$c" --argjson i "$i" \
        --arg topo "$TOPOLOGY" '{workload: $w, clients: $c, inflight: $i, target: $t, server: $s, topology: $topo, failed: true}')
    fi
    echo "$line" | tee -a "$results"
  done; done; done
}

echo "# $TOPOLOGY, $DURATION s per run, values of $VALUE_SIZE bytes, results in $OUT" >&2
if [[ " $SYSTEMS " == *" zk-server "* ]]; then
  fsync_probe "before zk-server"
  start_ours
  echo "# zk-server at $connect (pids ${ours[*]})" >&2
  bench zk-server native "$connect"
  bench zk-server zk "$connect"
  stop_ours
fi

if [[ " $SYSTEMS " == *" apache-zk "* ]]; then
  fsync_probe "before Apache ZooKeeper"
  connect=$("$here/apache-zk/start.sh" "$TOPOLOGY")
  echo "# Apache ZooKeeper at $connect" >&2
  sleep 1
  bench apache-zk zk "$connect"
  "$here/apache-zk/stop.sh" >&2
fi

fsync_probe "at the end"
jq -rs -f "$here/table.jq" "$results" | tee "$OUT/table.md"
