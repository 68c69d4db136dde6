//! [`Client`]: the operations. Each call validates its path, queues its request for the
//! session task *at call time* and returns a future of the reply.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use zk_proto::pb::{self, request::Op as Req, response::Result as R};
use zk_proto::{path as zkpath, Code};

use crate::builder::ClientBuilder;
use crate::chroot::Chroot;
use crate::convert;
use crate::error::{Error, Result};
use crate::multi::{self, Op, OpResult, ReadOp, ReadResult};
use crate::session::{Command, Failure, Sender, Shared};
use crate::types::{Acl, CreateOptions, SessionState, Stat, WatcherType};
use crate::watch::registry::WatchRegistration;
use crate::watch::{OneshotWatcher, PersistentWatcher, StateStream};

/// A session with the service. Cheap to clone; clones share the session. Dropping the
/// last clone closes the session in the background (its ephemeral nodes go).
///
/// # Ordering and cancellation
///
/// The operations are plain `fn`s returning `impl Future + Send + 'static` (not
/// `async fn`): the request is validated and queued when the method is *called*, so
/// requests are sent, applied and answered in call order even if their futures are
/// polled in another order or spawned. Dropping a future does not cancel its request (it
/// was already queued and will take effect); the reply is discarded and the session is
/// unaffected. Awaiting them is all that is needed: `client.create(..).await`.
///
/// # Errors common to all operations
///
/// - `InvalidPath` — the path failed client-side validation; nothing was sent.
/// - `ConnectionLoss` — the connection broke before the reply (or was down when the call
///   was made); the request may or may not have been applied. The client reconnects by
///   itself.
/// - `SessionExpired` — the session is gone; make a new client.
/// - `Closed` — [`Client::close`] was called.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    commands: Sender,
    shared: Arc<Shared>,
    chroot: Chroot,
    /// ACL for creates that name none (empty: the server's default, open).
    default_acl: Vec<Acl>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Last clone gone: close the session (a no-op if already closed or expired).
        let _ = self.commands.send(Command::Close { reply: None });
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &format_args!("{:#x}", self.session_id()))
            .field("state", &self.current_state())
            .finish()
    }
}

/// A queued request (or one that failed before it could be queued).
pub(crate) struct Call {
    rx: std::result::Result<oneshot::Receiver<std::result::Result<pb::Response, Failure>>, Error>,
    shared: Arc<Shared>,
    op: &'static str,
    path: String,
}

impl Call {
    /// The response, whatever its code.
    async fn raw(self) -> Result<pb::Response> {
        let rx = self.rx?;
        match rx.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(failure)) => Err(failure.into_error(self.op, &self.path)),
            // The task ended without answering: it is closed or expired.
            Err(_) => Err(Failure::after(self.shared.state()).into_error(self.op, &self.path)),
        }
    }

    /// The response of a successful request; a non-OK code is an error.
    pub(crate) async fn ok(self) -> Result<pb::Response> {
        let (op, path) = (self.op, self.path.clone());
        let resp = self.raw().await?;
        match Code::from_i32(resp.err) {
            Code::Ok => Ok(resp),
            code => Err(Error::from_code(code, op, &path, &resp.message)),
        }
    }

    /// The result of a successful request, extracted by `f`; the wrong shape is an error.
    pub(crate) async fn map<T>(self, f: impl FnOnce(R) -> Option<T>) -> Result<T> {
        let (op, path) = (self.op, self.path.clone());
        let resp = self.ok().await?;
        resp.result
            .and_then(f)
            .ok_or_else(|| Error::unexpected(op, &path))
    }
}

/// The stat of an exists reply: `None` when the node is missing (absent stat or NoNode).
fn exists_result(resp: pb::Response, op: &'static str, path: &str) -> Result<Option<Stat>> {
    match Code::from_i32(resp.err) {
        Code::Ok => Ok(match resp.result {
            Some(R::Exists(e)) => e.stat.map(Stat::from),
            Some(R::Stat(s)) => s.stat.map(Stat::from),
            _ => None,
        }),
        Code::NoNode => Ok(None),
        code => Err(Error::from_code(code, op, path, &resp.message)),
    }
}

