// The ZooKeeper Java client 3.8 over TLS (Netty, PEM key and trust stores) with a client
// certificate: the session is x509:<subject DN>, and a node whose ACL names that
// identity is readable and writable by it. Exit 0 only if every check passes.
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.*;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.*;

public class TlsCheck {
    static void check(boolean ok, String what) {
        if (!ok) { System.out.println("FAIL: " + what); System.exit(1); }
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String dn = args[1];
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(hosts, 10000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown(); });
        check(connected.await(20, TimeUnit.SECONDS), "connected over TLS");
        List<ClientInfo> who = zk.whoAmI();
        check(who.stream().anyMatch(c -> c.getAuthScheme().equals("x509") && c.getUser().equals(dn)),
            "whoAmI names the certificate " + who);
        List<ACL> mine = Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("x509", dn)));
        zk.create("/tls-java", "secret".getBytes(StandardCharsets.UTF_8), mine, CreateMode.PERSISTENT);
        check(new String(zk.getData("/tls-java", false, null), StandardCharsets.UTF_8).equals("secret"),
            "reads its x509-protected node");
        zk.setData("/tls-java", "changed".getBytes(StandardCharsets.UTF_8), 0);
        check(zk.getACL("/tls-java", new Stat()).get(0).getId().getId().equals(dn), "getACL shows the DN");
        zk.close();
        System.out.println("java tls compat: ok");
        System.exit(0);
    }
}
