//! Shared test helpers: a real server, clients, and a TCP relay that can cut a client
//! off (to let its session expire).

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use zk_client::Client;
use zk_server::testing::TestServer;

/// A fresh single-node server.
pub async fn server() -> TestServer {
    TestServer::start().await.expect("test server starts")
}

/// A client of `connect` with the given session timeout.
pub async fn client_at(connect: &str, timeout: Duration) -> Client {
    Client::builder()
        .servers(connect)
        .session_timeout(timeout)
        .connect()
        .await
        .expect("client connects")
}

/// A client with a 2 s session.
pub async fn client(server: &TestServer) -> Client {
    client_at(&server.connect_string(), Duration::from_secs(2)).await
}

/// Runs `f` bounded by `secs`; a hang is a failure.
pub async fn bounded<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test timed out")
}

/// A loopback TCP relay to a server; [`Relay::kill`] closes every connection and
/// refuses new ones, so a client behind it loses its server for good and its session
/// expires on the server.
pub struct Relay {
    addr: String,
    dead: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts relaying to `target`.
    pub async fn start(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr").to_string();
        let (dead, rx) = watch::channel(false);
        let target = target.to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *rx.borrow() {
                    continue;
                }
                let target = target.clone();
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|d| *d) => {}
                    }
                });
            }
        });
        Relay { addr, dead, task }
    }

    /// `host:port` of the relay.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Cuts every connection and refuses new ones.
    pub fn kill(&self) {
        self.dead.send_replace(true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
