//! The reconnect delay schedule: exponential with jitter (the `backon` crate), clamped to
//! `[min, max]`.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Delays between reconnect attempts: `min`, then doubling, each with up to +100%
/// jitter, never above `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    delays: <ExponentialBuilder as BackoffBuilder>::Backoff,
    min: Duration,
    max: Duration,
}

impl Backoff {
    /// Jitter from the OS's randomness (`backon`'s own), or inside a seeded simulation
    /// from the simulation's seed, so that reconnect timing replays.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self::build(min, max, crate::random::simulated_seed())
    }

    /// A reproducible schedule (tests).
    #[cfg(test)]
    pub(crate) fn seeded(min: Duration, max: Duration, seed: u64) -> Self {
        Self::build(min, max, Some(seed))
    }

    fn build(min: Duration, max: Duration, seed: Option<u64>) -> Self {
        let max = max.max(min);
        let mut builder = ExponentialBuilder::default()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        if let Some(seed) = seed {
            builder = builder.with_jitter_seed(seed);
        }
        Backoff {
            delays: builder.build(),
            min,
            max,
        }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.delays
            .next()
            .unwrap_or(self.max)
            .clamp(self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_bounds_and_grow() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(1));
        for seed in 0..20 {
            let mut b = Backoff::seeded(min, max, seed);
            let delays: Vec<Duration> = (0..30).map(|_| b.next_delay()).collect();
            assert!(delays.iter().all(|d| *d >= min && *d <= max), "{delays:?}");
            // The first is at most 2 x min (jitter), later ones reach the cap.
            assert!(delays[0] < min * 2 + Duration::from_millis(1));
            assert_eq!(delays[29], max);
        }
    }

    #[test]
    fn jitter_varies_and_degenerate_bounds_hold() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
        let firsts: Vec<Duration> = (0..10)
            .map(|s| Backoff::seeded(min, max, s).next_delay())
            .collect();
        assert!(firsts.iter().any(|d| *d != firsts[0]), "{firsts:?}");
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_millis(100));
        for _ in 0..5 {
            assert_eq!(b.next_delay(), Duration::from_millis(200));
        }
    }
}
