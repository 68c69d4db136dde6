//! Sequential-ephemeral nodes in "protected" mode (as Curator's): the name carries a
//! per-attempt GUID, `_c_{guid}-{prefix}{sequence}`, so a create whose reply was lost
//! (`ConnectionLoss`: applied or not, nobody knows) can find its own node after the
//! reconnect instead of creating a second one and leaving an orphan. The same GUID lets
//! a cancelled attempt remove its node even when it never saw the create's reply.

use bytes::Bytes;
use zk_client::{Client, CreateOptions, Stat};

use crate::error::{Error, Result};
use crate::fencing::FencingToken;
use crate::internal::parents::{ensure_containers, join};
use crate::internal::retry::{retry, wait_connected};

/// The marker that starts every protected name.
const PROTECTED: &str = "_c_";

/// Pause before looking for a node whose create failed with a retryable error.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Our own node in a queue of sequence nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Full path.
    pub path: String,
    /// Name within the directory.
    pub name: String,
    /// The sequence suffix.
    pub seq: i64,
    /// The creating zxid.
    pub token: FencingToken,
}

/// A member of a queue, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// Name within the directory.
    pub name: String,
    /// The sequence suffix.
    pub seq: i64,
}

impl Member {
    /// True when the member was created with `prefix` (after the protected part).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        strip_protected(&self.name).starts_with(prefix)
    }
}

/// The sequence number of a sequential node's name: its last 10 characters
/// (ZooKeeper's `%010d`).
pub(crate) fn sequence_of(name: &str) -> Option<i64> {
    let start = name.len().checked_sub(10)?;
    name.get(start..)?.parse().ok()
}

/// The GUID of a protected name (`_c_{guid}-...`), if it is one.
pub(crate) fn guid_of(name: &str) -> Option<&str> {
    name.strip_prefix(PROTECTED)?
        .split_once('-')
        .map(|(guid, _)| guid)
}

/// The name without the protected `_c_{guid}-` part.
fn strip_protected(name: &str) -> &str {
    match name.strip_prefix(PROTECTED) {
        Some(rest) => rest.split_once('-').map_or(rest, |(_, tail)| tail),
        None => name,
    }
}

/// A fresh GUID for one create attempt (128 random bits, hex).
fn guid() -> String {
    let g: u128 = zk_client::random::with_rng(|r| {
        (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64())
    });
    format!("{g:032x}")
}

