//! `create`: every op creates a new node, `<root>/c<client>/n<i>`, with `value_size`
//! bytes of data.

use bytes::Bytes;
use futures::future::join_all;

use super::{connect_all, drive, merge_all, Plan, Window};
use crate::report::Stats;

pub async fn run(plan: &Plan) -> Result<Stats, String> {
    let clients = connect_all(plan, plan.clients).await?;
    for (c, client) in clients.iter().enumerate() {
        client
            .create(&format!("{}/c{c}", plan.root), &Bytes::new())
            .await
            .map_err(|e| format!("setup: {e}"))?;
    }
    let value = plan.value();
    let window = Window::starting_now(plan);
    let runs = clients.iter().enumerate().map(|(c, client)| {
        let dir = format!("{}/c{c}", plan.root);
        let value = value.clone();
        drive(window, plan.inflight, move |i| {
            let path = format!("{dir}/n{i}");
            let value = value.clone();
            async move { client.create(&path, &value).await }
        })
    });
    let stats = join_all(runs).await;
    super::close_all(clients).await;
    Ok(merge_all(&stats))
}
