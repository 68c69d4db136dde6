"""kazoo keeps its session when the server it is connected to dies: run against an
ensemble, it prints `CONNECTED host:port`, waits for a line on stdin (the test kills that
server meanwhile), then checks that the same session, its ephemeral node and its watch
survive on another server, and that writes go on. Exit 0 only if every check passes."""
import sys, threading
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry

hosts = sys.argv[1]
zk = KazooClient(hosts=hosts, timeout=10,
                 connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1),
                 command_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1))
lost = threading.Event()
def listener(state):
    if state == KazooState.LOST:
        lost.set()
zk.add_listener(listener)
zk.start(timeout=10)
session = zk.client_id[0]
zk.ensure_path("/failover")
zk.create("/failover/eph", b"mine", ephemeral=True)
fired = threading.Event()
zk.get("/failover/eph", watch=lambda ev: fired.set())
peer = zk._connection._socket.getpeername()
print(f"CONNECTED {peer[0]}:{peer[1]}", flush=True)
sys.stdin.readline()  # the test kills that server now
# zk.retry repeats a command through ConnectionLoss until kazoo is connected again
data, stat = zk.retry(zk.get, "/failover/eph")
print("read from", zk._connection._socket.getpeername(), flush=True)
check = lambda ok, what: ok or (print("FAIL:", what), sys.exit(1))
check(zk.client_id[0] == session, "same session after the move")
check(not lost.is_set(), "session never LOST")
check(data == b"mine" and stat.ephemeralOwner == session, "ephemeral survives the move")
new_peer = zk._connection._socket.getpeername()
check(new_peer != peer, f"moved to another server ({peer} -> {new_peer})")
zk.retry(zk.set, "/failover/eph", b"after")
check(fired.wait(10), "the watch set before the move fires after it")
zk.retry(zk.delete, "/failover/eph")
zk.stop(); zk.close()
print("kazoo failover: session moved with its ephemeral and watch", flush=True)
