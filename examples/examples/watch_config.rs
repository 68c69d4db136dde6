//! Following a configuration node with a persistent watch: print the current value,
//! then every change, until the node is deleted or Ctrl-C.
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example watch_config -- /config/app` and, in another
//! terminal, change it: `cargo run -p zk-cli -- set /config/app 'level=debug'`.

use futures::StreamExt;
use zk_client::{Client, CreateOptions, Error, EventType, SessionState};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/config/app".into());
    let server = std::env::var("ZK_SERVER").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let client = Client::connect(&server).await?;

    // Make sure the node exists (parents too), so there is something to follow.
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        prefix = format!("{prefix}/{part}");
        match client
            .create(&prefix, "", &CreateOptions::persistent())
            .await
        {
            Ok(_) | Err(Error::NodeExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }

    // Arm the watch first, then read: a change in between is not missed (it arrives as
    // an event, and the read shows the newest value anyway).
    let mut events = client.watch(&path, false).await?;
    let (data, stat) = client.get_data(&path).await?;
    println!(
        "{path} v{}: {}",
        stat.version,
        String::from_utf8_lossy(&data)
    );

    loop {
        let event = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.next() => match event {
                Some(event) => event,
                None => break,
            },
        };
        match event.event_type {
            EventType::NodeDataChanged | EventType::NodeCreated => {
                match client.get_data(&path).await {
                    Ok((data, stat)) => {
                        println!(
                            "{path} v{}: {}",
                            stat.version,
                            String::from_utf8_lossy(&data)
                        )
                    }
                    Err(Error::NoNode { .. }) => println!("{path} is gone"),
                    Err(e) => return Err(e.into()),
                }
            }
            EventType::NodeDeleted => {
                println!("{path} was deleted");
                break;
            }
            EventType::Session if event.state == SessionState::Disconnected => {
                println!("disconnected; the client reconnects and re-arms the watch");
            }
            EventType::Session if event.state.is_terminal() => {
                println!("session {:?}", event.state);
                break;
            }
            _ => {}
        }
    }
    client.close().await?;
    Ok(())
}
