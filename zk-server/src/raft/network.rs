//! Peer transport for openraft (and the rest of the peer protocol): gRPC on the peer
//! port. One lazily connected channel per peer address, reused by every call (openraft
//! asks for a client per RPC burst); TCP_NODELAY on; every call has a deadline.
//!
//! Error mapping (see notes/openraft-0.9.md): a deadline -> `Timeout`; an unreachable
//! peer -> `Unreachable` (openraft backs off); other transport errors -> `Network`; the
//! remote raft's own error -> `RemoteError`.
//!
//! Peer authentication ([`Peers::with_security`]): with peer TLS every channel is
//! mutual TLS (our certificate, the peer CA; with `--peer-tls-verify-id` the answering
//! server's certificate must name the server we meant to reach: [`crate::tls::dial`]);
//! with a peer secret every call carries it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::RPCTypes;
use parking_lot::Mutex;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use zk_proto::peer::{peer_client::PeerClient as GrpcPeerClient, PeerMessage};

use super::member::Member;
use super::rpc::{PeerReply, PeerRequest};
use super::{NodeId, TypeConfig};
use crate::tls::dial::{Expected, PeerDialer};

/// Why a peer call failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer {addr} unreachable: {message}")]
    Unreachable { addr: String, message: String },
    #[error("peer {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("peer {addr}: {message}")]
    Protocol { addr: String, message: String },
}

