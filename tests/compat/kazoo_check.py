"""Drives kazoo (an independent Python ZooKeeper client) against a server: basic ops,
watches, transactions and kazoo's own recipes. Exit 0 only if every check passes."""
import sys, threading, time
from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, NoNodeError, NodeExistsError,
                              NotEmptyError, NoAuthError, LockTimeout)
from kazoo.security import make_digest_acl

hosts = sys.argv[1]
root = "/kazoo-compat-%d" % int(time.time() * 1000)
checks = 0

def check(cond, what):
    global checks
    if not cond:
        print("FAIL:", what); sys.exit(1)
    checks += 1

zk = KazooClient(hosts=hosts, timeout=10); zk.start(timeout=10)
if zk.exists(root): zk.delete(root, recursive=True)
zk.create(root)
# data, versions, stat
p = zk.create(root + "/a", b"one")
data, st = zk.get(p)
check(data == b"one" and st.version == 0 and st.dataLength == 3, "get after create")
st2 = zk.set(p, b"two", version=0)
check(st2.version == 1 and st2.mzxid > st.mzxid, "set bumps version and mzxid")
try:
    zk.set(p, b"x", version=0); check(False, "stale set refused")
except BadVersionError: check(True, "")
try:
    zk.create(p); check(False, "duplicate create refused")
except NodeExistsError: check(True, "")
try:
    zk.get(root + "/missing"); check(False, "missing node")
except NoNodeError: check(True, "")
zk.create(root + "/a/child")
try:
    zk.delete(p); check(False, "delete with children refused")
except NotEmptyError: check(True, "")
# sequential + ephemeral
s1 = zk.create(root + "/seq-", b"", sequence=True)
s2 = zk.create(root + "/seq-", b"", sequence=True)
check(s1.endswith("0000000001") and s2.endswith("0000000002"), f"sequence numbers {s1} {s2}")
e = zk.create(root + "/eph", b"", ephemeral=True)
check(zk.exists(e).ephemeralOwner == zk.client_id[0], "ephemeral owner is the session")
# watches
events = []
got = threading.Event()
def w(ev):
    events.append(ev); got.set()
zk.get(p, watch=w)
zk.set(p, b"three")
check(got.wait(5) and events[0].type == "CHANGED" and events[0].path == p, "data watch fires")
seen = []
@zk.ChildrenWatch(root + "/a")
def kids(children):
    seen.append(sorted(children))
zk.create(root + "/a/second")
deadline = time.time() + 5
while time.time() < deadline and ["child", "second"] not in seen: time.sleep(0.05)
check(["child", "second"] in seen, f"ChildrenWatch saw the new child: {seen}")
# transactions
t = zk.transaction()
t.check(p, 2); t.create(root + "/t1", b"x"); t.set_data(p, b"four")
res = t.commit()
check(res[0] is True and res[1] == root + "/t1", f"transaction commits {res}")
t = zk.transaction()
t.create(root + "/t2"); t.check(p, 99)
res = t.commit()
check(zk.exists(root + "/t2") is None and isinstance(res[1], BadVersionError), f"failed transaction is atomic {res}")
# ACLs
acl = make_digest_acl("bob", "secret", all=True)
zk.create(root + "/secret", b"s", acl=[acl])
try:
    zk.get(root + "/secret"); check(False, "NoAuth without credentials")
except NoAuthError: check(True, "")
zk2 = KazooClient(hosts=hosts, auth_data=[("digest", "bob:secret")]); zk2.start(timeout=10)
zk2.sync(root)  # zk2 may be on another server of an ensemble: catch up first
check(zk2.get(root + "/secret")[0] == b"s", "digest auth reads")
# recipes
lock = zk.Lock(root + "/lock", "me"); lock2 = zk2.Lock(root + "/lock", "other")
check(lock.acquire(timeout=5), "lock acquired")
try:
    lock2.acquire(timeout=0.5); check(False, "second holder waits")
except LockTimeout: check(True, "")
order = []
th = threading.Thread(target=lambda: (lock2.acquire(timeout=10), order.append("2"), lock2.release()))
th.start(); time.sleep(0.3); order.append("1"); lock.release(); th.join(10)
check(order == ["1", "2"], f"lock handoff order {order}")
counter = zk.Counter(root + "/counter"); counter += 5; counter -= 2
check(counter.value == 3, "Counter")
q = zk.Queue(root + "/queue"); q.put(b"a"); q.put(b"b")
check(q.get() == b"a" and q.get() == b"b", "Queue FIFO")
sem = zk.Semaphore(root + "/sem", max_leases=1)
check(sem.acquire(timeout=5), "Semaphore")
sem.release()
elected = threading.Event()
election = zk2.Election(root + "/election", "id2")
th = threading.Thread(target=lambda: election.run(elected.set)); th.start()
check(elected.wait(5), "Election leader runs")
th.join(5)
party = zk.Party(root + "/party", "p1"); party.join()
check(len(party) == 1, "Party")
party.leave()
# session expiry: ephemerals go away when the session closes
zk2.create(root + "/eph2", ephemeral=True)
zk2.stop(); zk2.close()
zk.sync(root)  # the close went through zk2's server; catch up before reading
check(zk.exists(root + "/eph2") is None, "ephemeral gone after close")
zk.add_auth("digest", "bob:secret")
zk.delete(root, recursive=True)
zk.stop(); zk.close()
print(f"kazoo compat: {checks} checks passed")
