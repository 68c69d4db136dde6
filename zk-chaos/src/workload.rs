//! The clients: concurrent sessions (spread over the servers through their proxies)
//! that record a [`History`] of compare-and-set registers and grow-only sets, and run
//! lock-protected increments on a fenced resource.
//!
//! Keys rotate every [`EPOCH`] so that each key's history stays small enough for the
//! linearizability search. Every operation is bounded by [`OP_TIMEOUT`]; a timeout, a
//! lost connection or an ended session makes a write indeterminate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use zk_client::{Client, CreateOptions, Error as ZkError};
use zk_recipes::Lock;

use crate::check::durability::Acked;
use crate::check::fence::FenceEntry;
use crate::history::{History, Op, Outcome, Ret};

/// Root of everything the workload touches.
pub const ROOT: &str = "/chaos";
/// The lock-protected counter.
pub const COUNTER: &str = "/chaos/counter";
/// The fenced resource's log of accepted writes.
pub const FENCE: &str = "/chaos/fence";
/// The lock.
pub const LOCK: &str = "/chaos/lock";
/// How long one operation may take before it is indeterminate.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Keys change every epoch.
pub const EPOCH: Duration = Duration::from_secs(10);
/// Registers per epoch.
pub const REGISTERS: u32 = 3;
/// Sets per epoch.
pub const SETS: u32 = 1;
/// The clients' session timeout.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// The path of register `key`.
pub fn reg_path(key: u32) -> String {
    format!("{ROOT}/reg/{key}")
}

/// The path of set `key`.
pub fn set_path(key: u32) -> String {
    format!("{ROOT}/set/{key}")
}

/// How the lock holders write the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Through `LockGuard::guarded` (a multi that checks the holder's node): correct.
    Fenced,
    /// Through a plain multi on another session, trusting the lock: the negative control
    /// (a deposed holder can write after a newer one).
    Unfenced,
}

/// What the workload shares between its tasks.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The recorded history.
    pub history: History,
    /// Acknowledged writes, for the durability check.
    pub acked: Arc<Mutex<Acked>>,
    /// Lock-protected increments attempted.
    pub increments: Arc<AtomicU64>,
    start: Instant,
}

impl Shared {
    /// A new, empty record.
    pub fn new() -> Shared {
        Shared {
            history: History::new(),
            acked: Arc::new(Mutex::new(Acked::default())),
            increments: Arc::new(AtomicU64::new(0)),
            start: Instant::now(),
        }
    }

    fn epoch(&self) -> u32 {
        u32::try_from(self.start.elapsed().as_secs() / EPOCH.as_secs()).unwrap_or(u32::MAX)
    }

