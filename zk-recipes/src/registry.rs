//! Service registry: instances [`Registry::register`] themselves as ephemeral nodes
//! `/services/{service}/{instance_id}` holding a JSON payload (address, port, metadata);
//! clients [`Registry::discover`] a service and get a [`ServiceCache`] kept current by a
//! watch, with [`ServiceCache::instances`], [`ServiceCache::pick`] (random or
//! round-robin) and a stream of [`ServiceChange`]s.
//!
//! Modelled on Curator's `ServiceDiscovery` / `ServiceCache`. An instance is alive
//! exactly as long as the session that registered it: when the process dies or its
//! session ends, the server deletes the node and every cache drops the instance.
//!
//! ```no_run
//! # async fn f() -> zk_recipes::Result<()> {
//! use zk_client::Client;
//! use zk_recipes::{Pick, Registry, ServiceInstance};
//!
//! let builder = Client::builder().servers("127.0.0.1:2181");
//! let registry = Registry::<serde_json::Value>::new(builder);
//! registry
//!     .register("api", ServiceInstance::new("api-1", "10.0.0.5", 8080, serde_json::json!({"zone": "a"})))
//!     .await?;
//! let cache = registry.discover("api").await?;
//! if let Some(instance) = cache.pick(Pick::RoundRobin) {
//!     println!("call {}:{}", instance.address, instance.port);
//! }
//! # Ok(()) }
//! ```
//!
//! # Connection loss, disconnection, expiry
//! - Registration writes are idempotent (create, or update our own node) and retried
//!   across `ConnectionLoss`.
//! - Disconnected: registrations stay (the session lives on the servers for its
//!   timeout); caches keep their last list. On every reconnect the registry re-checks
//!   its nodes and each cache re-reads the service.
//! - Expiry: the registration nodes are gone. From a [`ClientSource`] built on a
//!   `ClientBuilder`, the registry opens a new session and registers everything again,
//!   and caches re-watch and re-read. From a plain `Client`, registrations are lost (calls
//!   fail with [`Error::Expired`]) and caches stop, keeping their last list.
//! - Registering an id that another live session holds takes it over (the old node is
//!   deleted and created again under this session), as Curator does.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};
use zk_client::{
    Client, CreateOptions, Error as ZkError, EventType, ReadOp, ReadResult, SessionState,
};

use crate::error::{Error, Result};
use crate::internal::b_client_source::ClientSource;
use crate::internal::b_paths::{ensure_path, join};
use crate::internal::b_retry::{connected, pause_then_reconnected, retrying};

/// The default root of the registry.
pub const DEFAULT_BASE: &str = "/services";

/// One instance of a service: what its registration node holds (as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance<M = serde_json::Value> {
    /// Unique within the service; the node's name (no `/`).
    pub id: String,
    /// Where to reach it (host name or IP).
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Anything else the service wants to publish (zone, version, weight, ...).
    pub metadata: M,
}

impl<M> ServiceInstance<M> {
    /// An instance description.
    pub fn new(id: impl Into<String>, address: impl Into<String>, port: u16, metadata: M) -> Self {
        ServiceInstance {
            id: id.into(),
            address: address.into(),
            port,
            metadata,
        }
    }
}

/// How [`ServiceCache::pick`] chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Uniformly at random.
    Random,
    /// In turn, in id order (one counter per cache).
    RoundRobin,
}

/// A change seen by a [`ServiceCache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceChange<M> {
    /// A new instance.
    Added(ServiceInstance<M>),
    /// An instance re-registered with a different payload (the new one).
    Updated(ServiceInstance<M>),
    /// An instance went away (the last payload seen).
    Removed(ServiceInstance<M>),
}

/// Aborts a background task when dropped.
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Registers instances and discovers services. See the module docs.
pub struct Registry<M = serde_json::Value> {
    inner: Arc<Inner<M>>,
}

impl<M> Clone for Registry<M> {
    fn clone(&self) -> Self {
        Registry {
            inner: self.inner.clone(),
        }
    }
}

