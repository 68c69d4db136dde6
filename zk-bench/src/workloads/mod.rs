//! The workloads and what they share: the plan, connecting, setup and cleanup of the
//! bench root, and [`drive`], the loop that keeps M requests in flight.

mod conn;
mod create;
mod keyed;
mod lock;
mod watch;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{join_all, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

pub use conn::{Conn, OpError};

use crate::report::Stats;
use crate::{Target, Workload};

/// Everything a workload needs to know.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Which protocol the sessions speak.
    pub target: Target,
    pub server: String,
    pub clients: usize,
    pub inflight: usize,
    pub value_size: usize,
    pub keys: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// `/bench-<pid>`: everything the run creates lives below it.
    pub root: String,
    /// TLS to the servers (`--tls-ca`; native target only).
    pub tls: Option<zk_client::TlsOptions>,
}

impl Plan {
    /// A value of `value_size` bytes.
    pub fn value(&self) -> Bytes {
        Bytes::from(vec![b'x'; self.value_size])
    }
}

/// When measuring starts and ends.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub measure_from: Instant,
    pub end: Instant,
}

impl Window {
    pub fn starting_now(plan: &Plan) -> Self {
        let measure_from = Instant::now() + plan.warmup;
        Window {
            measure_from,
            end: measure_from + plan.duration,
        }
    }

    /// The measured seconds elapsed so far (capped at the window).
    pub fn elapsed_s(&self) -> f64 {
        let now = Instant::now().min(self.end);
        now.saturating_duration_since(self.measure_from)
            .as_secs_f64()
    }
}

pub async fn connect(
    target: Target,
    server: &str,
    tls: Option<zk_client::TlsOptions>,
) -> Result<Conn, String> {
    Conn::connect(target, server, tls).await
}

/// One session per client, connected concurrently. With several servers, client k
/// connects to server k mod n only: the clients spread evenly over an ensemble (both
/// client libraries would otherwise pick servers at random).
pub async fn connect_all(plan: &Plan, n: usize) -> Result<Vec<Conn>, String> {
    let servers: Vec<&str> = plan
        .server
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    join_all((0..n).map(|k| {
        let server = servers.get(k % servers.len().max(1)).copied();
        connect(
            plan.target,
            server.unwrap_or(&plan.server),
            plan.tls.clone(),
        )
    }))
    .await
    .into_iter()
    .collect()
}

/// Closes the sessions (concurrently); closing never fails in a way that matters here.
pub async fn close_all(clients: Vec<Conn>) {
    join_all(clients.into_iter().map(Conn::close)).await;
}

pub async fn setup_root(admin: &Conn, plan: &Plan) -> Result<(), String> {
    admin
        .create(&plan.root, &Bytes::new())
        .await
        .map_err(|e| format!("setup: {e}"))?;
    Ok(())
}

pub async fn run(workload: Workload, admin: &Conn, plan: &Plan) -> Result<Stats, String> {
    match workload {
        Workload::Create => create::run(plan).await,
        Workload::Set | Workload::Get | Workload::Mixed => keyed::run(workload, admin, plan).await,
        Workload::Watch => watch::run(admin, plan).await,
        Workload::Lock => lock::run(admin, plan).await,
    }
}

/// Creates `paths` with `data`, at most `window` creates in flight.
pub async fn create_many(
    client: &Conn,
    paths: impl IntoIterator<Item = String>,
    data: Bytes,
    window: usize,
) -> Result<(), String> {
    let mut pending = FuturesUnordered::new();
    for path in paths {
        if pending.len() >= window {
            if let Some(r) = pending.next().await {
                r?;
            }
        }
        let data = &data;
        pending.push(async move {
            client
                .create(&path, data)
                .await
                .map_err(|e| format!("setup: {e}"))
        });
    }
    while let Some(r) = pending.next().await {
        r?;
    }
    Ok(())
}

/// Deletes `root` and everything under it, deepest level first, a level at a time
/// (at most 1000 deletes in flight).
pub async fn cleanup(client: &Conn, root: &str) -> Result<(), OpError> {
    // A create still in flight when a run ends may land after the listing: go again.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match cleanup_once(client, root).await {
            Err(OpError::NotEmpty) if attempt < 5 => continue,
            other => return other,
        }
    }
}

