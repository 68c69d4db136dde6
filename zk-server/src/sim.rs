//! The seam to deterministic simulation with turmoil (cargo feature `simulation`).
//!
//! A node started by [`crate::run`] inside a turmoil host ([`active`]) uses, instead of
//! the OS: turmoil's simulated TCP for its client and peer ports and for dialling peers;
//! turmoil's simulated disk for all storage ([`crate::storage::disk`]), written inline
//! instead of by the WAL writer thread; turmoil's clock for the time stamped on writes.
//! Outside a simulation — always, in a build without the feature — nothing changes.
//! The admin HTTP port is not started inside a simulation (axum needs a real socket).

use std::time::Duration;

/// True when running inside a turmoil simulation host (never without the feature).
#[inline]
pub fn active() -> bool {
    #[cfg(feature = "simulation")]
    {
        turmoil::in_simulation()
    }
    #[cfg(not(feature = "simulation"))]
    {
        false
    }
}

/// The simulated wall clock (time since the Unix epoch) inside a simulation; None outside.
pub fn now_since_epoch() -> Option<Duration> {
    #[cfg(feature = "simulation")]
    {
        if active() {
            return turmoil::since_epoch();
        }
    }
    None
}

/// `N` random bytes for what a node draws at random (session passwords): the OS's
/// randomness, or, inside a simulation whose driver called [`seed_random`], a source
/// seeded from the simulation's seed, so that a seed replays exactly.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    #[cfg(feature = "simulation")]
    if active() {
        if let Some(b) = seeded::bytes() {
            return b;
        }
    }
    rand::random()
}

/// Whether this node's random draws come from a simulation's seeded source (see
/// [`random_bytes`]); false outside a simulation.
pub fn seeded_random() -> bool {
    #[cfg(feature = "simulation")]
    if active() {
        return seeded::is_set();
    }
    false
}

/// A bug a simulation can inject into its nodes on purpose ([`inject`], feature
/// `simulation`): the negative controls that show zk-sim's checkers can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bug {
    /// `sync` answers at once, without the leader's read index: a follower's next read
    /// can miss writes committed before the sync (a stale read).
    SyncWithoutReadIndex,
    /// `setData` ignores the expected version: a conditional write (compare-and-set)
    /// succeeds over a newer one (a lost update).
    SetDataIgnoresVersion,
}

/// Whether `bug` was injected into the simulation running on this thread (never
/// outside a simulation, nor in a build without the feature).
pub fn injected(bug: Bug) -> bool {
    #[cfg(feature = "simulation")]
    if active() {
        return seeded::injected(bug);
    }
    let _ = bug;
    false
}

/// The hasher of maps whose iteration order can reach behaviour (the order in which
/// watch events go out): std's `RandomState` (keys random per map), or, inside a
/// simulation, fixed keys, so that iteration order — and with it a seed — replays.
#[derive(Clone, Debug)]
pub struct MapHasher(Option<std::collections::hash_map::RandomState>);

impl Default for MapHasher {
    fn default() -> Self {
        if active() {
            MapHasher(None)
        } else {
            MapHasher(Some(Default::default()))
        }
    }
}

impl std::hash::BuildHasher for MapHasher {
    type Hasher = std::hash::DefaultHasher;

    fn build_hasher(&self) -> Self::Hasher {
        match &self.0 {
            Some(random) => random.build_hasher(),
            None => std::hash::DefaultHasher::new(),
        }
    }
}

/// A `HashMap` with [`MapHasher`].
pub type HashMap<K, V> = std::collections::HashMap<K, V, MapHasher>;
/// A `HashSet` with [`MapHasher`].
pub type HashSet<T> = std::collections::HashSet<T, MapHasher>;

#[cfg(feature = "simulation")]
pub use seeded::{inject, seed_random};

/// The seeded random source of the simulation on this thread (all hosts of one
/// simulation run on the driver's thread).
#[cfg(feature = "simulation")]
mod seeded {
    use std::cell::RefCell;

    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    thread_local! {
        static RNG: RefCell<Option<StdRng>> = const { RefCell::new(None) };
        static BUGS: RefCell<Vec<super::Bug>> = const { RefCell::new(Vec::new()) };
    }

    /// Injects `bugs` into the nodes simulated on this thread from now on (called by the
    /// simulation driver before a run; an empty list: none).
    pub fn inject(bugs: &[super::Bug]) {
        BUGS.with(|b| *b.borrow_mut() = bugs.to_vec());
    }

    /// Whether `bug` is injected on this thread.
    pub(super) fn injected(bug: super::Bug) -> bool {
        BUGS.with(|b| b.borrow().contains(&bug))
    }

    /// Seeds (`Some`) or removes (`None`) the random source that nodes simulated on this
    /// thread draw from (called by the simulation driver before a run).
    pub fn seed_random(seed: Option<u64>) {
        RNG.with(|r| *r.borrow_mut() = seed.map(StdRng::seed_from_u64));
    }

    /// Whether the seeded source is set.
    pub(super) fn is_set() -> bool {
        RNG.with(|r| r.borrow().is_some())
    }

    /// `N` bytes from the seeded source, if one is set.
    pub(super) fn bytes<const N: usize>() -> Option<[u8; N]> {
        RNG.with(|r| {
            r.borrow_mut().as_mut().map(|g| {
                let mut b = [0u8; N];
                g.fill_bytes(&mut b);
                b
            })
        })
    }
}

#[cfg(feature = "simulation")]
pub use observe::{leaders, observe_raft, reset_observed};

