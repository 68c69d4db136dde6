//! Printing a session's state changes: Connected, Disconnected (the client is
//! reconnecting; watches are kept), then Expired or Closed (terminal).
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example session_state`. Stop and restart the server to see
//! Disconnected / Connected; press Ctrl-C to close the session and exit.

use std::time::Duration;

use futures::StreamExt;
use zk_client::Client;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    let server = std::env::var("ZK_SERVER").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let client = Client::builder()
        .servers(&server)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    println!("session {:#x}", client.session_id());

    // The stream yields the current state first, then every change; it ends after a
    // terminal state.
    let mut states = client.state();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut closing = false;
    loop {
        tokio::select! {
            state = states.next() => match state {
                Some(state) => println!("state: {state:?}"),
                None => break,
            },
            _ = &mut ctrl_c, if !closing => {
                closing = true;
                println!("closing");
                let _ = client.close().await;
            }
        }
    }
    Ok(())
}
