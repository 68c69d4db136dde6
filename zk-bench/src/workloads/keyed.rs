//! `set`, `get`, `mixed` (90% get / 10% set): ops on `keys` pre-created nodes
//! `<root>/k<n>`, each client picking keys with its own seeded PRNG.

use futures::future::join_all;

use super::{connect_all, create_many, drive, merge_all, Plan, Rng, Window};
use crate::report::Stats;
use crate::Workload;

pub fn key(plan: &Plan, n: usize) -> String {
    format!("{}/k{n:07}", plan.root)
}

pub async fn run(workload: Workload, admin: &super::Conn, plan: &Plan) -> Result<Stats, String> {
    create_many(
        admin,
        (0..plan.keys).map(|n| key(plan, n)),
        plan.value(),
        256,
    )
    .await?;
    let keys: Vec<String> = (0..plan.keys).map(|n| key(plan, n)).collect();
    let clients = connect_all(plan, plan.clients).await?;
    let value = plan.value();
    let window = Window::starting_now(plan);
    let runs = clients.iter().enumerate().map(|(c, client)| {
        let mut rng = Rng::new(c as u64 + 1);
        let keys = &keys;
        let value = value.clone();
        drive(window, plan.inflight, move |_| {
            let path = keys[rng.below(keys.len())].clone();
            let write = match workload {
                Workload::Set => true,
                Workload::Mixed => rng.below(10) == 0,
                _ => false,
            };
            let value = value.clone();
            async move {
                if write {
                    client.set(&path, &value).await
                } else {
                    client.get(&path).await
                }
            }
        })
    });
    let stats = join_all(runs).await;
    super::close_all(clients).await;
    Ok(merge_all(&stats))
}
