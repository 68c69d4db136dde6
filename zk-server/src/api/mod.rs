//! The client port and thin tonic adapters: [`listener`] accepts and tells the
//! protocols apart; [`session`] decodes, hands to the session layer, encodes.

pub mod listener;
pub mod peer;
pub mod session;
