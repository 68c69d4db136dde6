//! [`ClientBuilder`]: servers, chroot, timeouts, backoff, session reattach.

use std::time::Duration;

use crate::chroot::Chroot;
use crate::client::Client;
use crate::error::Result;
use crate::session::{self, hosts};

/// Configures and connects a [`Client`].
///
/// ```no_run
/// # async fn f() -> zk_client::Result<()> {
/// use std::time::Duration;
/// let client = zk_client::Client::builder()
///     .servers("127.0.0.1:2181,127.0.0.1:2182/app")
///     .session_timeout(Duration::from_secs(6))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    servers: String,
    chroot: Option<String>,
    session_timeout: Duration,
    connect_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    session: Option<(i64, Vec<u8>)>,
    shuffle: bool,
    tls: Option<crate::tls::TlsOptions>,
    auth: Vec<(String, Vec<u8>)>,
    default_acl: Vec<crate::types::Acl>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            servers: format!("127.0.0.1:{}", hosts::DEFAULT_PORT),
            chroot: None,
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            session: None,
            shuffle: false,
            tls: None,
            auth: Vec::new(),
            default_acl: Vec::new(),
        }
    }
}

impl ClientBuilder {
    /// A builder with the defaults: `127.0.0.1:2181`, session timeout 10 s, connect
    /// timeout 5 s, reconnect backoff 50 ms .. 1 s, servers tried in the given order.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connect string: `host:port` entries separated by commas (port 2181 if
    /// omitted; IPv6 as `[::1]:2181`), optionally followed by a chroot (`/app`).
    /// Errors in it are reported by [`ClientBuilder::connect`] (`BadArguments` or
    /// `InvalidPath`).
    pub fn servers(mut self, connect_string: &str) -> Self {
        self.servers = connect_string.to_string();
        self
    }

    /// The chroot: every path is relative to it. Overrides a chroot in the connect string.
    pub fn chroot(mut self, chroot: &str) -> Self {
        self.chroot = Some(chroot.to_string());
        self
    }

    /// The session timeout to ask for; the server clamps it (see
    /// [`Client::session_timeout`] for the negotiated value). Default 10 s.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Bound on connecting: the whole first connect (all servers), and each reconnect
    /// attempt. Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Delay between reconnect attempts: exponential from `min` to `max`, with jitter.
    /// The first attempt after a loss is immediate (to the next server).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Reattach an existing session (from [`Client::session_id`] and
    /// [`Client::session_password`]) instead of creating one. `connect` fails with
    /// `SessionExpired` if the session is gone.
    pub fn session(mut self, session_id: i64, password: impl Into<Vec<u8>>) -> Self {
        self.session = Some((session_id, password.into()));
        self
    }

    /// Shuffle the servers before use (spreads many clients over an ensemble, as
    /// ZooKeeper's clients do). Default: off, servers are tried in the given order.
    pub fn shuffle_servers(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Connect over TLS (the server's `--tls-cert`), optionally with a client
    /// certificate ([`crate::TlsOptions`]). Default: plaintext.
    pub fn tls(mut self, tls: crate::tls::TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Authenticate as soon as the session is up ([`Client::add_auth`], e.g.
    /// `("digest", b"user:password")`), before `connect` returns; repeatable. Like
    /// every `add_auth`, it is sent again after each reconnect.
    pub fn auth(mut self, scheme: &str, auth: impl Into<Vec<u8>>) -> Self {
        self.auth.push((scheme.to_string(), auth.into()));
        self
    }

    /// The ACL of every node this client creates without naming one (Curator's
    /// `ACLProvider`): recipes (`zk-recipes`) create their nodes with it. For example
    /// [`crate::Acl::creator_all`] with [`ClientBuilder::auth`] protects a lock's nodes
    /// from clients without the credentials. Default: none (the server's open ACL).
    pub fn default_acl(mut self, acl: Vec<crate::types::Acl>) -> Self {
        self.default_acl = acl;
        self
    }

    /// Connects: tries the servers in turn until one attaches the session, within the
    /// connect timeout.
    ///
    /// Errors: `BadArguments`/`InvalidPath` for a bad connect string or chroot;
    /// `AuthFailed` when an [`ClientBuilder::auth`] is refused;
    /// `Transport` or `Timeout` when no server attached in time; `SessionExpired` when
    /// reattaching a session that is gone.
    pub async fn connect(self) -> Result<Client> {
        let parsed = hosts::parse(&self.servers)?;
        let chroot = Chroot::new(self.chroot.as_deref().or(parsed.chroot.as_deref()))?;
        let config = session::Config {
            hosts: parsed.hosts,
            shuffle: self.shuffle,
            chroot: chroot.clone(),
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
            session: self.session,
            tls: self.tls.as_ref().map(crate::tls::TlsOptions::to_tonic),
        };
        let (commands, shared) = session::start(config).await?;
        let client = Client::new(commands, shared, chroot, self.default_acl);
        for (scheme, auth) in self.auth {
            client.add_auth(&scheme, auth).await?;
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[tokio::test]
    async fn bad_connect_strings_fail_before_connecting() {
        let e = ClientBuilder::new()
            .servers("")
            .connect()
            .await
            .expect_err("no servers");
        assert!(matches!(e, Error::BadArguments { .. }), "{e:?}");
        let e = ClientBuilder::new()
            .servers("h:1/bad/")
            .connect()
            .await
            .expect_err("bad chroot");
        assert!(matches!(e, Error::InvalidPath(_)), "{e:?}");
        let e = ClientBuilder::new()
            .servers("h:1")
            .chroot("nope")
            .connect()
            .await
            .expect_err("bad chroot");
        assert!(matches!(e, Error::InvalidPath(_)), "{e:?}");
    }

    #[tokio::test]
    async fn unreachable_servers_fail_within_the_connect_timeout() {
        // Port 1 on loopback: refused at once; retried until the timeout.
        let started = std::time::Instant::now();
        let e = ClientBuilder::new()
            .servers("127.0.0.1:1")
            .connect_timeout(Duration::from_millis(600))
            .connect()
            .await
            .expect_err("nothing listens");
        assert!(matches!(e, Error::Transport(_) | Error::Timeout), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
