//! Watches as values: [`OneshotWatcher`] (a future), [`PersistentWatcher`] (a stream),
//! [`StateStream`] (session states), and the registry the session task routes events with.

mod oneshot;
mod persistent;
pub(crate) mod registry;
mod state;

pub use oneshot::OneshotWatcher;
pub use persistent::PersistentWatcher;
pub use state::StateStream;