async fn cleanup_once(client: &Conn, root: &str) -> Result<(), OpError> {
    let mut levels: Vec<Vec<String>> = vec![vec![root.to_string()]];
    loop {
        let mut below = Vec::new();
        let last = levels.last().map(Vec::as_slice).unwrap_or_default();
        for chunk in last.chunks(1000) {
            for (parent, r) in chunk
                .iter()
                .zip(join_all(chunk.iter().map(|p| client.children(p))).await)
            {
                match r {
                    Ok(kids) => below.extend(kids.into_iter().map(|k| format!("{parent}/{k}"))),
                    Err(OpError::NoNode) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if below.is_empty() {
            break;
        }
        levels.push(below);
    }
    for level in levels.iter().rev() {
        for chunk in level.chunks(1000) {
            for r in join_all(chunk.iter().map(|p| client.delete(p))).await {
                match r {
                    Ok(()) | Err(OpError::NoNode) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// Keeps `inflight` requests going until the window ends. `op(i)` makes the i-th
/// request of this client; its latency is the time from issue to completion. Requests
/// that started before the measured window, and everything after its end, are not
/// counted.
pub async fn drive<F, Fut, E>(window: Window, inflight: usize, mut op: F) -> Stats
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    drive_with(window, inflight, move |i| op(i).map(|r| r.map(|()| None))).await
}

/// [`drive`] for ops that measure their own latency: an op returning `Ok(Some(d))`
/// records `d` (e.g. the wait for a lock, without its release); `Ok(None)` records the
/// time from issue to completion.
pub async fn drive_with<F, Fut, E>(window: Window, inflight: usize, mut op: F) -> Stats
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Option<Duration>, E>>,
{
    let mut stats = Stats::new();
    let mut pending = FuturesUnordered::new();
    let mut issued = 0u64;
    let timed = |fut: Fut| async move {
        let start = Instant::now();
        let result = fut.await;
        (start, Instant::now(), result)
    };
    while pending.len() < inflight && Instant::now() < window.end {
        pending.push(timed(op(issued)));
        issued += 1;
    }
    let deadline = tokio::time::sleep_until(window.end);
    tokio::pin!(deadline);
    loop {
        let next = tokio::select! {
            biased;
            next = pending.next() => next,
            _ = &mut deadline => break,
        };
        let Some((start, done, result)) = next else {
            break;
        };
        if start >= window.measure_from && done <= window.end {
            match result {
                Ok(own) => stats.record(own.unwrap_or(done - start)),
                Err(_) => stats.errors += 1,
            }
        }
        if done < window.end {
            pending.push(timed(op(issued)));
            issued += 1;
        }
    }
    stats.elapsed_s = window.elapsed_s();
    stats
}

/// Merges the clients' results.
pub fn merge_all(per_client: &[Stats]) -> Stats {
    let mut total = Stats::new();
    for s in per_client {
        total.merge(s);
    }
    total
}

/// A small deterministic PRNG (xorshift64*) so runs are repeatable without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_spreads() {
        let mut r = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn drive_keeps_m_in_flight_and_stops_at_the_deadline() {
        let plan = Plan {
            target: Target::Native,
            server: String::new(),
            clients: 1,
            inflight: 4,
            value_size: 0,
            keys: 1,
            warmup: Duration::from_millis(100),
            duration: Duration::from_secs(1),
            root: "/b".into(),
            tls: None,
        };
        let window = Window::starting_now(&plan);
        let stats = drive(window, 4, |i| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if i % 10 == 9 {
                Err(OpError::Other("closed".into()))
            } else {
                Ok(())
            }
        })
        .await;
        // 4 in flight, 10 ms each, 1 s measured: ~400 completions, 10% errors.
        let total = stats.ops + stats.errors;
        assert!((390..=410).contains(&total), "{total}");
        assert!((35..=45).contains(&stats.errors), "{}", stats.errors);
        assert!((stats.elapsed_s - 1.0).abs() < 0.01);
        assert_eq!(stats.latency_us.max() / 1000, 10);
    }
}