/// What the simulation driver sees of the nodes' raft state (all hosts of one
/// simulation run on its thread, so a thread-local keeps parallel simulations apart).
#[cfg(feature = "simulation")]
mod observe {
    use std::cell::RefCell;

    use openraft::{RaftMetrics, ServerState};
    use tokio::sync::watch;

    use crate::raft::Member;

    type Metrics = watch::Receiver<RaftMetrics<u64, Member>>;

    thread_local! {
        static NODES: RefCell<Vec<(u64, Metrics)>> = const { RefCell::new(Vec::new()) };
    }

    /// Registers a (re)started node's raft metrics (called by the node, in a simulation).
    pub fn observe_raft(node: u64, metrics: Metrics) {
        NODES.with(|n| n.borrow_mut().push((node, metrics)));
    }

    /// Forgets every node (a new simulation starts).
    pub fn reset_observed() {
        NODES.with(|n| n.borrow_mut().clear());
    }

    /// (term, node) of every node that currently reports itself leader (a crashed
    /// node's last report included).
    pub fn leaders() -> Vec<(u64, u64)> {
        NODES.with(|n| {
            n.borrow()
                .iter()
                .filter_map(|(id, m)| {
                    let m = m.borrow();
                    (m.state == ServerState::Leader).then_some((m.current_term, *id))
                })
                .collect()
        })
    }
}

#[cfg(feature = "simulation")]
pub use net::{bind, client_incoming, connector, peer_incoming, probe_refused};

#[cfg(feature = "simulation")]
mod net {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use hyper_util::rt::TokioIo;
    use tokio::sync::{mpsc, watch};
    use tokio_stream::wrappers::ReceiverStream;
    use turmoil::net::{TcpListener, TcpStream};

    use crate::admin::fourlw;
    use crate::api::listener::{accept_loop, classify, Incoming, Protocol};
    use crate::pipeline::Pipeline;
    use crate::tls::io::{Conn, ConnInfo, ServerConn};

    /// Binds a simulated listener at `addr` (`0.0.0.0:port` or this host's name).
    pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    /// Accepts simulated connections until `stop`; hands each one to tonic as a
    /// [`ServerConn`] (the peer port: everything is gRPC).
    pub fn peer_incoming(
        listener: TcpListener,
        stop: watch::Receiver<bool>,
    ) -> (Incoming, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            let sender = &tx;
            accept_loop(
                stop,
                &tx,
                || accept_next(&listener),
                |socket, peer| async move {
                    let _ = sender.send(Ok(server_conn(socket, peer))).await;
                },
            )
            .await;
        });
        (ReceiverStream::new(rx), task)
    }

    /// The client port inside a simulation: the first four bytes pick the protocol as
    /// on a real port ([`classify`]); gRPC connections come out of the returned stream.
    /// (No TLS and no per-IP connection limit in a simulation.)
    pub fn client_incoming(
        listener: TcpListener,
        pipeline: Arc<Pipeline>,
        stop: watch::Receiver<bool>,
    ) -> (Incoming, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            let (pipeline, sender) = (&pipeline, &tx);
            accept_loop(
                stop,
                &tx,
                || accept_next(&listener),
                |socket, peer| async move {
                    tokio::spawn(route(socket, peer, pipeline.clone(), sender.clone()));
                },
            )
            .await;
        });
        (ReceiverStream::new(rx), task)
    }

    /// The next simulated connection (errors are logged and retried after a pause).
    async fn accept_next(listener: &TcpListener) -> (TcpStream, SocketAddr) {
        loop {
            match listener.accept().await {
                Ok(a) => return a,
                Err(e) => {
                    tracing::debug!("simulated accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// One client connection: its first four bytes pick the protocol.
    async fn route(
        mut socket: TcpStream,
        peer: SocketAddr,
        p: Arc<Pipeline>,
        tx: mpsc::Sender<Result<ServerConn, std::io::Error>>,
    ) {
        let mut first = [0u8; 4];
        let sniff = async {
            loop {
                match socket.peek(&mut first).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) if n >= 4 => return true,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), sniff).await {
            Ok(true) => {}
            _ => return,
        }
        match classify(first) {
            Protocol::Grpc => {
                let _ = tx.send(Ok(server_conn(socket, peer))).await;
            }
            Protocol::FourLetterWord(word) => fourlw::serve(p, socket, word).await,
            Protocol::ZooKeeper => crate::zkwire::conn::serve(p, socket, peer, None).await,
            Protocol::Tls => {}
        }
    }

    fn server_conn(socket: TcpStream, peer: SocketAddr) -> ServerConn {
        ServerConn {
            conn: Conn::Sim(socket),
            info: ConnInfo {
                remote: Some(peer),
                x509: None,
                cert_names: None,
            },
            slot: None,
        }
    }

    /// A tonic connector dialling `host:port` over the simulated network.
    pub fn connector() -> impl tower::Service<
        tonic::codegen::http::Uri,
        Response = TokioIo<TcpStream>,
        Error = std::io::Error,
        Future = impl Send,
    > + Clone
           + Send
           + 'static {
        tower::service_fn(|uri: tonic::codegen::http::Uri| async move {
            let host = uri.host().unwrap_or("localhost").to_string();
            let port = uri.port_u16().unwrap_or(80);
            let s = TcpStream::connect(format!("{host}:{port}")).await?;
            Ok::<_, std::io::Error>(TokioIo::new(s))
        })
    }

    /// Whether a connection to `addr` is refused (nothing listens there), within `within`.
    pub async fn probe_refused(addr: &str, within: Duration) -> bool {
        matches!(
            tokio::time::timeout(within, TcpStream::connect(addr)).await,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
    }
}
