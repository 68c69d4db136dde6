//! [`ClientSource`]: where a long-lived recipe gets its client, and a new one after the
//! session expired.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Mutex;
use zk_client::{Client, ClientBuilder, SessionState};

use crate::error::{Error, Result};

/// The client a long-lived recipe (service registry, service cache, config watch) works
/// with.
///
/// A `zk_client::Client` holds one session, and an expired session is terminal. Made
/// from a [`Client`], the source hands out that client and, once its session is gone,
/// [`Error::Expired`] (or [`Error::Closed`]): the recipe reports it and stops. Made from
/// a [`ClientBuilder`], the source connects with it lazily and again after every expiry,
/// so the recipe carries on with a new session (re-registering, re-watching). Do not set
/// `ClientBuilder::session` on that builder: it would try to reattach the dead session.
///
/// Cheap to clone; clones share the current client.
#[derive(Clone)]
pub struct ClientSource {
    inner: Arc<Inner>,
}

struct Inner {
    builder: Option<ClientBuilder>,
    current: Mutex<Option<Client>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for ClientSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSource")
            .field("renews_sessions", &self.renews_sessions())
            .finish()
    }
}

impl From<Client> for ClientSource {
    fn from(client: Client) -> Self {
        ClientSource {
            inner: Arc::new(Inner {
                builder: None,
                current: Mutex::new(Some(client)),
                closed: AtomicBool::new(false),
            }),
        }
    }
}

impl From<ClientBuilder> for ClientSource {
    fn from(builder: ClientBuilder) -> Self {
        ClientSource {
            inner: Arc::new(Inner {
                builder: Some(builder),
                current: Mutex::new(None),
                closed: AtomicBool::new(false),
            }),
        }
    }
}

impl ClientSource {
    /// True when the source makes a new session after an expiry (built from a builder).
    pub fn renews_sessions(&self) -> bool {
        self.inner.builder.is_some()
    }

    /// A client whose session is not known to be gone: the current one, or (for a
    /// builder source) a newly connected one if the current session expired.
    ///
    /// Errors: [`Error::Expired`] / [`Error::Closed`] for a client source whose session
    /// is gone (and for a builder source that was closed with [`ClientSource::close`]);
    /// a client error if connecting failed (the caller may retry).
    pub async fn client(&self) -> Result<Client> {
        let mut current = self.inner.current.lock().await;
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        if let Some(c) = current.as_ref() {
            match c.current_state() {
                SessionState::Connected | SessionState::Disconnected => return Ok(c.clone()),
                SessionState::Closed => return Err(Error::Closed),
                SessionState::Expired => {}
            }
        }
        let Some(builder) = &self.inner.builder else {
            return Err(Error::Expired {
                during: "waiting for the session",
            });
        };
        let client = builder.clone().connect().await?;
        tracing::debug!(
            session = client.session_id(),
            "recipe session (re)connected"
        );
        *current = Some(client.clone());
        Ok(client)
    }

    /// Closes the current session if this source made it (built from a builder); later
    /// [`ClientSource::client`] calls fail with [`Error::Closed`]. A source made from a
    /// caller's `Client` leaves that client alone.
    pub async fn close(&self) {
        if self.inner.builder.is_none() {
            return;
        }
        let current = self.inner.current.lock().await;
        self.inner.closed.store(true, Ordering::SeqCst);
        if let Some(c) = current.as_ref() {
            let _ = c.close().await;
        }
    }
}
