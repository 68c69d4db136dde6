//! Plain value types of the API: [`Stat`], create modes and options, session states,
//! watch events.

use std::time::Duration;

/// The metadata of a znode: Apache ZooKeeper's `Stat`, same fields and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stat {
    /// The zxid of the transaction that created the node.
    pub czxid: i64,
    /// The zxid of the last transaction that modified the node's data.
    pub mzxid: i64,
    /// Creation time, milliseconds since the epoch (stamped by the leader).
    pub ctime: i64,
    /// Last data modification time, milliseconds since the epoch.
    pub mtime: i64,
    /// Number of changes to the data (the version `set_data`/`delete` check against).
    pub version: i32,
    /// Number of changes to the children.
    pub cversion: i32,
    /// Number of changes to the ACL.
    pub aversion: i32,
    /// Owning session id for an ephemeral node, 0 otherwise.
    pub ephemeral_owner: i64,
    /// Length of the data in bytes.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// The zxid of the last change to the children.
    pub pzxid: i64,
}

/// How a node is created (ZooKeeper's `CreateMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CreateMode {
    /// Lives until deleted.
    #[default]
    Persistent,
    /// Deleted when the creating session ends.
    Ephemeral,
    /// Persistent, with a monotonically increasing 10-digit suffix appended to the name.
    PersistentSequential,
    /// Ephemeral, with a sequential suffix.
    EphemeralSequential,
    /// Deleted by the server some time after its last child is gone.
    Container,
    /// Persistent, deleted once childless and unmodified for the TTL ([`CreateOptions::ttl`]).
    PersistentWithTtl,
    /// Persistent sequential with a TTL.
    PersistentSequentialWithTtl,
}

impl CreateMode {
    /// True for the modes that append a sequence number to the name.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// True for the modes whose node goes with the session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// True for the modes that need a TTL.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// The same mode with or without the sequential flag. Container has no
    /// sequential form and stays as it is.
    pub fn with_sequential(self, sequential: bool) -> CreateMode {
        use CreateMode::*;
        match (self, sequential) {
            (Persistent | PersistentSequential, true) => PersistentSequential,
            (Persistent | PersistentSequential, false) => Persistent,
            (Ephemeral | EphemeralSequential, true) => EphemeralSequential,
            (Ephemeral | EphemeralSequential, false) => Ephemeral,
            (PersistentWithTtl | PersistentSequentialWithTtl, true) => PersistentSequentialWithTtl,
            (PersistentWithTtl | PersistentSequentialWithTtl, false) => PersistentWithTtl,
            (Container, _) => Container,
        }
    }
}

/// Options of a create: the mode and, for the TTL modes, the TTL.
///
/// ```
/// use std::time::Duration;
/// use zk_client::{CreateMode, CreateOptions};
/// let o = CreateOptions::persistent().sequential(true).with_ttl(Duration::from_secs(30));
/// assert_eq!(o.mode, CreateMode::PersistentSequentialWithTtl);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CreateOptions {
    /// The create mode.
    pub mode: CreateMode,
    /// The TTL; required by (and only allowed with) the `*WithTtl` modes.
    pub ttl: Option<Duration>,
    /// The new node's ACL; empty (the default) means [`Acl::open_unsafe`]
    /// (`world:anyone`, every permission).
    pub acl: Vec<Acl>,
}

impl CreateOptions {
    /// Options with the given mode and no TTL.
    pub fn new(mode: CreateMode) -> Self {
        CreateOptions {
            mode,
            ttl: None,
            acl: Vec::new(),
        }
    }

    /// [`CreateMode::Persistent`].
    pub fn persistent() -> Self {
        Self::new(CreateMode::Persistent)
    }

    /// [`CreateMode::Ephemeral`].
    pub fn ephemeral() -> Self {
        Self::new(CreateMode::Ephemeral)
    }

    /// [`CreateMode::Container`].
    pub fn container() -> Self {
        Self::new(CreateMode::Container)
    }

    /// Turns the sequential flag of the mode on or off (see [`CreateMode::with_sequential`]).
    pub fn sequential(mut self, sequential: bool) -> Self {
        self.mode = self.mode.with_sequential(sequential);
        self
    }

    /// Sets a TTL; a persistent mode becomes its `*WithTtl` form.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self.mode = match self.mode {
            CreateMode::Persistent => CreateMode::PersistentWithTtl,
            CreateMode::PersistentSequential => CreateMode::PersistentSequentialWithTtl,
            other => other,
        };
        self
    }

    /// Sets the new node's ACL.
    pub fn with_acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = acl;
        self
    }

    /// Checks mode and TTL agree; the message says why not.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        match (self.mode.is_ttl(), self.ttl) {
            (true, None) => Err("a *WithTtl create mode needs a ttl"),
            (true, Some(t)) if t.is_zero() => Err("ttl must be positive"),
            (false, Some(_)) => Err("a ttl is only allowed with the *WithTtl create modes"),
            _ => Ok(()),
        }
    }
}

/// The state of a session, as reported by [`crate::Client::state`] and session events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Attached to a server; requests flow.
    Connected,
    /// The connection broke; the client is reattaching. Requests fail with
    /// `ConnectionLoss`; watches are kept and re-armed on reconnect.
    Disconnected,
    /// The session is gone (server said so, or it surely timed out). Terminal.
    Expired,
    /// The session was closed by [`crate::Client::close`] (or the last clone dropped). Terminal.
    Closed,
}

impl SessionState {
    /// True for [`SessionState::Expired`] and [`SessionState::Closed`]: nothing follows.
    pub fn is_terminal(self) -> bool {
        matches!(self, SessionState::Expired | SessionState::Closed)
    }
}

