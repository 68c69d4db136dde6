//! The random source of the client's (and zk-recipes') random choices — host order,
//! GUIDs in protected node names: the OS's randomness, or, inside a turmoil simulation
//! whose driver seeded it ([`seed`], feature `simulation`), a seeded source, so that a
//! simulation seed replays exactly. Outside a simulation nothing changes.

use rand::RngCore;

/// Runs `f` with the random source: [`rand::rng`], or the simulation's seeded source.
pub fn with_rng<T>(f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
    #[cfg(feature = "simulation")]
    if turmoil::in_simulation() {
        return seeded::with(f);
    }
    f(&mut rand::rng())
}

/// A seed drawn from the simulation's seeded source (for a dependency that takes its
/// own seed, such as `backon`'s jitter); `None` outside a seeded simulation, where the
/// dependency keeps its own randomness.
pub(crate) fn simulated_seed() -> Option<u64> {
    #[cfg(feature = "simulation")]
    if turmoil::in_simulation() {
        return seeded::next_u64();
    }
    None
}

#[cfg(feature = "simulation")]
pub use seeded::seed;

#[cfg(feature = "simulation")]
mod seeded {
    use std::cell::RefCell;

    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    thread_local! {
        static RNG: RefCell<Option<StdRng>> = const { RefCell::new(None) };
    }

    /// Seeds (`Some`) or removes (`None`) the random source of the clients simulated on
    /// this thread (called by the simulation driver before a run; all hosts of one
    /// simulation run on its thread).
    pub fn seed(seed: Option<u64>) {
        RNG.with(|r| *r.borrow_mut() = seed.map(StdRng::seed_from_u64));
    }

    /// The next draw of the seeded source, if one is set.
    pub(super) fn next_u64() -> Option<u64> {
        RNG.with(|r| r.borrow_mut().as_mut().map(|g| g.next_u64()))
    }

    /// Runs `f` with the seeded source, or the OS's if none is set.
    pub(super) fn with<T>(f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
        RNG.with(|r| match r.borrow_mut().as_mut() {
            Some(g) => f(g),
            None => f(&mut rand::rng()),
        })
    }
}
