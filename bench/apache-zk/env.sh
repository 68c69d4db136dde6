# Settings and helpers shared by start.sh / stop.sh (sourced, never run).
# Apache ZooKeeper 3.8 from Debian's package only: apt-get install -y zookeeper
# Everything binds 127.0.0.1; all state (configs, data, logs, pid files) lives in $ZK_BENCH_DIR.

ZK_BENCH_DIR=${ZK_BENCH_DIR:-${TMPDIR:-/tmp}/apache-zk-bench}
ZK_JAVA=${ZK_JAVA:-/usr/bin/java}
ZK_JARS=${ZK_JARS:-/usr/share/java/zookeeper.jar}
ZK_LOG_CONF=${ZK_LOG_CONF:-/etc/zookeeper/conf}   # Debian's log4j/logback configuration
ZK_HEAP_MB=${ZK_HEAP_MB:-1000}                    # upstream zkEnv.sh's default server heap
ZK_WAIT_SECS=${ZK_WAIT_SECS:-60}

die() { echo "apache-zk: $*" >&2; exit 1; }

# ask PORT WORD: one four-letter word to 127.0.0.1:PORT, answer on stdout (2 s bound).
ask() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1; printf %s "$2" >&3; cat <&3' _ "$1" "$2" 2>/dev/null
}

# mode PORT: standalone | leader | follower, or nothing while the server does not serve.
mode() { ask "$1" srvr | sed -n 's/^Mode: //p'; }

# serving PORT: waits (up to $ZK_WAIT_SECS) until the server on PORT serves clients.
serving() {
  local deadline=$((SECONDS + ZK_WAIT_SECS))
  while ((SECONDS < deadline)); do
    case "$(mode "$1")" in standalone | leader | follower) return 0 ;; esac
    sleep 0.1
  done
  echo "apache-zk: 127.0.0.1:$1 does not serve after ${ZK_WAIT_SECS}s" >&2
  return 1
}

# write_cfg DIR CLIENT_PORT [SERVER_LINES]: zoo.cfg with fsync on and loopback only.
write_cfg() {
  local dir=$1 port=$2 servers=${3:-}
  mkdir -p "$dir/data" "$dir/txlog"
  {
    echo "tickTime=2000"
    echo "initLimit=10"
    echo "syncLimit=5"
    echo "dataDir=$dir/data"
    echo "dataLogDir=$dir/txlog"
    echo "clientPortAddress=127.0.0.1"
    echo "clientPort=$port"
    echo "# durable writes: fsync the transaction log before acknowledging (the default)"
    echo "forceSync=yes"
    echo "# benchmark-only deviations: up to 64+ sessions from one address; no AdminServer (0.0.0.0:8080)"
    echo "maxClientCnxns=0"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=srvr,ruok,mntr,stat"
    [ -z "$servers" ] || printf '%s\n' "$servers"
  } > "$dir/zoo.cfg"
}

# launch NAME DIR: starts one server (the JVM command line of zkServer.sh start-foreground).
launch() {
  local name=$1 dir=$2
  [ -x "$ZK_JAVA" ] || die "no java at $ZK_JAVA"
  [ -f "${ZK_JARS%%:*}" ] || die "no ${ZK_JARS%%:*}: apt-get install -y zookeeper"
  "$ZK_JAVA" -Xmx"${ZK_HEAP_MB}"m \
    -Dzookeeper.log.dir="$dir" -Dzookeeper.log.file="$name.log" -Dzookeeper.root.logger=INFO,CONSOLE \
    -XX:+HeapDumpOnOutOfMemoryError -XX:OnOutOfMemoryError='kill -9 %p' \
    -cp "$ZK_LOG_CONF:$ZK_JARS" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" \
    > "$dir/$name.out" 2>&1 < /dev/null &
  echo $! > "$ZK_BENCH_DIR/$name.pid"
}
