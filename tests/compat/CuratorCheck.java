// Drives Apache Curator 5.4 (Debian's libcurator-*-java) and the Java ZooKeeper client
// against a server: CRUD, versions, TTL/container nodes, transactions, watches (Curator
// cache), and Curator's recipes. Exit 0 only if every check passes.
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;
import org.apache.curator.framework.*;
import org.apache.curator.framework.api.transaction.*;
import org.apache.curator.framework.recipes.atomic.*;
import org.apache.curator.framework.recipes.barriers.*;
import org.apache.curator.framework.recipes.cache.*;
import org.apache.curator.framework.recipes.leader.*;
import org.apache.curator.framework.recipes.locks.*;
import org.apache.curator.framework.recipes.nodes.*;
import org.apache.curator.framework.recipes.queue.*;
import org.apache.curator.framework.recipes.shared.*;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.*;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.Stat;

public class CuratorCheck {
    static int checks = 0;
    static void check(boolean ok, String what) {
        if (!ok) { System.out.println("FAIL: " + what); System.exit(1); }
        checks++;
    }
    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String root = "/curator-compat-" + System.currentTimeMillis();
        CuratorFramework c = CuratorFrameworkFactory.builder().connectString(hosts)
            .retryPolicy(new RetryNTimes(5, 200)).sessionTimeoutMs(10000).build();
        c.start();
        check(c.blockUntilConnected(10, TimeUnit.SECONDS), "connected");
        c.create().creatingParentsIfNeeded().forPath(root + "/a/b", b("x"));
        Stat st = new Stat();
        check(Arrays.equals(c.getData().storingStatIn(st).forPath(root + "/a/b"), b("x")) && st.getVersion() == 0, "get with stat");
        c.setData().withVersion(0).forPath(root + "/a/b", b("y"));
        try { c.setData().withVersion(0).forPath(root + "/a/b", b("z")); check(false, "stale set"); }
        catch (KeeperException.BadVersionException e) { check(true, ""); }
        // TTL and container nodes (CreateMode.PERSISTENT_WITH_TTL needs extended types)
        c.create().withTtl(60000).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath(root + "/ttl");
        check(c.checkExists().forPath(root + "/ttl") != null, "TTL node created");
        c.create().withMode(CreateMode.CONTAINER).forPath(root + "/container");
        check(c.checkExists().forPath(root + "/container") != null, "container created");
        // transactions
        List<CuratorTransactionResult> res = c.transaction().forOperations(
            c.transactionOp().create().forPath(root + "/t1", b("1")),
            c.transactionOp().check().withVersion(1).forPath(root + "/a/b"),
            c.transactionOp().setData().forPath(root + "/a/b", b("w")));
        check(res.size() == 3 && res.get(0).getForPath().equals(root + "/t1"), "transaction");
        // Curator cache sees changes
        CuratorCache cache = CuratorCache.build(c, root + "/a");
        CountDownLatch changed = new CountDownLatch(1);
        CountDownLatch loaded = new CountDownLatch(1);
        cache.listenable().addListener(CuratorCacheListener.builder().forChanges((o, n) -> {
            if (Arrays.equals(n.getData(), b("v"))) changed.countDown(); })
            .forInitialized(loaded::countDown).build());
        cache.start();
        check(loaded.await(5, TimeUnit.SECONDS), "CuratorCache initialized");
        c.setData().forPath(root + "/a/b", b("v"));
        check(changed.await(5, TimeUnit.SECONDS), "CuratorCache change event");
        cache.close();
        // persistent recursive watch (ZooKeeper 3.6 addWatch) through Curator
        CountDownLatch deep = new CountDownLatch(1);
        c.watchers().add().withMode(AddWatchMode.PERSISTENT_RECURSIVE).usingWatcher((Watcher) e -> {
            if (e.getType() == Watcher.Event.EventType.NodeCreated && e.getPath().endsWith("/deep")) deep.countDown(); })
            .forPath(root);
        c.create().forPath(root + "/a/b/deep");
        check(deep.await(5, TimeUnit.SECONDS), "persistent recursive watch");
        // recipes: mutex handoff between two clients
        CuratorFramework c2 = CuratorFrameworkFactory.newClient(hosts, new RetryNTimes(5, 200));
        c2.start(); c2.blockUntilConnected(10, TimeUnit.SECONDS);
        InterProcessMutex m1 = new InterProcessMutex(c, root + "/lock");
        InterProcessMutex m2 = new InterProcessMutex(c2, root + "/lock");
        check(m1.acquire(5, TimeUnit.SECONDS), "mutex acquired");
        check(!m2.acquire(300, TimeUnit.MILLISECONDS), "mutex excludes");
        m1.release();
        check(m2.acquire(5, TimeUnit.SECONDS), "mutex handoff");
        m2.release();
        InterProcessReadWriteLock rw = new InterProcessReadWriteLock(c, root + "/rw");
        check(rw.readLock().acquire(5, TimeUnit.SECONDS), "read lock");
        rw.readLock().release();
        InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(c, root + "/sem", 2);
        Collection<Lease> leases = sem.acquire(2, 5, TimeUnit.SECONDS);
        check(leases != null && leases.size() == 2, "semaphore leases");
        sem.returnAll(leases);
        // leader latch: exactly one leader of two
        LeaderLatch l1 = new LeaderLatch(c, root + "/latch", "1");
        LeaderLatch l2 = new LeaderLatch(c2, root + "/latch", "2");
        l1.start();
        check(l1.await(5, TimeUnit.SECONDS), "first latch leads");
        l2.start();
        Thread.sleep(300);
        check(!l2.hasLeadership(), "second latch follows");
        l1.close();
        check(l2.await(5, TimeUnit.SECONDS), "leadership moves on close");
        l2.close();
        // leader selector
        CountDownLatch led = new CountDownLatch(1);
        LeaderSelector sel = new LeaderSelector(c, root + "/selector", new LeaderSelectorListenerAdapter() {
            public void takeLeadership(CuratorFramework cf) { led.countDown(); } });
        sel.start();
        check(led.await(5, TimeUnit.SECONDS), "LeaderSelector");
        sel.close();
        // distributed atomic long and shared count
        DistributedAtomicLong dal = new DistributedAtomicLong(c, root + "/counter", new RetryNTimes(10, 10));
        dal.increment(); dal.add(41L);
        check(dal.get().postValue() == 42L, "DistributedAtomicLong");
        SharedCount sc = new SharedCount(c, root + "/shared", 0);
        sc.start();
        check(sc.trySetCount(sc.getVersionedValue(), 7) && sc.getCount() == 7, "SharedCount");
        sc.close();
        // double barrier with two members
        DistributedDoubleBarrier d1 = new DistributedDoubleBarrier(c, root + "/barrier", 2);
        DistributedDoubleBarrier d2 = new DistributedDoubleBarrier(c2, root + "/barrier", 2);
        ExecutorService ex = Executors.newFixedThreadPool(2);
        Future<Boolean> f1 = ex.submit(() -> d1.enter(5, TimeUnit.SECONDS));
        Future<Boolean> f2 = ex.submit(() -> d2.enter(5, TimeUnit.SECONDS));
        check(f1.get() && f2.get(), "double barrier enter");
        f1 = ex.submit(() -> d1.leave(5, TimeUnit.SECONDS));
        f2 = ex.submit(() -> d2.leave(5, TimeUnit.SECONDS));
        check(f1.get() && f2.get(), "double barrier leave");
        ex.shutdown();
        // persistent ephemeral node (service registration) disappears with its session
        PersistentNode pn = new PersistentNode(c2, CreateMode.EPHEMERAL, false, root + "/svc", b("host:1"));
        pn.start();
        check(pn.waitForInitialCreate(5, TimeUnit.SECONDS), "PersistentNode created");
        c2.close();
        long deadline = System.currentTimeMillis() + 5000;
        while (c.checkExists().forPath(root + "/svc") != null && System.currentTimeMillis() < deadline) Thread.sleep(50);
        check(c.checkExists().forPath(root + "/svc") == null, "ephemeral gone after session close");
        // distributed queue
        BlockingQueue<String> got = new LinkedBlockingQueue<>();
        QueueSerializer<String> ser = new QueueSerializer<String>() {
            public byte[] serialize(String s) { return b(s); }
            public String deserialize(byte[] d) { return new String(d, StandardCharsets.UTF_8); } };
        DistributedQueue<String> q = QueueBuilder.builder(c, new QueueConsumer<String>() {
            public void consumeMessage(String m) { got.add(m); }
            public void stateChanged(CuratorFramework cf, org.apache.curator.framework.state.ConnectionState s) {} },
            ser, root + "/queue").buildQueue();
        q.start(); q.put("a"); q.put("b");
        check("a".equals(got.poll(5, TimeUnit.SECONDS)) && "b".equals(got.poll(5, TimeUnit.SECONDS)), "DistributedQueue order");
        q.close();
        // the older caches (one-shot watches re-armed on every event)
        PathChildrenCache pcc = new PathChildrenCache(c, root + "/pcc", true);
        BlockingQueue<PathChildrenCacheEvent.Type> pccEvents = new LinkedBlockingQueue<>();
        pcc.getListenable().addListener((cf, e) -> pccEvents.add(e.getType()));
        c.create().forPath(root + "/pcc");
        pcc.start(PathChildrenCache.StartMode.BUILD_INITIAL_CACHE);
        c.create().forPath(root + "/pcc/one", b("1"));
        PathChildrenCacheEvent.Type added = pccEvents.poll(5, TimeUnit.SECONDS);
        c.setData().forPath(root + "/pcc/one", b("2"));
        PathChildrenCacheEvent.Type updated = pccEvents.poll(5, TimeUnit.SECONDS);
        c.delete().forPath(root + "/pcc/one");
        PathChildrenCacheEvent.Type removed = pccEvents.poll(5, TimeUnit.SECONDS);
        check(added == PathChildrenCacheEvent.Type.CHILD_ADDED && updated == PathChildrenCacheEvent.Type.CHILD_UPDATED
            && removed == PathChildrenCacheEvent.Type.CHILD_REMOVED, "PathChildrenCache events " + added + " " + updated + " " + removed);
        pcc.close();
        NodeCache nc = new NodeCache(c, root + "/nc");
        CountDownLatch ncSeen = new CountDownLatch(1);
        nc.getListenable().addListener(() -> { if (nc.getCurrentData() != null
            && Arrays.equals(nc.getCurrentData().getData(), b("hi"))) ncSeen.countDown(); });
        nc.start(true);
        c.create().forPath(root + "/nc", b("hi"));
        check(ncSeen.await(5, TimeUnit.SECONDS), "NodeCache sees a node created after start");
        nc.close();
        // service discovery (curator-x-discovery): register, query, unregister
        ServiceDiscovery<Void> sd = ServiceDiscoveryBuilder.builder(Void.class).client(c).basePath(root + "/services").build();
        sd.start();
        ServiceInstance<Void> inst = ServiceInstance.<Void>builder().name("api").address("10.0.0.1").port(8080).build();
        sd.registerService(inst);
        Collection<ServiceInstance<Void>> found = sd.queryForInstances("api");
        check(found.size() == 1 && found.iterator().next().getPort() == 8080, "service discovery finds the instance");
        sd.unregisterService(inst);
        check(sd.queryForInstances("api").isEmpty(), "service discovery after unregister");
        sd.close();
        // the plain Java client for the calls Curator does not make
        ZooKeeper zk = c.getZookeeperClient().getZooKeeper();
        Stat created = new Stat();
        zk.create(root + "/raw", b("r"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, created);
        check(created.getCzxid() > 0 && created.getDataLength() == 1, "create2 returns the stat");
        zk.create(root + "/raw/e1", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        zk.create(root + "/raw/e1x", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        List<String> eph = zk.getEphemerals(root + "/raw/e1");
        check(eph.size() == 2 && eph.contains(root + "/raw/e1x"), "getEphemerals by prefix " + eph);
        check(zk.getAllChildrenNumber(root + "/raw") == 2, "getAllChildrenNumber");
        Stat kids = new Stat();
        List<String> children = zk.getChildren(root + "/raw", false, kids);
        check(children.size() == 2 && kids.getNumChildren() == 2, "getChildren2 with stat");
        List<org.apache.zookeeper.data.ClientInfo> who = zk.whoAmI();
        check(!who.isEmpty() && who.get(0).getAuthScheme().equals("ip"), "whoAmI " + who);
        CountDownLatch sync = new CountDownLatch(1);
        zk.sync(root + "/raw", (rc, path, ctx) -> { if (rc == 0) sync.countDown(); }, null);
        check(sync.await(5, TimeUnit.SECONDS), "sync");
        List<org.apache.zookeeper.data.ACL> readAdmin = Collections.singletonList(new org.apache.zookeeper.data.ACL(
            ZooDefs.Perms.READ | ZooDefs.Perms.ADMIN, ZooDefs.Ids.ANYONE_ID_UNSAFE));
        Stat aclStat = zk.setACL(root + "/raw", readAdmin, -1);
        check(aclStat.getAversion() == 1, "setACL returns the stat with aversion 1");
        check(zk.getACL(root + "/raw", new Stat()).equals(readAdmin), "getACL");
        try { zk.create(root + "/raw/denied", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT); check(false, "create without CREATE"); }
        catch (KeeperException.NoAuthException e) { check(true, ""); }
        zk.setACL(root + "/raw", ZooDefs.Ids.OPEN_ACL_UNSAFE, 1);
        // one-shot exists watch on a missing node fires on create; removeWatches answers
        CountDownLatch born = new CountDownLatch(1);
        check(zk.exists(root + "/raw/later", e -> {
            if (e.getType() == Watcher.Event.EventType.NodeCreated) born.countDown(); }) == null, "exists on a missing node");
        zk.create(root + "/raw/later", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        check(born.await(5, TimeUnit.SECONDS), "exists watch fires on create");
        Watcher unused = e -> {};
        zk.getData(root + "/raw/later", unused, null);
        zk.removeWatches(root + "/raw/later", unused, Watcher.WatcherType.Data, false);
        try { zk.removeWatches(root + "/raw/later", unused, Watcher.WatcherType.Data, false); check(false, "second removeWatches"); }
        catch (KeeperException.NoWatcherException e) { check(true, ""); }
        // a failed multi reports each op's result, and nothing is applied
        try {
            zk.multi(Arrays.asList(Op.create(root + "/raw/m1", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.delete(root + "/raw/missing", -1)));
            check(false, "multi with a missing node fails");
        } catch (KeeperException e) {
            List<OpResult> rs = e.getResults();
            check(e.code() == KeeperException.Code.NONODE && rs.size() == 2
                && ((OpResult.ErrorResult) rs.get(1)).getErr() == KeeperException.Code.NONODE.intValue()
                && zk.exists(root + "/raw/m1", false) == null, "failed multi " + rs);
        }
        List<OpResult> ok = zk.multi(Arrays.asList(
            Op.create(root + "/raw/m2", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
            Op.setData(root + "/raw/m2", b("z"), 0), Op.check(root + "/raw", -1)));
        check(ok.get(1) instanceof OpResult.SetDataResult && ((OpResult.SetDataResult) ok.get(1)).getStat().getVersion() == 1, "multi results");
        // multiRead (getData and getChildren in one round trip)
        List<OpResult> reads = zk.multi(Arrays.asList(Op.getData(root + "/raw/m2"), Op.getChildren(root + "/raw")));
        check(Arrays.equals(((OpResult.GetDataResult) reads.get(0)).getData(), b("z"))
            && ((OpResult.GetChildrenResult) reads.get(1)).getChildren().size() == 4, "multiRead " + reads);
        c.delete().deletingChildrenIfNeeded().forPath(root);
        c.close();
        System.out.println("curator compat: " + checks + " checks passed");
        System.exit(0);
    }
}