    fn ack(&self, f: impl FnOnce(&mut Acked)) {
        f(&mut self.acked.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A copy of the acknowledged writes.
    pub fn acked(&self) -> Acked {
        self.acked.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

/// The register and set keys a run of `duration` uses.
pub fn keys(duration: Duration) -> (Vec<u32>, Vec<u32>) {
    let epochs = u32::try_from(duration.as_secs() / EPOCH.as_secs() + 2).unwrap_or(u32::MAX);
    (
        (0..epochs * REGISTERS).collect(),
        (0..epochs * SETS).collect(),
    )
}

/// Connects a client through `connect_string`, bounded.
pub async fn connect(connect_string: &str) -> Option<Client> {
    let c = Client::builder()
        .servers(connect_string)
        .session_timeout(SESSION_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
        .shuffle_servers(false)
        .connect();
    tokio::time::timeout(Duration::from_secs(5), c)
        .await
        .ok()
        .and_then(Result::ok)
}

/// Creates `path` with `data`, treating "already exists" as done; retried until `limit`.
pub async fn ensure(
    client: &Client,
    path: &str,
    data: &str,
    limit: Duration,
) -> Result<(), ZkError> {
    let deadline = Instant::now() + limit;
    loop {
        let r = tokio::time::timeout(
            OP_TIMEOUT,
            client.create(path, data.to_string(), &CreateOptions::persistent()),
        )
        .await;
        match r {
            Ok(Ok(_)) | Ok(Err(ZkError::NodeExists { .. })) => return Ok(()),
            Ok(Err(e)) if Instant::now() > deadline => return Err(e),
            Err(_) if Instant::now() > deadline => return Err(ZkError::Timeout),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Creates the tree the workload needs (idempotent).
pub async fn setup(client: &Client, duration: Duration) -> Result<(), ZkError> {
    let limit = Duration::from_secs(30);
    for p in [
        ROOT,
        &format!("{ROOT}/reg"),
        &format!("{ROOT}/set"),
        FENCE,
        LOCK,
    ] {
        ensure(client, p, "", limit).await?;
    }
    ensure(client, COUNTER, "0", limit).await?;
    let (regs, sets) = keys(duration);
    for k in regs {
        ensure(client, &reg_path(k), "0", limit).await?;
    }
    for k in sets {
        ensure(client, &set_path(k), "", limit).await?;
    }
    Ok(())
}

/// True for errors that say the write definitely did not happen.
fn definite(e: &ZkError) -> bool {
    matches!(
        e,
        ZkError::BadVersion { .. }
            | ZkError::NoNode { .. }
            | ZkError::NodeExists { .. }
            | ZkError::InvalidPath(_)
            | ZkError::Multi { .. }
    )
}

/// Keeps a session, replacing it after it expires.
struct Session {
    connect_string: String,
    client: Option<Client>,
}

impl Session {
    async fn get(&mut self) -> Option<Client> {
        if let Some(c) = &self.client {
            if !matches!(
                c.current_state(),
                zk_client::SessionState::Expired | zk_client::SessionState::Closed
            ) {
                return Some(c.clone());
            }
        }
        if let Some(old) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), old.close()).await;
        }
        self.client = connect(&self.connect_string).await;
        self.client.clone()
    }

    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
        }
    }
}

/// A register client: linearizable reads (`sync` + `get_data`) and compare-and-sets on
/// the version it last saw, until `deadline`.
pub async fn register_client(
    id: usize,
    connect_string: String,
    shared: Shared,
    seed: u64,
    deadline: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = Session {
        connect_string,
        client: None,
    };
    let mut seen: std::collections::HashMap<u32, i32> = Default::default();
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        let Some(client) = s.get().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let key = shared.epoch() * REGISTERS + rng.random_range(0..REGISTERS);
        let path = reg_path(key);
        match seen.get(&key).copied() {
            Some(expect) if rng.random_bool(0.6) => {
                n += 1;
                let value = ((id as u64) << 32) | n;
                let p = shared.history.invoke(id, Op::RegCas { key, value, expect });
                let r = tokio::time::timeout(
                    OP_TIMEOUT,
                    client.set_data(&path, value.to_string(), Some(expect)),
                )
                .await;
                let outcome = match r {
                    Ok(Ok(stat)) => {
                        seen.insert(key, stat.version);
                        shared.ack(|a| a.cas.push((key, stat.version)));
                        Outcome::Ok(Ret::Version(stat.version))
                    }
                    Ok(Err(e)) if definite(&e) => {
                        seen.remove(&key);
                        Outcome::Fail
                    }
                    _ => {
                        seen.remove(&key);
                        Outcome::Unknown
                    }
                };
                shared.history.complete(p, outcome);
            }
            _ => {
                let p = shared.history.invoke(id, Op::RegRead { key });
                let read = async {
                    client.sync(&path).await?;
                    client.get_data(&path).await
                };
                let outcome = match tokio::time::timeout(OP_TIMEOUT, read).await {
                    Ok(Ok((data, stat))) => {
                        match std::str::from_utf8(&data).ok().and_then(|t| t.parse().ok()) {
                            Some(value) => {
                                seen.insert(key, stat.version);
                                Outcome::Ok(Ret::Value {
                                    value,
                                    version: stat.version,
                                })
                            }
                            None => Outcome::Unknown,
                        }
                    }
                    _ => Outcome::Unknown,
                };
                shared.history.complete(p, outcome);
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..40))).await;
    }
    s.close().await;
}

/// The element id encoded in a set child's name (`e-<elem>-<sequence>`).
pub fn elem_of(name: &str) -> Option<u32> {
    name.strip_prefix("e-")?.split('-').next()?.parse().ok()
}

/// A set client: sequential creates of unique elements and linearizable reads
/// (`sync` + `get_children`), until `deadline`.
pub async fn set_client(
    id: usize,
    connect_string: String,
    shared: Shared,
    seed: u64,
    deadline: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = Session {
        connect_string,
        client: None,
    };
    let mut n: u32 = 0;
    while Instant::now() < deadline {
        let Some(client) = s.get().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let key = shared.epoch() * SETS + rng.random_range(0..SETS);
        let dir = set_path(key);
        if rng.random_bool(0.7) {
            n += 1;
            let elem = u32::try_from(id).unwrap_or(0) * 1_000_000 + n;
            let p = shared.history.invoke(id, Op::SetAdd { key, elem });
            let r = tokio::time::timeout(
                OP_TIMEOUT,
                client.create(
                    &format!("{dir}/e-{elem}-"),
                    Bytes::new(),
                    &CreateOptions::persistent().sequential(true),
                ),
            )
            .await;
            let outcome = match r {
                Ok(Ok(_)) => {
                    shared.ack(|a| a.adds.push((key, elem)));
                    Outcome::Ok(Ret::Done)
                }
                Ok(Err(e)) if definite(&e) => Outcome::Fail,
                _ => Outcome::Unknown,
            };
            shared.history.complete(p, outcome);
        } else {
            let p = shared.history.invoke(id, Op::SetRead { key });
            let read = async {
                client.sync(&dir).await?;
                client.get_children(&dir).await
            };
            let outcome = match tokio::time::timeout(OP_TIMEOUT, read).await {
                Ok(Ok((children, _))) => {
                    let mut elems: Vec<u32> = children.iter().filter_map(|c| elem_of(c)).collect();
                    elems.sort_unstable();
                    Outcome::Ok(Ret::Elems(elems))
                }
                _ => Outcome::Unknown,
            };
            shared.history.complete(p, outcome);
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..40))).await;
    }
    s.close().await;
}

