//! Coordination recipes built only on the public `zk-client` API, one recipe per module.
//!
//! Every lock and leadership carries a fencing token (the zxid that created the holder's
//! node), and writes to the tree can be fenced with `guarded` multis.

pub mod internal;

pub mod barrier;
pub mod config_watch;
pub mod counter;
pub mod double_barrier;
pub mod error;
pub mod queue;
pub mod registry;

pub use barrier::Barrier;
pub use config_watch::{ConfigWatch, ConfigWriter, Versioned};
pub use counter::SharedCounter;
pub use double_barrier::DoubleBarrier;
pub use error::{Error, Result};
pub use internal::b_client_source::ClientSource;
pub use queue::Queue;
pub use registry::{Pick, Registry, ServiceCache, ServiceChange, ServiceInstance};
