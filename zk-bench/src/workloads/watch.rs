//! `watch`: set -> event latency. `inflight` nodes `<root>/w<j>`, each with its own
//! writer loop on the admin session; `clients` watcher sessions each hold a persistent
//! watch on every node. A writer stamps the time, sets its node, and waits until every
//! watcher has seen the event (or 5 s pass, counted as errors) before the next set, so
//! each event is matched to the write that caused it. One op = one event delivered.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use futures::stream::{select_all, StreamExt};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{connect_all, create_many, Conn, Plan, Window};
use crate::report::Stats;

/// One watched node's current write.
struct Slot {
    /// When the current write was sent, and how many watchers have yet to see it.
    current: Mutex<(Instant, usize)>,
    all_seen: Notify,
}

pub async fn run(admin: &Conn, plan: &Plan) -> Result<Stats, String> {
    let nodes: Vec<String> = (0..plan.inflight)
        .map(|j| format!("{}/w{j}", plan.root))
        .collect();
    create_many(admin, nodes.iter().cloned(), plan.value(), 256).await?;
    let watchers = connect_all(plan, plan.clients).await?;
    let mut streams = Vec::new();
    for client in &watchers {
        let mut per_node = Vec::new();
        for (j, node) in nodes.iter().enumerate() {
            let w = client.watch_data(node).await?;
            per_node.push(w.map(move |()| j));
        }
        streams.push(select_all(per_node));
    }
    let slots: Vec<Arc<Slot>> = (0..nodes.len())
        .map(|_| {
            Arc::new(Slot {
                current: Mutex::new((Instant::now(), 0)),
                all_seen: Notify::new(),
            })
        })
        .collect();
    let window = Window::starting_now(plan);
    let value = plan.value();

    let watcher_runs = streams.into_iter().map(|mut events| {
        let slots = slots.clone();
        async move {
            let mut stats = Stats::new();
            let end = tokio::time::sleep_until(window.end);
            tokio::pin!(end);
            loop {
                let next = tokio::select! {
                    next = events.next() => next,
                    _ = &mut end => break,
                };
                let Some(j) = next else { break };
                let now = Instant::now();
                let slot = &slots[j];
                let mut current = slot.current.lock();
                if current.1 == 0 {
                    continue; // a late event of a write already given up on
                }
                if current.0 >= window.measure_from && now <= window.end {
                    stats.record(now - current.0);
                }
                current.1 -= 1;
                if current.1 == 0 {
                    slot.all_seen.notify_one();
                }
            }
            stats.elapsed_s = window.elapsed_s();
            stats
        }
    });

    let writer_runs = nodes.iter().zip(&slots).map(|(node, slot)| {
        let value = value.clone();
        let watchers = watchers.len();
        async move {
            let mut errors = 0u64;
            while Instant::now() < window.end {
                let start = Instant::now();
                *slot.current.lock() = (start, watchers);
                if admin.set(node, &value).await.is_err() {
                    errors += 1;
                    slot.current.lock().1 = 0;
                    continue;
                }
                let give_up = (start + Duration::from_secs(5)).min(window.end);
                loop {
                    let seen = slot.all_seen.notified();
                    tokio::pin!(seen);
                    seen.as_mut().enable();
                    if slot.current.lock().1 == 0 {
                        break;
                    }
                    if tokio::time::timeout_at(give_up, seen).await.is_err() {
                        let mut current = slot.current.lock();
                        // Missing events count as errors, unless the run simply ended.
                        if start >= window.measure_from && give_up < window.end {
                            errors += current.1 as u64;
                        }
                        current.1 = 0;
                        break;
                    }
                }
            }
            errors
        }
    });

    let (per_watcher, writer_errors) =
        futures::join!(join_all(watcher_runs), join_all(writer_runs));
    super::close_all(watchers).await;
    let mut total = super::merge_all(&per_watcher);
    total.errors += writer_errors.iter().sum::<u64>();
    Ok(total)
}