/// What a [`WatchedEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The node was created.
    NodeCreated,
    /// The node was deleted.
    NodeDeleted,
    /// The node's data changed.
    NodeDataChanged,
    /// A child was created or deleted.
    NodeChildrenChanged,
    /// A data/exists watch was removed (by `remove_watches`).
    DataWatchRemoved,
    /// A child watch was removed.
    ChildWatchRemoved,
    /// A persistent watch was removed.
    PersistentWatchRemoved,
    /// A session-state notification; [`WatchedEvent::state`] says which.
    Session,
}

/// A watch notification.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// [`SessionState::Connected`] for node events; the new state for session events.
    pub state: SessionState,
    /// The node's path (chroot stripped); empty for session events.
    pub path: String,
    /// The zxid of the transaction that caused the event; -1 for session events.
    pub zxid: i64,
}

impl WatchedEvent {
    /// A session-state event.
    pub(crate) fn session(state: SessionState) -> Self {
        WatchedEvent {
            event_type: EventType::Session,
            state,
            path: String::new(),
            zxid: -1,
        }
    }
}

/// Which watches [`crate::Client::remove_watches`] removes (ZooKeeper's `WatcherType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherType {
    /// Child watches.
    Children,
    /// Data and exists watches.
    Data,
    /// All watches of the path, persistent ones included.
    Any,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_options_compose() {
        assert_eq!(
            CreateOptions::ephemeral().sequential(true).mode,
            CreateMode::EphemeralSequential
        );
        assert_eq!(
            CreateOptions::container().sequential(true).mode,
            CreateMode::Container
        );
        let ttl = CreateOptions::persistent().with_ttl(Duration::from_secs(1));
        assert_eq!(ttl.mode, CreateMode::PersistentWithTtl);
        assert_eq!(
            ttl.clone().sequential(true).mode,
            CreateMode::PersistentSequentialWithTtl
        );
        assert!(ttl.check().is_ok());
        assert!(CreateOptions::new(CreateMode::PersistentWithTtl)
            .check()
            .is_err());
        assert!(CreateOptions::ephemeral()
            .with_ttl(Duration::from_secs(1))
            .check()
            .is_err());
        assert!(CreateOptions::persistent()
            .with_ttl(Duration::ZERO)
            .check()
            .is_err());
        assert!(CreateMode::EphemeralSequential.is_ephemeral());
        assert!(CreateMode::EphemeralSequential.is_sequential());
    }
}

/// ZooKeeper's permission bits (`ZooDefs.Perms`); combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub i32);

impl Perms {
    pub const READ: Perms = Perms(1);
    pub const WRITE: Perms = Perms(1 << 1);
    pub const CREATE: Perms = Perms(1 << 2);
    pub const DELETE: Perms = Perms(1 << 3);
    pub const ADMIN: Perms = Perms(1 << 4);
    pub const ALL: Perms = Perms(31);

    /// True if every bit of `other` is set.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

/// One ACL entry: `perms` for the identities matching `scheme:id`. Schemes: `world`
/// (`anyone`), `auth` (the creator's authenticated identities, expanded by the server),
/// `digest` (`user:base64(sha1(user:password))`, see [`Acl::digest`]), `ip` (an address
/// or CIDR).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Acl {
    pub perms: Perms,
    pub scheme: String,
    pub id: String,
}

impl Acl {
    /// An entry.
    pub fn new(perms: Perms, scheme: impl Into<String>, id: impl Into<String>) -> Acl {
        Acl {
            perms,
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// ZooKeeper's `OPEN_ACL_UNSAFE`: `world:anyone` may do everything.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "world", "anyone")]
    }

    /// ZooKeeper's `CREATOR_ALL_ACL`: every permission for the creator's authenticated
    /// identities (needs an [`crate::Client::add_auth`] first, else `InvalidACL`).
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "auth", "")]
    }

    /// ZooKeeper's `READ_ACL_UNSAFE`: `world:anyone` may read.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, "world", "anyone")]
    }

    /// A `digest` entry for `user` with `password`, hashed as ZooKeeper does.
    pub fn digest(perms: Perms, user: &str, password: &str) -> Acl {
        Acl::new(perms, "digest", digest_id(user, password))
    }

    /// Parses zkCli's `scheme:id:perms` (perms letters from `rwcda`), e.g.
    /// `world:anyone:r`, `digest:bob:HASH=:cdrwa`, `ip:10.0.0.0/8:rw`.
    pub fn parse(s: &str) -> Option<Acl> {
        let (rest, letters) = s.rsplit_once(':')?;
        let (scheme, id) = rest.split_once(':')?;
        let mut perms = Perms(0);
        for c in letters.chars() {
            perms = perms
                | match c {
                    'r' => Perms::READ,
                    'w' => Perms::WRITE,
                    'c' => Perms::CREATE,
                    'd' => Perms::DELETE,
                    'a' => Perms::ADMIN,
                    _ => return None,
                };
        }
        Some(Acl::new(perms, scheme, id))
    }
}

impl std::fmt::Display for Acl {
    /// zkCli's form: `scheme:id:cdrwa`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut letters = String::new();
        for (p, c) in [
            (Perms::CREATE, 'c'),
            (Perms::DELETE, 'd'),
            (Perms::READ, 'r'),
            (Perms::WRITE, 'w'),
            (Perms::ADMIN, 'a'),
        ] {
            if self.perms.contains(p) {
                letters.push(c);
            }
        }
        write!(f, "{}:{}:{}", self.scheme, self.id, letters)
    }
}

/// ZooKeeper's digest id: `user:base64(sha1("user:password"))`.
pub fn digest_id(user: &str, password: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}
