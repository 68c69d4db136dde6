//! Reading what each replica holds, directly (not through its proxy), after `sync`.

use std::time::Duration;

use zk_client::Client;

use crate::check::durability::ReplicaState;
use crate::check::fence::FenceEntry;
use crate::workload::{self, COUNTER, FENCE};

/// How long one replica read may take in total.
const READ_LIMIT: Duration = Duration::from_secs(60);

/// Reads replica state from the server at `addr` (its real client address): every
/// register and set of `regs`/`sets`, the fence log and the counter, after a `sync`.
pub async fn read(
    addr: &str,
    regs: &[u32],
    sets: &[u32],
) -> Result<ReplicaState, zk_client::Error> {
    let client = Client::builder()
        .servers(addr)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let r = tokio::time::timeout(READ_LIMIT, read_with(&client, regs, sets))
        .await
        .unwrap_or(Err(zk_client::Error::Timeout));
    let _ = tokio::time::timeout(Duration::from_secs(2), client.close()).await;
    r
}

async fn read_with(
    c: &Client,
    regs: &[u32],
    sets: &[u32],
) -> Result<ReplicaState, zk_client::Error> {
    c.sync("/").await?;
    let mut s = ReplicaState::default();
    for &k in regs {
        let (data, stat) = c.get_data(&workload::reg_path(k)).await?;
        let v = std::str::from_utf8(&data)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(u64::MAX);
        s.registers.insert(k, (v, stat.version));
    }
    for &k in sets {
        let (children, _) = c.get_children(&workload::set_path(k)).await?;
        s.sets.insert(
            k,
            children
                .iter()
                .filter_map(|n| workload::elem_of(n))
                .collect(),
        );
    }
    let (mut names, _) = c.get_children(FENCE).await?;
    names.sort();
    for name in names {
        let (data, _) = c.get_data(&format!("{FENCE}/{name}")).await?;
        if let Some(e) = FenceEntry::parse(&name, &data) {
            s.fence.push(e);
        }
    }
    let (data, _) = c.get_data(COUNTER).await?;
    s.counter = std::str::from_utf8(&data).ok().and_then(|t| t.parse().ok());
    Ok(s)
}