/// Reads the counter linearizably: (value, version).
pub async fn read_counter(client: &Client) -> Option<(u64, i32)> {
    let read = async {
        client.sync(COUNTER).await?;
        client.get_data(COUNTER).await
    };
    let (data, stat) = tokio::time::timeout(OP_TIMEOUT, read).await.ok()?.ok()?;
    let v = std::str::from_utf8(&data).ok()?.parse().ok()?;
    Some((v, stat.version))
}

/// The ops of one increment: the counter and an entry in the fenced resource's log.
pub fn increment_ops(token: u64, value: u64, version: Option<i32>) -> Vec<zk_client::Op> {
    vec![
        zk_client::Op::set_data(COUNTER, value.to_string(), version),
        zk_client::Op::create(
            format!("{FENCE}/w-"),
            FenceEntry::data(token, value),
            CreateOptions::persistent().sequential(true),
        ),
    ]
}

/// A lock client: takes the lock, reads the counter, writes counter + 1 and a fence log
/// entry with its token (fenced or not, per `mode`), releases; until `deadline`.
pub async fn lock_client(
    connect_string: String,
    shared: Shared,
    mode: LockMode,
    seed: u64,
    deadline: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = Session {
        connect_string: connect_string.clone(),
        client: None,
    };
    let mut resource = Session {
        connect_string,
        client: None,
    };
    while Instant::now() < deadline {
        let Some(client) = s.get().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Ok(lock) = Lock::new(&client, LOCK) else {
            return;
        };
        let guard = match tokio::time::timeout(
            Duration::from_secs(4),
            lock.acquire_timeout(Duration::from_secs(3)),
        )
        .await
        {
            Ok(Ok(g)) => g,
            _ => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Some((value, version)) = read_counter(&client).await {
            let token = guard.fencing_token().value();
            shared.increments.fetch_add(1, Ordering::SeqCst);
            let ops = increment_ops(token, value + 1, Some(version));
            let ok = match mode {
                LockMode::Fenced => matches!(
                    tokio::time::timeout(OP_TIMEOUT, guard.guarded(ops)).await,
                    Ok(Ok(_))
                ),
                LockMode::Unfenced => match resource.get().await {
                    Some(r) => matches!(
                        tokio::time::timeout(
                            OP_TIMEOUT,
                            r.multi(increment_ops(token, value + 1, None))
                        )
                        .await,
                        Ok(Ok(_))
                    ),
                    None => false,
                },
            };
            if ok {
                shared.ack(|a| a.increments.push((token, value + 1)));
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), guard.release()).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..40))).await;
    }
    s.close().await;
    resource.close().await;
}
