//! One module per command (or small group of commands), plus connecting.

pub mod acl;
pub mod cluster;
pub mod create;
pub mod ls;
pub mod read;
pub mod tree;
pub mod watch;
pub mod write;

use std::time::Duration;

use zk_client::Client;

use crate::CliError;

/// Connects to `server` (`HOST:PORT[,HOST:PORT...][/chroot]`), giving up after `timeout`.
pub async fn connect(
    server: &str,
    timeout: Duration,
    tls: Option<zk_client::TlsOptions>,
) -> Result<Client, CliError> {
    let mut builder = Client::builder().servers(server).connect_timeout(timeout);
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    let connect = builder.connect();
    // The client's own connect timeout fires first; this is the backstop.
    match tokio::time::timeout(timeout + Duration::from_secs(1), connect).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(CliError(format!("cannot connect to {server}: {e}"))),
        Err(_) => Err(CliError(format!(
            "cannot connect to {server}: timed out after {timeout:?}"
        ))),
    }
}