/// The members of `dir`, ordered by sequence number (names without one are skipped). A
/// missing directory has no members. Retries on `ConnectionLoss`.
pub(crate) async fn members(client: &Client, dir: &str) -> Result<Vec<Member>> {
    let children = retry(client, "listing a queue", || {
        let list = client.get_children(dir);
        async move {
            match list.await {
                Ok((children, _)) => Ok(children),
                Err(zk_client::Error::NoNode { .. }) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        }
    })
    .await?;
    let mut members: Vec<Member> = children
        .into_iter()
        .filter_map(|name| sequence_of(&name).map(|seq| Member { name, seq }))
        .collect();
    members.sort_by_key(|m| m.seq);
    Ok(members)
}

/// One attempt to own a sequential-ephemeral node in `dir`. It remembers what it knows
/// (the GUID, and the path once seen) so that, if the attempt is abandoned, its node can
/// be removed whether or not the create's reply ever arrived: explicitly with
/// [`Pending::abandon`], or in the background when dropped while armed.
pub(crate) struct Pending {
    client: Client,
    dir: String,
    guid: String,
    path: Option<String>,
    armed: bool,
}

impl Pending {
    /// A new attempt in `dir`; nothing is created yet.
    pub fn new(client: &Client, dir: &str) -> Pending {
        Pending {
            client: client.clone(),
            dir: dir.to_string(),
            guid: guid(),
            path: None,
            armed: true,
        }
    }

    /// Creates the node (`prefix` after the protected part; `data` as its data),
    /// creating the directory (containers) on demand. On `ConnectionLoss` it waits for the
    /// connection and looks for its own node before trying again, so at most one node
    /// exists per attempt.
    pub async fn create(&mut self, prefix: &str, data: Bytes) -> Result<Node> {
        let name = format!("{PROTECTED}{}-{prefix}", self.guid);
        let path = join(&self.dir, &name);
        let options = CreateOptions::ephemeral().sequential(true);
        loop {
            match self.client.create(&path, data.clone(), &options).await {
                Ok((created, stat)) => return self.found(created, &stat),
                Err(zk_client::Error::NoNode { .. }) => {
                    ensure_containers(&self.client, &self.dir).await?;
                }
                Err(e) if e.is_retryable() => {
                    // A short pause: a server without a leader answers at once, and
                    // the session may still look connected.
                    tokio::time::sleep(RETRY_PAUSE).await;
                    wait_connected(&self.client, "creating a sequence node").await?;
                    if let Some(node) = self.find().await? {
                        return Ok(node);
                    }
                }
                Err(e) => return Err(Error::from_client("creating a sequence node", e)),
            }
        }
    }

    /// Records a created node.
    fn found(&mut self, path: String, stat: &Stat) -> Result<Node> {
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        let seq = sequence_of(&name).ok_or_else(|| {
            Error::InvalidArgument(format!("created node {path} has no sequence suffix"))
        })?;
        self.path = Some(path.clone());
        Ok(Node {
            path,
            name,
            seq,
            token: FencingToken::from_stat(stat),
        })
    }

    /// Looks for this attempt's node among the children of the directory. Syncs first:
    /// after a lost reply the client may be served by a server that has not applied the
    /// create yet, and not seeing the node there would create a second one (an orphan
    /// that, in a lock, blocks everyone behind it for the life of the session).
    async fn find(&mut self) -> Result<Option<Node>> {
        retry(&self.client, "syncing before a lookup", || {
            self.client.sync(&self.dir)
        })
        .await?;
        let members = members(&self.client, &self.dir).await?;
        let Some(member) = members.into_iter().find(|m| m.name.contains(&self.guid)) else {
            return Ok(None);
        };
        let path = join(&self.dir, &member.name);
        let stat = retry(&self.client, "reading our sequence node", || {
            self.client.exists(&path)
        })
        .await?;
        match stat {
            Some(stat) => self.found(path, &stat).map(Some),
            None => Ok(None),
        }
    }

    /// The node now belongs to a holder (which releases it): dropping this attempt no
    /// longer removes it.
    pub fn disarm(&mut self) {
        self.armed = false;
    }

    /// Removes the attempt's node, if any, and waits for it. Retries on `ConnectionLoss`;
    /// an ended session has removed it anyway.
    pub async fn abandon(mut self) -> Result<()> {
        self.armed = false;
        let found = match self.path.clone() {
            Some(path) => Some(path),
            None => match self.find().await {
                Ok(node) => node.map(|n| n.path),
                Err(e) if e.is_expired() => return Ok(()),
                Err(e) => return Err(e),
            },
        };
        match found {
            Some(path) => delete_own(&self.client, &path).await,
            None => Ok(()),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to clean up with: the node goes with the session.
            return;
        };
        let client = self.client.clone();
        match self.path.take() {
            Some(path) => {
                // Queued now, behind the create: it cannot overtake it.
                let delete = client.delete(&path, None);
                runtime.spawn(async move {
                    if let Err(zk_client::Error::ConnectionLoss { .. }) = delete.await {
                        let _ = delete_own(&client, &path).await;
                    }
                });
            }
            None => {
                // The create may still be in flight: list the directory now (queued after
                // the create, so the listing reflects it) and delete what carries our GUID.
                let listing = client.get_children(&self.dir);
                let (dir, guid) = (self.dir.clone(), self.guid.clone());
                runtime.spawn(async move {
                    let children = match listing.await {
                        Ok((children, _)) => children,
                        Err(e) if e.is_retryable() => match members(&client, &dir).await {
                            Ok(members) => members.into_iter().map(|m| m.name).collect(),
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    for name in children.iter().filter(|n| n.contains(&guid)) {
                        let _ = delete_own(&client, &join(&dir, name)).await;
                    }
                });
            }
        }
    }
}

/// Deletes one of our own nodes: retried on `ConnectionLoss`; `NoNode` and an ended
/// session are success (it is gone either way).
pub(crate) async fn delete_own(client: &Client, path: &str) -> Result<()> {
    let deleted = retry(client, "deleting our node", || {
        let delete = client.delete(path, None);
        async move {
            match delete.await {
                Ok(()) | Err(zk_client::Error::NoNode { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
    })
    .await;
    match deleted {
        Err(e) if e.is_expired() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(sequence_of("_c_ab-lock-0000000042"), Some(42));
        assert_eq!(sequence_of("x"), None);
        assert_eq!(
            strip_protected("_c_0123-read-0000000001"),
            "read-0000000001"
        );
        assert_eq!(strip_protected("lock-0000000001"), "lock-0000000001");
        let m = Member {
            name: "_c_ff-write-0000000007".into(),
            seq: 7,
        };
        assert!(m.has_prefix("write-"));
        assert!(!m.has_prefix("read-"));
        assert_eq!(guid().len(), 32);
        assert_eq!(guid_of("_c_0123-read-0000000001"), Some("0123"));
        assert_eq!(guid_of("lock-0000000001"), None);
    }
}
