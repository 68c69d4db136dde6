//! Thin tonic adapters: decode, hand to the session layer, encode.

pub mod peer;
pub mod session;
