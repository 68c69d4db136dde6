//! Peer transport for openraft (and the rest of the peer protocol): gRPC on the peer
//! port. One lazily connected channel per peer address, reused by every call (openraft
//! asks for a client per RPC burst); TCP_NODELAY on; every call has a deadline.
//!
//! Error mapping (see notes/openraft-0.9.md): a deadline -> `Timeout`; an unreachable
//! peer -> `Unreachable` (openraft backs off); other transport errors -> `Network`; the
//! remote raft's own error -> `RemoteError`.
//!
//! Peer authentication ([`Peers::with_security`]): with peer TLS every channel is
//! mutual TLS (our certificate, the peer CA); with a peer secret every call carries it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use zk_proto::peer::{peer_client::PeerClient as GrpcPeerClient, PeerMessage};

use super::member::Member;
use super::rpc::{PeerReply, PeerRequest};
use super::{NodeId, TypeConfig};

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
    tls: Arc<Mutex<Option<ClientTlsConfig>>>,
    /// The shared secret every call carries, if set.
    secret: crate::tls::peer_auth::PeerSecret,
}

impl Peers {
    /// No channels yet; dial peers at their addresses.
    pub fn new() -> Peers {
        Peers::default()
    }

    /// Like [`Peers::new`], but dial `dial[addr]` instead of `addr` where given.
    pub fn with_dial(dial: HashMap<String, String>) -> Peers {
        Peers {
            channels: Arc::default(),
            dial: Arc::new(dial),
            ..Peers::default()
        }
    }

    /// Dials peers over mutual TLS (`tls`) and sends `secret` with every call.
    pub fn with_security(
        self,
        tls: Option<ClientTlsConfig>,
        secret: crate::tls::peer_auth::PeerSecret,
    ) -> Peers {
        Peers {
            tls: Arc::new(Mutex::new(tls)),
            secret,
            ..self
        }
    }

    /// Dials with `tls` from now on (a reloaded certificate): cached channels are
    /// dropped, so the next call dials again; calls under way finish on their channel.
    pub fn set_dial_tls(&self, tls: ClientTlsConfig) {
        *self.tls.lock() = Some(tls);
        self.channels.lock().clear();
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
        let tls = self.tls.lock().clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{target}")).map_err(bad)?;
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).map_err(bad)?;
        }
        let endpoint = endpoint
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
        let channel = endpoint.connect_lazy();
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
        let mut client = GrpcPeerClient::new(self.channel(addr)?)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let mut request = tonic::Request::new(outbound);
        self.secret.attach(&mut request);
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
