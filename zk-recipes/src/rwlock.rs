//! A fair read-write lock (Curator's `InterProcessReadWriteLock`).
//!
//! Readers and writers queue in one sequence: a writer is granted when it is first; a
//! reader when no writer is ahead of it. A writer waits for its predecessor; a reader
//! for the last writer ahead of it, so no release wakes a herd. Requests are served in
//! order: a waiting writer holds back the readers that came after it (no writer
//! starvation). Same connection, session and cancellation rules as [`crate::Lock`].
//!
//! ```no_run
//! # async fn f(client: zk_client::Client) -> zk_recipes::Result<()> {
//! let rw = zk_recipes::RwLock::new(&client, "/locks/catalog")?;
//! let reading = rw.read().await?;
//! reading.release().await?;
//! let writing = rw.write().await?;
//! writing.release().await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use zk_client::{Client, Op, OpResult};

use crate::error::Result;
use crate::fencing::FencingToken;
use crate::internal::contend::{exclusive, Queue, Turn};
use crate::internal::held::{default_margin, Held};
use crate::internal::parents::check_path;
use crate::internal::sequence::{Member, Node};

const READ: &str = "read-";
const WRITE: &str = "write-";

/// Reader rule: granted unless a writer is ahead; then wait for the last such writer.
fn shared(members: &[Member], me: usize) -> Turn {
    match members
        .get(..me)
        .unwrap_or_default()
        .iter()
        .rev()
        .find(|m| m.has_prefix(WRITE))
    {
        None => Turn::Granted,
        Some(writer) => Turn::WaitFor(writer.name.clone()),
    }
}

/// A read-write lock at a path.
#[derive(Debug, Clone)]
pub struct RwLock {
    client: Client,
    dir: String,
    lease_margin: Option<Duration>,
}

impl RwLock {
    /// The lock at `path` (created on demand as a container).
    pub fn new(client: &Client, path: &str) -> Result<RwLock> {
        check_path(path)?;
        Ok(RwLock {
            client: client.clone(),
            dir: path.to_string(),
            lease_margin: None,
        })
    }

    /// How long before the session lease ends `lost()` fires (default: a tenth of the
    /// session timeout).
    pub fn lease_margin(mut self, margin: Duration) -> RwLock {
        self.lease_margin = Some(margin);
        self
    }

    fn queue(&self, write: bool) -> Queue<'_> {
        Queue {
            client: &self.client,
            dir: &self.dir,
            prefix: if write { WRITE } else { READ },
            data: Bytes::new(),
            lock_delay: None,
            rule: if write { exclusive } else { shared },
        }
    }

    fn held(&self, node: Node) -> Held {
        let margin = self
            .lease_margin
            .unwrap_or_else(|| default_margin(&self.client));
        Held::start(&self.client, node, margin, None)
    }

    /// Waits for a shared (read) hold.
    pub async fn read(&self) -> Result<ReadGuard> {
        let node = self
            .queue(false)
            .acquire(None, "acquiring a read lock")
            .await?;
        Ok(ReadGuard(self.held(node)))
    }

    /// Waits at most `limit` for a read hold; on timeout nothing is left behind.
    pub async fn read_timeout(&self, limit: Duration) -> Result<ReadGuard> {
        let node = self
            .queue(false)
            .acquire(Some(limit), "acquiring a read lock")
            .await?;
        Ok(ReadGuard(self.held(node)))
    }

    /// A read hold only if available now.
    pub async fn try_read(&self) -> Result<Option<ReadGuard>> {
        Ok(self
            .queue(false)
            .try_acquire()
            .await?
            .map(|n| ReadGuard(self.held(n))))
    }

    /// Waits for the exclusive (write) hold.
    pub async fn write(&self) -> Result<WriteGuard> {
        let node = self
            .queue(true)
            .acquire(None, "acquiring a write lock")
            .await?;
        Ok(WriteGuard(self.held(node)))
    }

    /// Waits at most `limit` for the write hold; on timeout nothing is left behind.
    pub async fn write_timeout(&self, limit: Duration) -> Result<WriteGuard> {
        let node = self
            .queue(true)
            .acquire(Some(limit), "acquiring a write lock")
            .await?;
        Ok(WriteGuard(self.held(node)))
    }

    /// The write hold only if available now.
    pub async fn try_write(&self) -> Result<Option<WriteGuard>> {
        Ok(self
            .queue(true)
            .try_acquire()
            .await?
            .map(|n| WriteGuard(self.held(n))))
    }
}

macro_rules! guard {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A ", $what, " hold; release it, or drop it to release in the background.")]
        #[derive(Debug)]
        pub struct $name(Held);

        impl $name {
            /// The fencing token (the creating zxid of this hold's node).
            pub fn fencing_token(&self) -> FencingToken {
                self.0.token()
            }

            /// The hold's node.
            pub fn path(&self) -> &str {
                self.0.path()
            }

            /// True once the hold can no longer be trusted.
            pub fn is_lost(&self) -> bool {
                self.0.is_lost()
            }

            /// Resolves once the hold can no longer be trusted (session ended, lease ran
            /// out while disconnected, node deleted).
            pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
                self.0.lost()
            }

            /// Runs `ops` atomically only while this hold is still held.
            pub async fn guarded(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
                self.0.guarded(ops).await
            }

            /// Releases the hold and waits for the server.
            pub async fn release(self) -> Result<()> {
                self.0.release().await
            }
        }
    };
}

guard!(ReadGuard, "read (shared)");
guard!(WriteGuard, "write (exclusive)");

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, seq: i64) -> Member {
        Member {
            name: format!("_c_0-{name}{seq:010}"),
            seq,
        }
    }

    #[test]
    fn readers_wait_only_for_writers_ahead() {
        let q = [m(READ, 1), m(WRITE, 2), m(READ, 3), m(READ, 4), m(WRITE, 5)];
        assert_eq!(shared(&q, 0), Turn::Granted);
        assert_eq!(shared(&q, 2), Turn::WaitFor(q[1].name.clone()));
        assert_eq!(shared(&q, 3), Turn::WaitFor(q[1].name.clone()));
        assert_eq!(exclusive(&q, 1), Turn::WaitFor(q[0].name.clone()));
        assert_eq!(exclusive(&q, 4), Turn::WaitFor(q[3].name.clone()));
        assert_eq!(exclusive(&q, 0), Turn::Granted);
    }
}
