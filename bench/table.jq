# results.jsonl (slurped) -> markdown table: zk-server native, zk-server over the
# ZooKeeper protocol, Apache ZooKeeper; ops/s, p99 and the ratios ours / Apache.
def key: "\(.workload)|\(.clients)|\(.inflight)";
def num: if . == null then "—" else (. | tostring) end;
def ops: if . == null or .failed then null else (.ops_per_sec | round) end;
def p99: if . == null or .failed then null else .p99_us end;
def ratio(a; b): if a == null or b == null or b == 0 then "—" else ((a / b * 100 | round) / 100 | tostring) + "x" end;
map(select(.workload != null)) as $runs
| ($runs | map({(key + "|" + .server + "|" + .target): .}) | add) as $by
| ($runs | map(key) | unique) as $keys
| (["create", "set", "get", "mixed", "watch", "lock"]) as $order
| ($keys | sort_by(split("|") as $p | [($order | index($p[0])), ($p[1] | tonumber), ($p[2] | tonumber)])) as $rows
| "| workload | clients | inflight | ours native ops/s | ours zk-proto ops/s | Apache ZK ops/s | native / Apache | zk-proto / Apache | p99 µs native | p99 µs zk-proto | p99 µs Apache | p99 Apache / native |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ($rows[] as $k
   | ($by[$k + "|zk-server|native"]) as $n
   | ($by[$k + "|zk-server|zk"]) as $z
   | ($by[$k + "|apache-zk|zk"]) as $a
   | ($k | split("|")) as $p
   | "| \($p[0]) | \($p[1]) | \($p[2]) | \($n | ops | num) | \($z | ops | num) | \($a | ops | num) | \(ratio($n | ops; $a | ops)) | \(ratio($z | ops; $a | ops)) | \($n | p99 | num) | \($z | p99 | num) | \($a | p99 | num) | \(ratio($a | p99; $n | p99)) |")
