//! Certificate reload without a restart: the certificate, key and CA files are checked
//! every `reload_interval_ms` (and at once on SIGHUP); when their bytes change they are
//! loaded again and, if they make a valid configuration, new connections use it while
//! open connections keep the session they have. A file that does not load (corrupt,
//! half written, a key that does not match the certificate) is rejected with an error
//! log line and the previous configuration stays in use; it is tried again when the
//! files change once more. ZooKeeper does the same with its `FileChangeWatcher`
//! (`sslQuorumReloadCertFiles`, `client.certReload`); polling the bytes instead of
//! watching the directory also catches the symlink swaps of mounted Kubernetes secrets.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;
use tokio_rustls::rustls;

use super::TlsError;

/// A rustls server configuration that a reload can replace while connections are
/// accepted with it; each new connection takes the current one.
#[derive(Clone)]
pub struct LiveConfig(Arc<RwLock<Arc<rustls::ServerConfig>>>);

impl LiveConfig {
    /// Starts with `config`.
    pub fn new(config: Arc<rustls::ServerConfig>) -> LiveConfig {
        LiveConfig(Arc::new(RwLock::new(config)))
    }

    /// The configuration for a connection accepted now.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.0.read().clone()
    }

    /// Replaces it for connections accepted from now on.
    pub fn replace(&self, config: Arc<rustls::ServerConfig>) {
        *self.0.write() = config;
    }
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveConfig")
    }
}

/// How many reloads succeeded and failed (`/metrics`: `zk_tls_reloads_total`,
/// `zk_tls_reload_failures_total`).
#[derive(Debug, Default)]
pub struct ReloadCounters {
    /// Configurations replaced after a file change.
    pub reloads: AtomicU64,
    /// Changed files rejected (the previous configuration stayed in use).
    pub failures: AtomicU64,
}

/// Builds a configuration from the files and installs it where it is used.
type Install = Box<dyn Fn() -> Result<(), TlsError> + Send + Sync>;

/// One set of files and what to rebuild when they change.
struct Watched {
    /// What it is, for the log ("client port", "peer port", ...).
    what: &'static str,
    files: Vec<PathBuf>,
    install: Install,
    /// The fingerprint of the files last looked at (loaded or rejected).
    seen: u64,
}

/// The files of every TLS configuration of a node, checked for changes.
pub struct Reloader {
    watched: Vec<Watched>,
    counters: Arc<ReloadCounters>,
}

/// The contents of `files` (a missing file counts as its error), hashed.
fn fingerprint(files: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    for f in files {
        match std::fs::read(f) {
            Ok(bytes) => bytes.hash(&mut h),
            Err(e) => e.kind().to_string().hash(&mut h),
        }
    }
    h.finish()
}

impl Reloader {
    /// Nothing watched yet; outcomes counted in `counters`.
    pub fn new(counters: Arc<ReloadCounters>) -> Reloader {
        Reloader {
            watched: Vec::new(),
            counters,
        }
    }

    /// Watches `files`; when they change, `install` rebuilds and installs the
    /// configuration that uses them. The files as they are now count as loaded.
    pub fn watch(
        &mut self,
        what: &'static str,
        files: Vec<PathBuf>,
        install: impl Fn() -> Result<(), TlsError> + Send + Sync + 'static,
    ) {
        let seen = fingerprint(&files);
        self.watched.push(Watched {
            what,
            files,
            install: Box::new(install),
            seen,
        });
    }

    /// True when nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
    }

    /// Reloads every configuration whose files changed since they were last looked at.
    pub fn check(&mut self) {
        for w in &mut self.watched {
            let now = fingerprint(&w.files);
            if now == w.seen {
                continue;
            }
            w.seen = now;
            match (w.install)() {
                Ok(()) => {
                    self.counters.reloads.fetch_add(1, Relaxed);
                    tracing::info!(
                        files = ?w.files,
                        "{}: TLS certificate files changed; new connections use the new certificate",
                        w.what
                    );
                }
                Err(e) => {
                    self.counters.failures.fetch_add(1, Relaxed);
                    tracing::error!(
                        files = ?w.files,
                        "{}: changed TLS files rejected, still serving the previous certificate: {e}",
                        w.what
                    );
                }
            }
        }
    }

    /// Checks every `interval` (never if zero) and on SIGHUP, until `stop` turns true.
    /// Must be called inside a tokio runtime.
    pub fn spawn(
        mut self,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        // Listening for SIGHUP from here on, before this returns: a SIGHUP sent once the
        // node has started reloads instead of ending the process.
        let mut hup = Hangup::new();
        tokio::spawn(async move {
            let mut tick = (!interval.is_zero()).then(|| {
                let mut t = tokio::time::interval(interval);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                let ticked = async {
                    match tick.as_mut() {
                        Some(t) => {
                            t.tick().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                let hupped = async {
                    hup.recv().await;
                    tracing::info!("SIGHUP: checking the TLS certificate files");
                };
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = ticked => {}
                    _ = hupped => {}
                }
                // Reading a few small files: off the runtime threads all the same.
                self = match tokio::task::spawn_blocking(move || {
                    self.check();
                    self
                })
                .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("TLS reload check failed: {e}");
                        return;
                    }
                };
            }
        })
    }
}

/// SIGHUP, where there is such a thing; otherwise never.
struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangup {
    #[cfg(unix)]
    fn new() -> Hangup {
        Hangup(
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .inspect_err(|e| tracing::warn!("cannot listen for SIGHUP: {e}"))
                .ok(),
        )
    }

    #[cfg(not(unix))]
    fn new() -> Hangup {
        Hangup()
    }

    /// The next SIGHUP.
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = self.0.as_mut() {
            if s.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}