impl Client {
    pub(crate) fn new(
        commands: Sender,
        shared: Arc<Shared>,
        chroot: Chroot,
        default_acl: Vec<Acl>,
    ) -> Self {
        Client {
            inner: Arc::new(Inner {
                commands,
                shared,
                chroot,
                default_acl,
            }),
        }
    }

    /// `options` with the client's default ACL ([`crate::ClientBuilder::default_acl`])
    /// when they name none.
    fn effective<'a>(&self, options: &'a CreateOptions) -> std::borrow::Cow<'a, CreateOptions> {
        if options.acl.is_empty() && !self.inner.default_acl.is_empty() {
            std::borrow::Cow::Owned(options.clone().with_acl(self.inner.default_acl.clone()))
        } else {
            std::borrow::Cow::Borrowed(options)
        }
    }

    /// Connects to the servers of `connect_string` (`"127.0.0.1:2181,127.0.0.1:2182/app"`:
    /// hosts, optional chroot) with the default settings. See [`ClientBuilder`].
    pub async fn connect(connect_string: &str) -> Result<Client> {
        ClientBuilder::new().servers(connect_string).connect().await
    }

    /// A builder for the other settings (timeouts, backoff, session reattach).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Validates a client path and turns it into a server path.
    fn server_path(&self, path: &str, sequential: bool) -> Result<String> {
        zkpath::validate(path, sequential)?;
        Ok(self.inner.chroot.apply(path))
    }

    fn failed(&self, op: &'static str, path: &str, error: Error) -> Call {
        Call {
            rx: Err(error),
            shared: self.inner.shared.clone(),
            op,
            path: path.to_string(),
        }
    }

    /// Queues a request now.
    pub(crate) fn send(
        &self,
        op: &'static str,
        path: &str,
        request: Req,
        watch: Option<WatchRegistration>,
    ) -> Call {
        let (reply, rx) = oneshot::channel();
        let queued = self.inner.commands.send(Command::Request {
            op: request,
            watch,
            reply,
        });
        let rx = match queued {
            Ok(()) => Ok(rx),
            Err(_) => Err(Failure::after(self.inner.shared.state()).into_error(op, path)),
        };
        Call {
            rx,
            shared: self.inner.shared.clone(),
            op,
            path: path.to_string(),
        }
    }

    /// Validates `path`, builds the request from the server path and queues it.
    fn request(
        &self,
        op: &'static str,
        path: &str,
        build: impl FnOnce(String) -> (Req, Option<WatchRegistration>),
    ) -> Call {
        match self.server_path(path, false) {
            Ok(server_path) => {
                let (request, watch) = build(server_path);
                self.send(op, path, request, watch)
            }
            Err(e) => self.failed(op, path, e),
        }
    }

    /// Creates a node; returns its actual path (with the sequential suffix, chroot
    /// stripped) and its stat. A sequential create may end in `/` (`/q/` makes
    /// `/q/0000000003`).
    ///
    /// Errors: `NodeExists`; `NoNode` (no parent); `NoChildrenForEphemerals`;
    /// `BadArguments` (TTL missing, zero or not allowed for the mode).
    pub fn create(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        options: &CreateOptions,
    ) -> impl Future<Output = Result<(String, Stat)>> + Send + 'static {
        const OP: &str = "create";
        let data = data.into();
        let call = match (
            self.server_path(path, options.mode.is_sequential()),
            options.check(),
        ) {
            (Err(e), _) => self.failed(OP, path, e),
            (_, Err(why)) => self.failed(OP, path, Error::bad_arguments(OP, path, why)),
            (Ok(sp), Ok(())) => self.send(
                OP,
                path,
                Req::Create(convert::create_request(sp, data, &self.effective(options))),
                None,
            ),
        };
        let chroot = self.inner.chroot.clone();
        call.map(move |r| match r {
            R::Create(c) => Some((chroot.strip(&c.path), convert::stat(c.stat))),
            _ => None,
        })
    }

    /// Deletes a node if its version matches (`None`: any version).
    ///
    /// Errors: `NoNode`; `BadVersion`; `NotEmpty`.
    pub fn delete(
        &self,
        path: &str,
        version: Option<i32>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let call = self.request("delete", path, |p| {
            let req = pb::DeleteRequest {
                path: p,
                version: convert::version(version),
            };
            (Req::Delete(req), None)
        });
        async move { call.ok().await.map(drop) }
    }

    /// The node's stat, or `None` if it does not exist.
    pub fn exists(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Option<Stat>>> + Send + 'static {
        let call = self.request("exists", path, |p| {
            (
                Req::Exists(pb::ExistsRequest {
                    path: p,
                    watch: false,
                }),
                None,
            )
        });
        let path = path.to_string();
        async move { exists_result(call.raw().await?, "exists", &path) }
    }

    /// Like [`Client::exists`], and leaves a one-shot watch (whether or not the node
    /// exists) that fires on NodeCreated, NodeDataChanged or NodeDeleted.
    pub fn exists_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Option<Stat>, OneshotWatcher)>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let call = self.request("exists", path, |p| {
            let watch = WatchRegistration::Exists {
                path: p.clone(),
                tx,
            };
            (
                Req::Exists(pb::ExistsRequest {
                    path: p,
                    watch: true,
                }),
                Some(watch),
            )
        });
        let path = path.to_string();
        async move {
            let stat = exists_result(call.raw().await?, "exists", &path)?;
            Ok((stat, OneshotWatcher::new(rx)))
        }
    }

    /// The node's data and stat.
    ///
    /// Errors: `NoNode`.
    pub fn get_data(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Bytes, Stat)>> + Send + 'static {
        let call = self.request("get_data", path, |p| {
            (
                Req::GetData(pb::GetDataRequest {
                    path: p,
                    watch: false,
                }),
                None,
            )
        });
        call.map(|r| match r {
            R::GetData(d) => Some((d.data, convert::stat(d.stat))),
            _ => None,
        })
    }

    /// Like [`Client::get_data`], and leaves a one-shot watch that fires on
    /// NodeDataChanged or NodeDeleted. No watch is left on error (`NoNode`).
    pub fn get_data_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Bytes, Stat, OneshotWatcher)>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let call = self.request("get_data", path, |p| {
            let watch = WatchRegistration::Data {
                path: p.clone(),
                tx,
            };
            (
                Req::GetData(pb::GetDataRequest {
                    path: p,
                    watch: true,
                }),
                Some(watch),
            )
        });
        let result = call.map(|r| match r {
            R::GetData(d) => Some((d.data, convert::stat(d.stat))),
            _ => None,
        });
        async move {
            let (data, stat) = result.await?;
            Ok((data, stat, OneshotWatcher::new(rx)))
        }
    }

    /// Replaces the node's data if its version matches (`None`: any version); returns the
    /// new stat.
    ///
    /// Errors: `NoNode`; `BadVersion`.
    pub fn set_data(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        version: Option<i32>,
    ) -> impl Future<Output = Result<Stat>> + Send + 'static {
        let data = data.into();
        let call = self.request("set_data", path, |p| {
            let req = pb::SetDataRequest {
                path: p,
                data,
                version: convert::version(version),
            };
            (Req::SetData(req), None)
        });
        call.map(|r| match r {
            R::Stat(s) => Some(convert::stat(s.stat)),
            _ => None,
        })
    }

    /// Replaces the node's ACL if its ACL version (`aversion`) matches (`None`: any);
    /// returns the new stat. Needs ADMIN on the node.
    ///
    /// Errors: `NoNode`; `BadVersion`; `NoAuth`; `InvalidACL` (empty, unknown scheme,
    /// malformed id, or `auth` without an authenticated identity).
    pub fn set_acl(
        &self,
        path: &str,
        acl: &[Acl],
        version: Option<i32>,
    ) -> impl Future<Output = Result<Stat>> + Send + 'static {
        let acl = convert::acl_to_pb(acl);
        let call = self.request("set_acl", path, |p| {
            let req = pb::SetAclRequest {
                path: p,
                acl,
                version: convert::version(version),
            };
            (Req::SetAcl(req), None)
        });
        call.map(|r| match r {
            R::Stat(s) => Some(convert::stat(s.stat)),
            _ => None,
        })
    }

    /// The node's ACL and stat. Needs READ or ADMIN; without ADMIN, `digest` ids come
    /// back as `user:x` (the hashes are not revealed).
    ///
    /// Errors: `NoNode`; `NoAuth`.
    pub fn get_acl(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<Acl>, Stat)>> + Send + 'static {
        let call = self.request("get_acl", path, |p| {
            (Req::GetAcl(pb::GetAclRequest { path: p }), None)
        });
        call.map(|r| match r {
            R::GetAcl(g) => Some((convert::acl_from_pb(g.acl), convert::stat(g.stat))),
            _ => None,
        })
    }

    /// Adds an identity to this session's connection (ZooKeeper's `addauth`): scheme
    /// `digest` with `user:password`. The client sends it again after every reconnect.
    ///
    /// Errors: `AuthFailed` (unsupported scheme or malformed credentials).
    pub fn add_auth(
        &self,
        scheme: &str,
        auth: impl Into<Bytes>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let req = pb::AddAuthRequest {
            scheme: scheme.to_string(),
            auth: auth.into(),
        };
        let call = self.send("add_auth", "/", Req::AddAuth(req), None);
        async move { call.ok().await.map(drop) }
    }

    /// The node's children (names, unordered) and its stat.
    ///
    /// Errors: `NoNode`.
    pub fn get_children(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat)>> + Send + 'static {
        let call = self.request("get_children", path, |p| {
            (
                Req::GetChildren(pb::GetChildrenRequest {
                    path: p,
                    watch: false,
                }),
                None,
            )
        });
        call.map(|r| match r {
            R::GetChildren(c) => Some((c.children, convert::stat(c.stat))),
            _ => None,
        })
    }

    /// Like [`Client::get_children`], and leaves a one-shot watch that fires on
    /// NodeChildrenChanged or NodeDeleted. No watch is left on error (`NoNode`).
    pub fn get_children_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat, OneshotWatcher)>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let call = self.request("get_children", path, |p| {
            let watch = WatchRegistration::Child {
                path: p.clone(),
                tx,
            };
            (
                Req::GetChildren(pb::GetChildrenRequest {
                    path: p,
                    watch: true,
                }),
                Some(watch),
            )
        });
        let result = call.map(|r| match r {
            R::GetChildren(c) => Some((c.children, convert::stat(c.stat))),
            _ => None,
        });
        async move {
            let (children, stat) = result.await?;
            Ok((children, stat, OneshotWatcher::new(rx)))
        }
    }

    /// Applies all `ops` atomically, or none. Returns one result per op.
    ///
    /// Errors: `Multi { index, code, results }` when an op failed (nothing applied;
    /// `results` holds ZooKeeper's per-op codes: `Ok` before `index`, the failure at
    /// `index`, `RuntimeInconsistency` after); `InvalidPath`/`BadArguments` for an op
    /// rejected client-side (nothing sent).
    pub fn multi(
        &self,
        ops: Vec<Op>,
    ) -> impl Future<Output = Result<Vec<OpResult>>> + Send + 'static {
        const OP: &str = "multi";
        let first = ops
            .first()
            .map(|o| o.path().to_string())
            .unwrap_or_default();
        let checked = ops.iter().try_for_each(|op| {
            let sequential =
                matches!(op, Op::Create { options, .. } if options.mode.is_sequential());
            zkpath::validate(op.path(), sequential)?;
            if let Op::Create { options, path, .. } = op {
                options
                    .check()
                    .map_err(|why| Error::bad_arguments(OP, path, why))?;
            }
            Ok::<(), Error>(())
        });
        let chroot = self.inner.chroot.clone();
        let call = match checked {
            Err(e) => self.failed(OP, &first, e),
            Ok(()) => {
                let wire = ops
                    .iter()
                    .map(|o| match o {
                        Op::Create {
                            path,
                            data,
                            options,
                        } => convert::op(
                            &Op::Create {
                                path: path.clone(),
                                data: data.clone(),
                                options: self.effective(options).into_owned(),
                            },
                            &chroot,
                        ),
                        _ => convert::op(o, &chroot),
                    })
                    .collect();
                self.send(OP, &first, Req::Multi(pb::MultiRequest { ops: wire }), None)
            }
        };
        async move {
            let resp = call.raw().await?;
            let code = Code::from_i32(resp.err);
            let results = match resp.result {
                Some(R::Multi(m)) => m.results,
                _ => Vec::new(),
            };
            if results.is_empty() && !code.is_ok() {
                // Rejected as a whole (no per-op results).
                return Err(Error::from_code(code, OP, &first, &resp.message));
            }
            let mapped = results
                .into_iter()
                .enumerate()
                .map(|(i, r)| convert::op_result(r, ops.get(i), &chroot))
                .collect();
            multi::finish(code, mapped)
        }
    }

    /// Runs the reads in one round trip; each succeeds or fails on its own (not atomic).
    pub fn multi_read(
        &self,
        ops: Vec<ReadOp>,
    ) -> impl Future<Output = Result<Vec<ReadResult>>> + Send + 'static {
        const OP: &str = "multi_read";
        let first = ops
            .first()
            .map(|o| o.path().to_string())
            .unwrap_or_default();
        let checked = ops
            .iter()
            .try_for_each(|op| zkpath::validate(op.path(), false));
        let call = match checked {
            Err(e) => self.failed(OP, &first, e.into()),
            Ok(()) => {
                let wire = ops
                    .iter()
                    .map(|o| convert::read_op(o, &self.inner.chroot))
                    .collect();
                self.send(
                    OP,
                    &first,
                    Req::MultiRead(pb::MultiReadRequest { ops: wire }),
                    None,
                )
            }
        };
        let result = call.map(|r| match r {
            R::MultiRead(m) => Some(m.results),
            _ => None,
        });
        async move {
            let results = result.await?;
            Ok(results
                .into_iter()
                .enumerate()
                .map(|(i, r)| convert::read_result(r, ops.get(i)))
                .collect())
        }
    }

    /// Makes the connected server catch up with the leader, so a read issued after this
    /// (on this client) sees every write committed before it.
    pub fn sync(&self, path: &str) -> impl Future<Output = Result<()>> + Send + 'static {
        let call = self.request("sync", path, |p| {
            (Req::Sync(pb::SyncRequest { path: p }), None)
        });
        async move { call.ok().await.map(drop) }
    }

    /// Adds a persistent watch on `path` (`recursive`: on it and all its descendants);
    /// the node need not exist. See [`PersistentWatcher`] for what it reports.
    pub fn watch(
        &self,
        path: &str,
        recursive: bool,
    ) -> impl Future<Output = Result<PersistentWatcher>> + Send + 'static {
        let id = self.inner.shared.next_watcher_id();
        let (tx, rx) = mpsc::unbounded_channel();
        let mode = if recursive {
            pb::AddWatchMode::PersistentRecursiveWatch
        } else {
            pb::AddWatchMode::PersistentWatch
        };
        let call = self.request("watch", path, |p| {
            let watch = WatchRegistration::Persistent {
                path: p.clone(),
                recursive,
                id,
                tx,
            };
            let req = pb::AddWatchRequest {
                path: p,
                mode: mode as i32,
            };
            (Req::AddWatch(req), Some(watch))
        });
        let commands = self.inner.commands.clone();
        let shared = self.inner.shared.clone();
        let path = path.to_string();
        async move {
            call.ok().await?;
            Ok(PersistentWatcher::new(id, path, rx, commands, shared))
        }
    }

    /// Removes this session's watches of `kind` on `path` from the server; the local
    /// watchers resolve with `DataWatchRemoved` / `ChildWatchRemoved` (and persistent
    /// ones, for `Any`, get `PersistentWatchRemoved` and end).
    ///
    /// Errors: `NoWatcher` when the server has no such watch.
    pub fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let call = self.request("remove_watches", path, |p| {
            let req = pb::RemoveWatchesRequest {
                path: p.clone(),
                watcher_type: convert::watcher_type(kind) as i32,
                check_only: false,
            };
            (
                Req::RemoveWatches(req),
                Some(WatchRegistration::Remove { path: p, kind }),
            )
        });
        async move { call.ok().await.map(drop) }
    }

    /// The paths of this session's ephemeral nodes that start with `prefix` (`/` for all;
    /// a prefix need not be a node: `/app/lock-`).
    pub fn get_ephemerals(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        const OP: &str = "get_ephemerals";
        let chroot = self.inner.chroot.clone();
        let call = match zkpath::validate(prefix, true) {
            Err(e) => self.failed(OP, prefix, e.into()),
            Ok(()) => {
                let mut server_prefix = chroot.apply(prefix);
                if prefix == "/" && !server_prefix.ends_with('/') {
                    // Everything under the chroot, not siblings sharing its name as prefix.
                    server_prefix.push('/');
                }
                self.send(
                    OP,
                    prefix,
                    Req::GetEphemerals(pb::GetEphemeralsRequest {
                        prefix: server_prefix,
                    }),
                    None,
                )
            }
        };
        call.map(move |r| match r {
            R::Paths(p) => Some(p.paths.iter().map(|s| chroot.strip(s)).collect()),
            _ => None,
        })
    }

    /// The number of descendants of `path` (the node itself not counted).
    ///
    /// Errors: `NoNode`.
    pub fn get_all_children_number(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<i32>> + Send + 'static {
        let call = self.request("get_all_children_number", path, |p| {
            (
                Req::GetAllChildrenNumber(pb::GetAllChildrenNumberRequest { path: p }),
                None,
            )
        });
        call.map(|r| match r {
            R::Count(c) => Some(c.count),
            _ => None,
        })
    }

    /// The session states: the current one first, then each change (see [`StateStream`]).
    pub fn state(&self) -> StateStream {
        StateStream::new(self.inner.shared.subscribe())
    }

    /// The current session state.
    pub fn current_state(&self) -> SessionState {
        self.inner.shared.state()
    }

    /// The session id (to reattach elsewhere with [`ClientBuilder::session`]).
    pub fn session_id(&self) -> i64 {
        self.inner.shared.session_id()
    }

    /// The session password.
    pub fn session_password(&self) -> Vec<u8> {
        self.inner.shared.password()
    }

    /// The negotiated session timeout.
    pub fn session_timeout(&self) -> Duration {
        self.inner.shared.timeout()
    }

    /// Until when the session is known to be alive on the servers: the send time of the
    /// last acknowledged request or ping plus the negotiated timeout. Past it, the session
    /// may have expired without this client knowing yet (recipes use it to step down
    /// before another holder can take over).
    pub fn session_lease(&self) -> tokio::time::Instant {
        self.inner.shared.lease()
    }

    /// The highest zxid seen in any reply or event.
    pub fn last_zxid(&self) -> i64 {
        self.inner.shared.last_zxid()
    }

    /// Closes the session: the server deletes its ephemeral nodes and fires their
    /// watches. Waits (bounded by two thirds of the session timeout) for the server's
    /// confirmation; the state is `Closed` afterwards and every call fails with
    /// `Closed`. Requests queued before `close` are still sent and answered. Idempotent;
    /// never fails (an unreachable server lets the session expire instead).
    pub fn close(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let queued = self
            .inner
            .commands
            .send(Command::Close { reply: Some(tx) })
            .is_ok();
        async move {
            if queued {
                let _ = rx.await;
            }
            Ok(())
        }
    }
}