/// Cached channels to peers, by address.
#[derive(Clone, Default)]
pub struct Peers {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Peer address -> the address actually dialled (a proxy, a NAT mapping).
    dial: Arc<HashMap<String, String>>,
    /// Mutual TLS to peers, if on (replaced when the certificate files change).
    tls: Arc<Mutex<Option<Arc<PeerDialer>>>>,
    /// The shared secret every call carries, if set.
    secret: crate::tls::peer_auth::PeerSecret,
    /// This node's name on every call ([`super::caller`]).
    caller: super::caller::Caller,
    /// Server id -> peer address, from the configuration and the membership: who must
    /// answer at an address (`--peer-tls-verify-id`).
    ids: Arc<Mutex<BTreeMap<NodeId, String>>>,
    /// The last failed call and when, for `/status`.
    last_error: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Peers {
    /// No channels yet; dial peers at their addresses.
    pub fn new() -> Peers {
        Peers::default()
    }

    /// Like [`Peers::new`], but dial `dial[addr]` instead of `addr` where given.
    pub fn with_dial(dial: HashMap<String, String>) -> Peers {
        Peers {
            dial: Arc::new(dial),
            ..Peers::default()
        }
    }

    /// Dials peers over mutual TLS (`tls`) and sends `secret` with every call.
    pub fn with_security(
        self,
        tls: Option<PeerDialer>,
        secret: crate::tls::peer_auth::PeerSecret,
    ) -> Peers {
        Peers {
            tls: Arc::new(Mutex::new(tls.map(Arc::new))),
            secret,
            ..self
        }
    }

    /// Names this node (`caller`) on every call.
    pub fn with_caller(self, caller: super::caller::Caller) -> Peers {
        Peers { caller, ..self }
    }

    /// The peer address server `id` is known at (configuration or membership), if any.
    pub fn address_of(&self, id: NodeId) -> Option<String> {
        self.ids.lock().get(&id).cloned()
    }

    /// Dials with `tls` from now on (a reloaded certificate): cached channels are
    /// dropped, so the next call dials again; calls under way finish on their channel.
    pub fn set_dial_tls(&self, tls: PeerDialer) {
        *self.tls.lock() = Some(Arc::new(tls));
        self.channels.lock().clear();
    }

    /// Records that server `id` answers at `addr` (from the configuration or the
    /// membership). An address belongs to one server: a channel dialled under another
    /// expectation is dropped, so the next call dials and checks again.
    pub fn learn(&self, id: NodeId, addr: &str) {
        let mut ids = self.ids.lock();
        if ids.get(&id).is_some_and(|a| a == addr) {
            return;
        }
        ids.retain(|other, a| *other == id || a != addr);
        let old = ids.insert(id, addr.to_string());
        drop(ids);
        let mut channels = self.channels.lock();
        channels.remove(addr);
        if let Some(old) = old {
            channels.remove(&old);
        }
    }

    /// [`Peers::learn`], unless `addr` is already known as some server's address (a
    /// membership change names a new server's address: it must not take over another's).
    pub fn learn_new(&self, id: NodeId, addr: &str) {
        let known = self.ids.lock().values().any(|a| a == addr);
        if !known {
            self.learn(id, addr);
        }
    }

    /// Who must answer at `addr`.
    fn expected(ids: &Mutex<BTreeMap<NodeId, String>>, addr: &str) -> Expected {
        let ids = ids.lock();
        Expected {
            id: ids.iter().find(|(_, a)| *a == addr).map(|(id, _)| *id),
            members: ids.iter().map(|(id, a)| (*id, a.clone())).collect(),
        }
    }

    /// The last failed peer call (when, and why), if any.
    pub fn last_error(&self) -> Option<(Instant, String)> {
        self.last_error.lock().clone()
    }

    fn note<T>(&self, r: Result<T, PeerError>) -> Result<T, PeerError> {
        if let Err(e) = &r {
            *self.last_error.lock() = Some((Instant::now(), e.to_string()));
        }
        r
    }

    fn channel(&self, addr: &str) -> Result<Channel, PeerError> {
        let mut map = self.channels.lock();
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let target = self.dial.get(addr).map(String::as_str).unwrap_or(addr);
        let bad = |e: tonic::transport::Error| PeerError::Protocol {
            addr: addr.to_string(),
            message: e.to_string(),
        };
        // TLS, when on, is ours (a connector), not tonic's: the dialler checks who answered.
        let endpoint = Endpoint::from_shared(format!("http://{target}"))
            .map_err(bad)?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_millis(500))
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_while_idle(true);
        #[cfg(feature = "simulation")]
        if crate::sim::active() {
            let channel = endpoint.connect_with_connector_lazy(crate::sim::connector());
            map.insert(addr.to_string(), channel.clone());
            return Ok(channel);
        }
        let channel = match self.tls.lock().clone() {
            None => endpoint.connect_lazy(),
            Some(dialer) => {
                let (ids, addr) = (self.ids.clone(), addr.to_string());
                endpoint.connect_with_connector_lazy(tower::service_fn(
                    move |uri: tonic::codegen::http::Uri| {
                        let (dialer, ids, addr) = (dialer.clone(), ids.clone(), addr.clone());
                        async move {
                            let host = uri.host().unwrap_or("localhost").to_string();
                            let port = uri.port_u16().unwrap_or(443);
                            let tls = dialer
                                .connect(&host, port, &addr, || Peers::expected(&ids, &addr))
                                .await?;
                            Ok::<_, std::io::Error>(TokioIo::new(tls))
                        }
                    },
                ))
            }
        };
        map.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// Sends one request to the peer at `addr` and waits for its reply, at most `timeout`.
    pub async fn call(
        &self,
        addr: &str,
        req: &PeerRequest,
        timeout: Duration,
    ) -> Result<PeerReply, PeerError> {
        let r = self.call_once(addr, req, timeout).await;
        self.note(r)
    }

    async fn call_once(
        &self,
        addr: &str,
        req: &PeerRequest,
        timeout: Duration,
    ) -> Result<PeerReply, PeerError> {
        let payload = postcard::to_allocvec(req).map_err(|e| PeerError::Protocol {
            addr: addr.to_string(),
            message: format!("encode: {e}"),
        })?;
        let mut client = GrpcPeerClient::new(self.channel(addr)?)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let mut request = tonic::Request::new(PeerMessage {
            payload: payload.into(),
        });
        self.secret.attach(&mut request);
        self.caller.attach(&mut request);
        let call = client.call(request);
        let resp = match tokio::time::timeout(timeout, call).await {
            Err(_) => {
                return Err(PeerError::Timeout {
                    addr: addr.to_string(),
                    timeout,
                })
            }
            Ok(Err(status)) => {
                return Err(match status.code() {
                    tonic::Code::Unavailable | tonic::Code::Unknown => PeerError::Unreachable {
                        addr: addr.to_string(),
                        message: status.message().to_string(),
                    },
                    _ => PeerError::Protocol {
                        addr: addr.to_string(),
                        message: status.to_string(),
                    },
                })
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        postcard::from_bytes(&resp.payload).map_err(|e| PeerError::Protocol {
            addr: addr.to_string(),
            message: format!("decode: {e}"),
        })
    }
}

impl Peers {
    /// Opens the ordered forward stream to the leader at `addr`: `outbound` carries the
    /// postcard-encoded batches, the returned stream the leader's answers in the same
    /// order. Waits at most `timeout` for the leader to accept the stream.
    pub async fn open_forward<S>(
        &self,
        addr: &str,
        outbound: S,
        timeout: Duration,
    ) -> Result<tonic::Streaming<PeerMessage>, PeerError>
    where
        S: futures::Stream<Item = PeerMessage> + Send + 'static,
    {
        let r = self.open_forward_once(addr, outbound, timeout).await;
        self.note(r)
    }

    async fn open_forward_once<S>(
        &self,
        addr: &str,
        outbound: S,
        timeout: Duration,
    ) -> Result<tonic::Streaming<PeerMessage>, PeerError>
    where
        S: futures::Stream<Item = PeerMessage> + Send + 'static,
    {
        let mut client = GrpcPeerClient::new(self.channel(addr)?)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let mut request = tonic::Request::new(outbound);
        self.secret.attach(&mut request);
        self.caller.attach(&mut request);
        match tokio::time::timeout(timeout, client.forward(request)).await {
            Err(_) => Err(PeerError::Timeout {
                addr: addr.to_string(),
                timeout,
            }),
            Ok(Err(status)) => Err(PeerError::Unreachable {
                addr: addr.to_string(),
                message: status.to_string(),
            }),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }
}

/// openraft's network factory over [`Peers`].
#[derive(Clone)]
pub struct Network {
    peers: Peers,
}

impl Network {
    /// A factory sharing `peers`' channels.
    pub fn new(peers: Peers) -> Network {
        Network { peers }
    }
}

/// openraft's client for one target.
pub struct NetworkClient {
    peers: Peers,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = NetworkClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> NetworkClient {
        self.peers.learn(target, &node.peer_addr);
        NetworkClient {
            peers: self.peers.clone(),
            target,
            addr: node.peer_addr.clone(),
        }
    }
}

fn to_rpc_error<E: std::error::Error>(
    e: PeerError,
    target: NodeId,
    rpc: RPCTypes,
    timeout: Duration,
) -> RPCError<NodeId, Member, E> {
    match e {
        PeerError::Timeout { .. } => RPCError::Timeout(Timeout {
            action: rpc,
            id: 0,
            target,
            timeout,
        }),
        PeerError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
        PeerError::Protocol { .. } => RPCError::Network(NetworkError::new(&e)),
    }
}

fn unexpected<E: std::error::Error>(addr: &str) -> RPCError<NodeId, Member, E> {
    RPCError::Network(NetworkError::new(&PeerError::Protocol {
        addr: addr.to_string(),
        message: "unexpected reply type".into(),
    }))
}

impl NetworkClient {
    async fn call(&self, req: PeerRequest, option: &RPCOption) -> Result<PeerReply, PeerError> {
        self.peers.call(&self.addr, &req, option.hard_ttl()).await
    }
}

impl RaftNetwork<TypeConfig> for NetworkClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let (last, commit) = (
            rpc.entries.last().map(|e| e.log_id.index),
            rpc.leader_commit.map_or(0, |l| l.index),
        );
        let prev = rpc.prev_log_id.map_or(0, |l| l.index);
        crate::mark!(
            "ae_send",
            last.unwrap_or(prev),
            to = self.target,
            n = rpc.entries.len(),
            commit = commit
        );
        let reply = self.call(PeerRequest::AppendEntries(rpc), &option).await;
        crate::mark!("ae_resp", last.unwrap_or(prev), to = self.target);
        match reply {
            Ok(PeerReply::AppendEntries(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unexpected(&self.addr)),
            Err(e) => Err(to_rpc_error(
                e,
                self.target,
                RPCTypes::AppendEntries,
                option.hard_ttl(),
            )),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self.call(PeerRequest::InstallSnapshot(rpc), &option).await {
            Ok(PeerReply::InstallSnapshot(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unexpected(&self.addr)),
            Err(e) => Err(to_rpc_error(
                e,
                self.target,
                RPCTypes::InstallSnapshot,
                option.hard_ttl(),
            )),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        match self.call(PeerRequest::Vote(rpc), &option).await {
            Ok(PeerReply::Vote(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unexpected(&self.addr)),
            Err(e) => Err(to_rpc_error(
                e,
                self.target,
                RPCTypes::Vote,
                option.hard_ttl(),
            )),
        }
    }
}
