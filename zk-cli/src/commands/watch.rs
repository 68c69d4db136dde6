//! `watch [-r] [--count N] PATH`: a persistent watch, printed one event per line.

use futures::StreamExt;
use serde_json::json;
use zk_client::{Client, EventType, SessionState, WatchedEvent};

use crate::output::{hex, Output};
use crate::{CliError, CmdResult};

pub async fn run(
    client: &Client,
    out: &Output,
    path: &str,
    recursive: bool,
    count: Option<u64>,
) -> CmdResult {
    let mut events = client.watch(path, recursive).await?;
    let mut seen = 0u64;
    if count == Some(0) {
        return Ok(());
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let event = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            event = events.next() => event,
        };
        let Some(event) = event else {
            return Err(CliError(format!(
                "the watch on {path} ended (client closed)"
            )));
        };
        if event.event_type == EventType::Session {
            match event.state {
                SessionState::Expired => return Err(CliError("session expired".into())),
                SessionState::Closed => return Err(CliError("client closed".into())),
                // Disconnects are transient: the client re-arms the watch and misses nothing.
                _ => continue,
            }
        }
        print_event(out, &event);
        seen += 1;
        if count.is_some_and(|n| seen >= n) {
            return Ok(());
        }
    }
}

fn print_event(out: &Output, e: &WatchedEvent) {
    let kind = format!("{:?}", e.event_type);
    out.emit(
        || Some(format!("{kind} {} zxid={}", e.path, hex(e.zxid))),
        || json!({ "event": kind, "path": e.path, "zxid": e.zxid }),
    );
}