impl<M> std::fmt::Debug for Registry<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.inner.base)
            .finish()
    }
}

struct Inner<M> {
    source: ClientSource,
    base: String,
    /// What this registry keeps registered: node path -> payload. Locked across writes,
    /// so writes of one node never overtake each other.
    registered: Mutex<BTreeMap<String, Bytes>>,
    /// The task that re-registers after reconnects and new sessions.
    keeper: std::sync::Mutex<Option<TaskGuard>>,
    _type: std::marker::PhantomData<fn(M) -> M>,
}

impl<M> Registry<M>
where
    M: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A registry under [`DEFAULT_BASE`] (`/services`). `source` is a `Client` or a
    /// `ClientBuilder` (see [`ClientSource`]; only the latter re-registers after expiry).
    pub fn new(source: impl Into<ClientSource>) -> Self {
        Self::with_base(source, DEFAULT_BASE)
    }

    /// A registry whose services live under `base` instead of `/services`.
    pub fn with_base(source: impl Into<ClientSource>, base: impl Into<String>) -> Self {
        Registry {
            inner: Arc::new(Inner {
                source: source.into(),
                base: base.into(),
                registered: Mutex::new(BTreeMap::new()),
                keeper: std::sync::Mutex::new(None),
                _type: std::marker::PhantomData,
            }),
        }
    }

    /// The client source the registry writes with (its current session, e.g. for
    /// diagnostics).
    pub fn source(&self) -> &ClientSource {
        &self.inner.source
    }

    fn service_path(&self, service: &str) -> Result<String> {
        check_name("service", service)?;
        Ok(join(&self.inner.base, service))
    }

    /// Registers `instance` under `service`, or updates its payload if this id is
    /// registered already. It stays registered (again after every new session, for a
    /// builder source) until [`Registry::unregister`], [`Registry::close`] or the end of
    /// the process.
    ///
    /// Errors: [`Error::InvalidArgument`] for an empty name or one with `/`;
    /// [`Error::Expired`] / [`Error::Closed`] for a `Client` source whose session is gone.
    pub async fn register(&self, service: &str, instance: ServiceInstance<M>) -> Result<()> {
        check_name("instance id", &instance.id)?;
        let path = join(&self.service_path(service)?, &instance.id);
        let data = Bytes::from(serde_json::to_vec(&instance).map_err(|e| Error::Encode {
            path: path.clone(),
            message: e.to_string(),
        })?);
        self.start_keeper();
        let mut registered = self.inner.registered.lock().await;
        registered.insert(path.clone(), data.clone());
        let client = self.inner.source.client().await?;
        write(&client, &path, &data).await
    }

    /// Removes a registration (deletes the node if this session owns it). Unknown ids
    /// are fine.
    pub async fn unregister(&self, service: &str, id: &str) -> Result<()> {
        let path = join(&self.service_path(service)?, id);
        let mut registered = self.inner.registered.lock().await;
        registered.remove(&path);
        let client = self.inner.source.client().await?;
        delete_own(&client, &path).await
    }

    /// The instances of `service`, followed live. The cache shares this registry's
    /// client source.
    pub async fn discover(&self, service: &str) -> Result<ServiceCache<M>> {
        let path = self.service_path(service)?;
        let (tx, mut rx) = watch::channel(CacheState {
            entries: Arc::new(Vec::new()),
            loaded: false,
            ended: None,
        });
        let task = tokio::spawn(follow(self.inner.source.clone(), path.clone(), tx));
        let _ = rx.wait_for(|s| s.loaded || s.ended.is_some()).await;
        Ok(ServiceCache {
            path,
            rx,
            next: Arc::new(AtomicUsize::new(0)),
            _task: Arc::new(TaskGuard(task)),
        })
    }

    /// Unregisters everything this registry registered, stops re-registering, and closes
    /// the session if the registry made it (builder source).
    pub async fn close(&self) -> Result<()> {
        if let Ok(mut keeper) = self.inner.keeper.lock() {
            keeper.take();
        }
        let paths: Vec<String> = {
            let mut registered = self.inner.registered.lock().await;
            std::mem::take(&mut *registered).into_keys().collect()
        };
        if let Ok(client) = self.inner.source.client().await {
            for path in paths {
                delete_own(&client, &path).await?;
            }
        }
        self.inner.source.close().await;
        Ok(())
    }

    /// Starts the re-registering task once.
    fn start_keeper(&self) {
        let Ok(mut keeper) = self.inner.keeper.lock() else {
            return;
        };
        if keeper.is_none() {
            let weak = Arc::downgrade(&self.inner);
            *keeper = Some(TaskGuard(tokio::spawn(keep_registered(weak))));
        }
    }
}

