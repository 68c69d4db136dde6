#!/usr/bin/env bash
# Stops the servers bench/apache-zk/start.sh started (by their pid files in $ZK_BENCH_DIR
# only): SIGTERM, then SIGKILL after 5 s. `stop.sh --purge` also removes $ZK_BENCH_DIR.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
for f in "$ZK_BENCH_DIR"/*.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "apache-zk: stopped $(basename "$f" .pid) (pid $pid)" >&2
  fi
  rm -f "$f"
done
[ "${1:-}" != --purge ] || rm -rf "$ZK_BENCH_DIR"
exit 0
