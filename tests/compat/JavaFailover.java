// The ZooKeeper Java client 3.8 keeps its session when the server it is connected to dies:
// run against an ensemble, it prints `CONNECTED host:port`, waits for a line on stdin (the
// test kills that server meanwhile), then checks that the same session, its ephemeral node
// and its one-shot watch survive on another server. Exit 0 only if every check passes.
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.*;
import java.util.regex.*;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.Stat;

public class JavaFailover {
    static void check(boolean ok, String what) {
        if (!ok) { System.out.println("FAIL: " + what); System.exit(1); }
    }

    /// Retries an operation through ConnectionLoss while the client moves.
    interface Op<T> { T run() throws Exception; }
    static <T> T retry(Op<T> op) throws Exception {
        long deadline = System.currentTimeMillis() + 30000;
        while (true) {
            try { return op.run(); }
            catch (KeeperException.ConnectionLossException e) {
                if (System.currentTimeMillis() > deadline) throw e;
                Thread.sleep(100);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        BlockingQueue<Watcher.Event.KeeperState> states = new LinkedBlockingQueue<>();
        ZooKeeper zk = new ZooKeeper(args[0], 10000, e -> {
            states.add(e.getState());
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown(); });
        check(connected.await(20, TimeUnit.SECONDS), "connected");
        long session = zk.getSessionId();
        try { zk.create("/jfailover", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT); }
        catch (KeeperException.NodeExistsException e) {}
        zk.create("/jfailover/eph", "mine".getBytes(StandardCharsets.UTF_8), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        CountDownLatch fired = new CountDownLatch(1);
        zk.getData("/jfailover/eph", e -> { if (e.getType() == Watcher.Event.EventType.NodeDataChanged) fired.countDown(); }, null);
        Matcher m = Pattern.compile("remoteserver:[^/ ]*/([0-9.]+:[0-9]+)").matcher(zk.toString());
        check(m.find(), "remote server in " + zk);
        String before = m.group(1);
        System.out.println("CONNECTED " + before);
        System.out.flush();
        new BufferedReader(new InputStreamReader(System.in)).readLine(); // the test kills that server now
        Stat stat = new Stat();
        byte[] data = retry(() -> zk.getData("/jfailover/eph", false, stat));
        check(zk.getSessionId() == session, "same session after the move");
        check(!states.contains(Watcher.Event.KeeperState.Expired), "never Expired: " + states);
        check(new String(data, StandardCharsets.UTF_8).equals("mine") && stat.getEphemeralOwner() == session,
            "ephemeral survives the move");
        Matcher after = Pattern.compile("remoteserver:[^/ ]*/([0-9.]+:[0-9]+)").matcher(zk.toString());
        check(after.find() && !after.group(1).equals(before), "moved to another server: " + zk);
        retry(() -> zk.setData("/jfailover/eph", "after".getBytes(StandardCharsets.UTF_8), -1));
        check(fired.await(10, TimeUnit.SECONDS), "the watch set before the move fires after it");
        zk.close();
        System.out.println("java failover: session moved with its ephemeral and watch");
        System.exit(0);
    }
}
