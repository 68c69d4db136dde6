//! Transport security: TLS (rustls with the `ring` provider, no system libraries) on
//! the client port and the peer port, and peer authentication.
//!
//! - [`settings`]: the `[tls]` configuration (certificates, client-certificate policy,
//!   peer TLS, the peer secret) and its loading into rustls configs.
//! - [`accept`]: the server side of a handshake and the client's identity from it.
//! - [`dial`]: the dialling side of peer mutual TLS, which checks that the server that
//!   answered is the one dialled (`--peer-tls-verify-id`).
//! - [`io`]: a connection that is plain TCP or TLS, as tonic and our own protocol
//!   handlers take it.
//! - [`x509`]: a certificate's subject DN in RFC 2253 form (the `x509` ACL id).
//! - [`peer_auth`]: the shared peer secret, sent and checked on every peer RPC.
//! - [`peer_id`]: with peer mutual TLS, a peer's certificate must name the server id
//!   its calls claim (`--peer-tls-verify-id`).
//! - [`reload`]: changed certificate files loaded for new connections, no restart.
//! - [`admin`]: the admin HTTP port over TLS (`--admin-tls`).
//!
//! The client port serves TLS and plaintext on one socket: a TLS ClientHello starts
//! with the record type 0x16, which as a ZooKeeper frame length would announce a
//! packet of more than 369 MB, and is neither `PRI ` nor a lowercase letter
//! (`api/listener.rs`). Inside TLS the same sniffing picks gRPC, a four-letter word or
//! the ZooKeeper protocol. With TLS configured, plaintext is refused unless
//! `allow_plaintext` (ZooKeeper's port unification) is set.

pub mod accept;
pub mod admin;
pub mod dial;
pub mod io;
pub mod peer_auth;
pub mod peer_id;
pub mod reload;
pub mod settings;
pub mod x509;

pub use reload::LiveConfig;
pub use settings::{ClientAuth, TlsError, TlsSettings};
