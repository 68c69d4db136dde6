//! The client port and thin tonic adapters: [`listener`] accepts and tells the
//! protocols apart; [`session`] decodes, hands to the session layer, encodes;
//! [`client_stream`] carries a gRPC connection's per-IP slot into tonic.

pub mod client_stream;
pub mod listener;
pub mod peer;
pub mod session;
