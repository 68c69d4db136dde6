#!/usr/bin/env bash
# Starts Apache ZooKeeper 3.8 on loopback with fsync on (forceSync=yes), in a fresh
# state directory ($ZK_BENCH_DIR, default ${TMPDIR:-/tmp}/apache-zk-bench), and waits
# until every server serves. Prints the connect string on stdout.
#
#   bench/apache-zk/start.sh standalone   # one server, client port $ZK_CLIENT_PORT (default 2181)
#   bench/apache-zk/start.sh ensemble     # three servers: client ports P..P+2 (default P=2191),
#                                         # quorum ports $ZK_QUORUM_PORT.. (2891..), election
#                                         # ports $ZK_ELECTION_PORT.. (3891..)
#   bench/apache-zk/start.sh node N       # starts server N of the ensemble again, keeping
#                                         # its data (after a kill -9; used by zk-failover)
#   bench/apache-zk/stop.sh               # stops them (also on a failed start)
#
# Other knobs: ZK_HEAP_MB (1000), ZK_WAIT_SECS (60), ZK_JAVA, ZK_JARS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

topology=${1:-standalone}
if [ "$topology" = node ]; then
  n=${2:?usage: start.sh node N}
  [ -f "$ZK_BENCH_DIR/zk$n/zoo.cfg" ] || die "no server $n in $ZK_BENCH_DIR"
  if [ -f "$ZK_BENCH_DIR/zk$n.pid" ] && kill -0 "$(cat "$ZK_BENCH_DIR/zk$n.pid")" 2>/dev/null; then
    die "server $n is running"
  fi
  launch "zk$n" "$ZK_BENCH_DIR/zk$n"
  exit 0
fi
for f in "$ZK_BENCH_DIR"/*.pid; do
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && die "already running: $f (run stop.sh first)"
done
rm -rf "$ZK_BENCH_DIR"
mkdir -p "$ZK_BENCH_DIR"

case "$topology" in
  standalone)
    port=${ZK_CLIENT_PORT:-2181}
    write_cfg "$ZK_BENCH_DIR/zk1" "$port"
    launch zk1 "$ZK_BENCH_DIR/zk1"
    ports=$port
    ;;
  ensemble)
    base=${ZK_CLIENT_PORT:-2191} quorum=${ZK_QUORUM_PORT:-2891} election=${ZK_ELECTION_PORT:-3891}
    servers=""
    for i in 1 2 3; do
      servers+="server.$i=127.0.0.1:$((quorum + i - 1)):$((election + i - 1))"$'\n'
    done
    ports=""
    for i in 1 2 3; do
      write_cfg "$ZK_BENCH_DIR/zk$i" $((base + i - 1)) "$servers"
      echo "$i" > "$ZK_BENCH_DIR/zk$i/data/myid"
      ports+="$((base + i - 1)) "
    done
    for i in 1 2 3; do launch "zk$i" "$ZK_BENCH_DIR/zk$i"; done
    ;;
  *) die "usage: start.sh standalone|ensemble" ;;
esac

connect=""
for p in $ports; do
  serving "$p" || { "$here/stop.sh" >&2; exit 1; }
  echo "apache-zk: 127.0.0.1:$p $(mode "$p")" >&2
  connect+="${connect:+,}127.0.0.1:$p"
done
echo "$connect" > "$ZK_BENCH_DIR/connect"
echo "$connect"