/// Re-writes every registration whenever the session (re)connects, and moves to a new
/// session after an expiry (builder sources). Ends with the registry.
async fn keep_registered<M: Send + Sync + 'static>(weak: Weak<Inner<M>>) {
    loop {
        let Some(source) = weak.upgrade().map(|i| i.source.clone()) else {
            return;
        };
        let client = match source.client().await {
            Ok(c) => c,
            Err(e) if e.is_session_gone() => return,
            Err(e) => {
                tracing::warn!(error = %e, "registry cannot connect; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut states = client.state();
        while let Some(state) = states.next().await {
            if state != SessionState::Connected {
                continue;
            }
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let registered = inner.registered.lock().await;
            for (path, data) in registered.iter() {
                if let Err(e) = write(&client, path, data).await {
                    tracing::warn!(%path, error = %e, "re-registration failed");
                }
            }
        }
    }
}

/// Makes `path` an ephemeral node of this session holding `data`: creates it, updates
/// our own node, or replaces another session's.
async fn write(client: &Client, path: &str, data: &Bytes) -> Result<()> {
    let service = crate::internal::b_paths::parent(path).to_string();
    for _ in 0..20 {
        ensure_path(client, &service, CreateOptions::container()).await?;
        match client
            .create(path, data.clone(), &CreateOptions::ephemeral())
            .await
        {
            Ok(_) => return Ok(()),
            // The container was reaped in between: make it again.
            Err(ZkError::NoNode { .. }) => continue,
            Err(e) if e.is_retryable() => {
                pause_then_reconnected(client).await?;
                continue;
            }
            Err(ZkError::NodeExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let (current, stat) = match retrying(client, || client.get_data(path)).await {
            Ok(found) => found,
            Err(Error::Client(ZkError::NoNode { .. })) => continue,
            Err(e) => return Err(e),
        };
        if stat.ephemeral_owner == client.session_id() {
            if current == *data {
                return Ok(());
            }
            match retrying(client, || client.set_data(path, data.clone(), None)).await {
                Ok(_) => return Ok(()),
                Err(Error::Client(ZkError::NoNode { .. })) => continue,
                Err(e) => return Err(e),
            }
        }
        // Another (perhaps our expired) session's node: replace it.
        match retrying(client, || client.delete(path, Some(stat.version))).await {
            Ok(())
            | Err(Error::Client(ZkError::NoNode { .. }))
            | Err(Error::Client(ZkError::BadVersion { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Client(ZkError::NodeExists {
        op: "register",
        path: path.to_string(),
    }))
}

/// Deletes `path` if this session owns it.
async fn delete_own(client: &Client, path: &str) -> Result<()> {
    let stat = retrying(client, || client.exists(path)).await?;
    match stat {
        Some(s) if s.ephemeral_owner == client.session_id() => {
            match retrying(client, || client.delete(path, None)).await {
                Ok(()) | Err(Error::Client(ZkError::NoNode { .. })) => Ok(()),
                Err(e) => Err(e),
            }
        }
        _ => Ok(()),
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::InvalidArgument(format!(
            "{what} {name:?}: must be non-empty and without '/'"
        )));
    }
    Ok(())
}

/// One instance as cached, with the zxid of its last write (to tell updates apart).
#[derive(Debug)]
struct Entry<M> {
    instance: ServiceInstance<M>,
    mzxid: i64,
}

struct CacheState<M> {
    /// Sorted by id.
    entries: Arc<Vec<Entry<M>>>,
    /// The first read is done.
    loaded: bool,
    /// Why the cache stopped following, if it did.
    ended: Option<Error>,
}

/// The live instances of one service. See the module docs. Cheap to clone; the watch
/// stops when the last clone is dropped.
pub struct ServiceCache<M = serde_json::Value> {
    path: String,
    rx: watch::Receiver<CacheState<M>>,
    next: Arc<AtomicUsize>,
    _task: Arc<TaskGuard>,
}

impl<M> Clone for ServiceCache<M> {
    fn clone(&self) -> Self {
        ServiceCache {
            path: self.path.clone(),
            rx: self.rx.clone(),
            next: self.next.clone(),
            _task: self._task.clone(),
        }
    }
}

impl<M> std::fmt::Debug for ServiceCache<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCache")
            .field("path", &self.path)
            .finish()
    }
}

impl<M: Clone + Send + Sync + 'static> ServiceCache<M> {
    /// The instances now, sorted by id.
    pub fn instances(&self) -> Vec<ServiceInstance<M>> {
        self.rx
            .borrow()
            .entries
            .iter()
            .map(|e| e.instance.clone())
            .collect()
    }

    /// One instance chosen by `how`, or `None` if there is none.
    pub fn pick(&self, how: Pick) -> Option<ServiceInstance<M>> {
        let state = self.rx.borrow();
        let n = state.entries.len();
        if n == 0 {
            return None;
        }
        let i = match how {
            Pick::Random => zk_client::random::with_rng(|r| rand::Rng::random_range(r, 0..n)),
            Pick::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        state.entries.get(i).map(|e| e.instance.clone())
    }

    /// Why the cache stopped following the service (`None` while it follows): the
    /// session of a `Client` source ended. The last list stays available.
    pub fn stopped(&self) -> Option<Error> {
        self.rx.borrow().ended.clone()
    }

    /// Waits until the instances satisfy `f` (checked now, then on every change).
    ///
    /// Errors: the reason the cache stopped, if it stops first.
    pub async fn wait_for(&self, mut f: impl FnMut(&[ServiceInstance<M>]) -> bool) -> Result<()> {
        let mut rx = self.rx.clone();
        let mut ok = false;
        let result = rx
            .wait_for(|s| {
                let list: Vec<ServiceInstance<M>> =
                    s.entries.iter().map(|e| e.instance.clone()).collect();
                ok = f(&list);
                ok || s.ended.is_some()
            })
            .await;
        match result {
            _ if ok => Ok(()),
            Ok(s) => Err(s.ended.clone().unwrap_or(Error::Closed)),
            Err(_) => Err(Error::Closed),
        }
    }

    /// The changes after this call, one item per added, updated or removed instance.
    /// Changes are computed between the snapshots this stream sees: a quick add and
    /// remove between two polls may show as nothing. Ends when the cache stops.
    pub fn changes(&self) -> BoxStream<'static, ServiceChange<M>> {
        let mut rx = self.rx.clone();
        let seen = rx.borrow_and_update().entries.clone();
        futures::stream::unfold((rx, seen), |(mut rx, seen)| async move {
            if rx.borrow().ended.is_some() {
                return None;
            }
            rx.changed().await.ok()?;
            let now = rx.borrow_and_update().entries.clone();
            let changes = diff(&seen, &now);
            Some((futures::stream::iter(changes), (rx, now)))
        })
        .flatten()
        .boxed()
    }
}

/// The changes from `old` to `new` (both sorted by id).
fn diff<M: Clone>(old: &[Entry<M>], new: &[Entry<M>]) -> Vec<ServiceChange<M>> {
    let before: HashMap<&str, &Entry<M>> =
        old.iter().map(|e| (e.instance.id.as_str(), e)).collect();
    let after: HashMap<&str, &Entry<M>> = new.iter().map(|e| (e.instance.id.as_str(), e)).collect();
    let mut changes = Vec::new();
    for e in old {
        if !after.contains_key(e.instance.id.as_str()) {
            changes.push(ServiceChange::Removed(e.instance.clone()));
        }
    }
    for e in new {
        match before.get(e.instance.id.as_str()) {
            None => changes.push(ServiceChange::Added(e.instance.clone())),
            Some(b) if b.mzxid != e.mzxid => {
                changes.push(ServiceChange::Updated(e.instance.clone()))
            }
            Some(_) => {}
        }
    }
    changes
}

/// The cache's task: (re)connect, watch the service recursively, re-read on events and
/// reconnects.
async fn follow<M: DeserializeOwned>(
    source: ClientSource,
    path: String,
    tx: watch::Sender<CacheState<M>>,
) {
    loop {
        let client = match source.client().await {
            Ok(c) => c,
            Err(e) if e.is_session_gone() => {
                tx.send_modify(|s| s.ended = Some(e));
                return;
            }
            Err(e) => {
                tracing::warn!(%path, error = %e, "service cache cannot connect; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut events = match retrying(&client, || client.watch(&path, true)).await {
            Ok(w) => w,
            Err(e) if e.is_session_gone() => continue,
            Err(e) => {
                tracing::warn!(%path, error = %e, "service cache cannot watch; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut reread = true;
        loop {
            if reread {
                match read_service(&client, &path).await {
                    Ok(entries) => tx.send_if_modified(|s| {
                        let same = s.loaded
                            && s.entries.len() == entries.len()
                            && s.entries
                                .iter()
                                .zip(&entries)
                                .all(|(a, b)| a.instance.id == b.instance.id && a.mzxid == b.mzxid);
                        s.loaded = true;
                        if !same {
                            s.entries = Arc::new(entries);
                        }
                        !same
                    }),
                    Err(e) if e.is_session_gone() => break,
                    Err(e) => {
                        tracing::warn!(%path, error = %e, "service cache read failed");
                        let _ = connected(&client).await;
                        continue;
                    }
                };
            }
            reread = false;
            let mut event = events.next().await;
            let mut session_over = false;
            loop {
                match event {
                    None => session_over = true,
                    Some(ev) => match (ev.event_type, ev.state) {
                        (EventType::Session, SessionState::Connected) => reread = true,
                        (EventType::Session, SessionState::Disconnected) => {}
                        (EventType::Session, _) | (EventType::PersistentWatchRemoved, _) => {
                            session_over = true
                        }
                        _ => reread = true,
                    },
                }
                match events.next().now_or_never() {
                    Some(next) if !session_over => event = next,
                    _ => break,
                }
            }
            if session_over {
                break;
            }
        }
    }
}

/// Reads every instance of the service at `path` (none if it does not exist).
async fn read_service<M: DeserializeOwned>(client: &Client, path: &str) -> Result<Vec<Entry<M>>> {
    let children = match retrying(client, || client.get_children(path)).await {
        Ok((children, _)) => children,
        Err(Error::Client(ZkError::NoNode { .. })) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    if children.is_empty() {
        return Ok(Vec::new());
    }
    let ops: Vec<ReadOp> = children
        .iter()
        .map(|c| ReadOp::GetData(join(path, c)))
        .collect();
    let results = retrying(client, || client.multi_read(ops.clone())).await?;
    let mut entries = Vec::with_capacity(results.len());
    for (name, result) in children.iter().zip(results) {
        let ReadResult::Data { data, stat } = result else {
            continue; // gone since the listing
        };
        match serde_json::from_slice::<ServiceInstance<M>>(&data) {
            Ok(mut instance) => {
                instance.id = name.clone();
                entries.push(Entry {
                    instance,
                    mzxid: stat.mzxid,
                });
            }
            Err(e) => {
                tracing::warn!(%path, instance = %name, error = %e, "undecodable instance skipped")
            }
        }
    }
    entries.sort_by(|a, b| a.instance.id.cmp(&b.instance.id));
    Ok(entries)
}
