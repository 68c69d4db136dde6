//! One benchmark session, through either protocol: our native client (`zk-client`), or
//! Apache ZooKeeper's client protocol (jute) spoken by the independent `zookeeper-client`
//! crate, which drives our server (same port, the listener sniffs the protocol) and
//! Apache ZooKeeper itself alike. Workloads only see [`Conn`].

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use zookeeper_client as zk;

use crate::Target;

/// How long connecting may take (per session).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed request: `NoNode` matters to cleanup, the rest is just counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    NoNode,
    NotEmpty,
    Other(String),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::NoNode => f.write_str("no node"),
            OpError::NotEmpty => f.write_str("node has children"),
            OpError::Other(e) => f.write_str(e),
        }
    }
}

impl From<zk_client::Error> for OpError {
    fn from(e: zk_client::Error) -> Self {
        match e {
            zk_client::Error::NoNode { .. } => OpError::NoNode,
            zk_client::Error::NotEmpty { .. } => OpError::NotEmpty,
            e => OpError::Other(e.to_string()),
        }
    }
}

impl From<zk::Error> for OpError {
    fn from(e: zk::Error) -> Self {
        match e {
            zk::Error::NoNode => OpError::NoNode,
            zk::Error::NotEmpty => OpError::NotEmpty,
            e => OpError::Other(e.to_string()),
        }
    }
}

/// A session through one of the two protocols.
#[derive(Clone)]
pub enum Conn {
    Native(zk_client::Client),
    Zk(zk::Client),
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

impl Conn {
    /// Connects one session to `server` (`HOST:PORT[,HOST:PORT...]`), over TLS if
    /// `tls` is given (native target only).
    pub async fn connect(
        target: Target,
        server: &str,
        tls: Option<zk_client::TlsOptions>,
    ) -> Result<Conn, String> {
        Conn::connect_within(target, server, tls, CONNECT_TIMEOUT).await
    }

    /// [`Conn::connect`] giving up after `limit` (10 s at most).
    pub async fn connect_within(
        target: Target,
        server: &str,
        tls: Option<zk_client::TlsOptions>,
        limit: Duration,
    ) -> Result<Conn, String> {
        let timed_out = || format!("cannot connect to {server}: timed out");
        let limit = limit.min(CONNECT_TIMEOUT);
        let wait = limit + Duration::from_millis(100);
        match target {
            Target::Native => {
                let mut builder = zk_client::Client::builder()
                    .servers(server)
                    .connect_timeout(limit);
                if let Some(tls) = tls {
                    builder = builder.tls(tls);
                }
                let connect = builder.connect();
                match tokio::time::timeout(wait, connect).await {
                    Ok(Ok(c)) => Ok(Conn::Native(c)),
                    Ok(Err(e)) => Err(format!("cannot connect to {server}: {e}")),
                    Err(_) => Err(timed_out()),
                }
            }
            Target::Zk if tls.is_some() => Err("--tls-ca needs --target native".into()),
            Target::Zk => {
                let connect = zk::Client::connector()
                    .with_session_timeout(CONNECT_TIMEOUT)
                    .with_connection_timeout(limit)
                    .connect(server);
                match tokio::time::timeout(wait, connect).await {
                    Ok(Ok(c)) => Ok(Conn::Zk(c)),
                    Ok(Err(e)) => Err(format!("cannot connect to {server}: {e}")),
                    Err(_) => Err(timed_out()),
                }
            }
        }
    }

    /// Creates a persistent node.
    pub async fn create(&self, path: &str, data: &Bytes) -> Result<(), OpError> {
        match self {
            Conn::Native(c) => {
                let options = zk_client::CreateOptions::persistent();
                c.create(path, data.clone(), &options).await?;
            }
            Conn::Zk(c) => {
                c.create(path, data, &persistent()).await?;
            }
        }
        Ok(())
    }

    /// Sets a node's data (any version).
    pub async fn set(&self, path: &str, data: &Bytes) -> Result<(), OpError> {
        match self {
            Conn::Native(c) => {
                c.set_data(path, data.clone(), None).await?;
            }
            Conn::Zk(c) => {
                c.set_data(path, data, None).await?;
            }
        }
        Ok(())
    }

    /// Reads a node's data.
    pub async fn get(&self, path: &str) -> Result<(), OpError> {
        match self {
            Conn::Native(c) => {
                c.get_data(path).await?;
            }
            Conn::Zk(c) => {
                c.get_data(path).await?;
            }
        }
        Ok(())
    }

    /// Deletes a node (any version).
    pub async fn delete(&self, path: &str) -> Result<(), OpError> {
        match self {
            Conn::Native(c) => c.delete(path, None).await?,
            Conn::Zk(c) => c.delete(path, None).await?,
        }
        Ok(())
    }

    /// The names of a node's children.
    pub async fn children(&self, path: &str) -> Result<Vec<String>, OpError> {
        Ok(match self {
            Conn::Native(c) => c.get_children(path).await?.0,
            Conn::Zk(c) => c.list_children(path).await?,
        })
    }

    /// A persistent (non-recursive) watch on `path`: the stream yields once per data
    /// change of the node, and ends when the session does.
    pub async fn watch_data(&self, path: &str) -> Result<BoxStream<'static, ()>, String> {
        match self {
            Conn::Native(c) => {
                let w = c
                    .watch(path, false)
                    .await
                    .map_err(|e| format!("setup: {e}"))?;
                Ok(w.filter_map(|event| async move {
                    (event.event_type == zk_client::EventType::NodeDataChanged).then_some(())
                })
                .boxed())
            }
            Conn::Zk(c) => {
                let w = c
                    .watch(path, zk::AddWatchMode::Persistent)
                    .await
                    .map_err(|e| format!("setup: {e}"))?;
                let events = futures::stream::unfold(w, |mut w| async move {
                    let event = w.changed().await;
                    // A session event: disconnected or closed; this run is over for it.
                    (event.event_type != zk::EventType::Session).then_some((event, w))
                });
                Ok(events
                    .filter_map(|event| async move {
                        (event.event_type == zk::EventType::NodeDataChanged).then_some(())
                    })
                    .boxed())
            }
        }
    }

    /// Ends the session (a `zookeeper-client` session closes when its last handle drops;
    /// one round trip first, so requests it already sent are done).
    pub async fn close(self) {
        match self {
            Conn::Native(c) => {
                let _ = c.close().await;
            }
            Conn::Zk(c) => {
                let _ = tokio::time::timeout(Duration::from_secs(5), c.sync("/")).await;
                drop(c);
            }
        }
    }
}
