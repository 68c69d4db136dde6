//! Building blocks shared by the recipes (sequence nodes, waiting for deletes, parents).

pub mod b_client_source;
pub(crate) mod b_paths;
pub(crate) mod b_retry;
