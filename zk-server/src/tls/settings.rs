//! TLS and peer-authentication settings (flags `--tls-*`, `--peer-tls-*`,
//! `--peer-secret-file`, or a `[tls]` table in the config file) and their loading into
//! rustls configurations.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::rustls;

/// Whether the server asks TLS clients for a certificate (ZooKeeper's
/// `ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificates asked for.
    #[default]
    None,
    /// Asked for; a client may connect without one, a presented one must verify.
    Want,
    /// Required: a client without a certificate signed by the CA is refused.
    Need,
}

/// Why TLS settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} from {path}: {message}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{path}: no {what} found")]
    Empty { what: &'static str, path: PathBuf },
    #[error("TLS configuration: {0}")]
    Rustls(String),
    #[error("TLS settings: {0}")]
    Invalid(String),
}

/// TLS on the client and peer ports, and the peer secret. Everything off by default.
/// Its `Debug` output hides the secret.
#[derive(Clone)]
pub struct TlsSettings {
    /// The client port's certificate chain (PEM). TLS on the client port is on when set.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to.
    pub ca: Option<PathBuf>,
    /// Whether client certificates are asked for.
    pub client_auth: ClientAuth,
    /// Also accept plaintext clients on the TLS client port (port unification).
    pub allow_plaintext: bool,
    /// The peer port's certificate (PEM): peers talk mutual TLS when set, each
    /// presenting this certificate and requiring one signed by `peer_ca`.
    pub peer_cert: Option<PathBuf>,
    /// Its private key.
    pub peer_key: Option<PathBuf>,
    /// CA certificates that peers' certificates must chain to.
    pub peer_ca: Option<PathBuf>,
    /// Name to verify in peers' certificates instead of the host of their address.
    pub peer_server_name: Option<String>,
    /// A secret every peer RPC must carry (compared in constant time): peer
    /// authentication without certificates. Same value on every server.
    pub peer_secret: Option<String>,
    /// Peer mutual TLS: a peer certificate must name the server id a call claims
    /// (`server.<id>` as CN or SAN, or the host of that server's peer address).
    pub peer_verify_id: bool,
    /// Serve the admin HTTP port over TLS with the client port's certificate
    /// (ZooKeeper's `admin.forceHttps`).
    pub admin: bool,
    /// Whether admin HTTPS clients must present a certificate signed by `ca`
    /// (ZooKeeper's `admin.needClientAuth`).
    pub admin_client_auth: ClientAuth,
    /// Also accept plain HTTP on the TLS admin port (ZooKeeper's `admin.portUnification`).
    pub admin_allow_plaintext: bool,
    /// How often the certificate, key and CA files are checked for changes (milliseconds;
    /// 0: only on SIGHUP). Changed files are loaded for new connections.
    pub reload_interval_ms: u64,
}

/// The default of [`TlsSettings::reload_interval_ms`].
pub const DEFAULT_RELOAD_INTERVAL_MS: u64 = 5_000;

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            cert: None,
            key: None,
            ca: None,
            client_auth: ClientAuth::None,
            allow_plaintext: false,
            peer_cert: None,
            peer_key: None,
            peer_ca: None,
            peer_server_name: None,
            peer_secret: None,
            peer_verify_id: false,
            admin: false,
            admin_client_auth: ClientAuth::None,
            admin_allow_plaintext: false,
            reload_interval_ms: DEFAULT_RELOAD_INTERVAL_MS,
        }
    }
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("ca", &self.ca)
            .field("client_auth", &self.client_auth)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("peer_cert", &self.peer_cert)
            .field("peer_key", &self.peer_key)
            .field("peer_ca", &self.peer_ca)
            .field("peer_server_name", &self.peer_server_name)
            .field(
                "peer_secret",
                &self.peer_secret.as_ref().map(|_| "<hidden>"),
            )
            .field("peer_verify_id", &self.peer_verify_id)
            .field("admin", &self.admin)
            .field("admin_client_auth", &self.admin_client_auth)
            .field("admin_allow_plaintext", &self.admin_allow_plaintext)
            .field("reload_interval_ms", &self.reload_interval_ms)
            .finish()
    }
}

/// The keys of the `[tls]` table of a config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    client_auth: Option<ClientAuth>,
    allow_plaintext: Option<bool>,
    peer_cert: Option<PathBuf>,
    peer_key: Option<PathBuf>,
    peer_ca: Option<PathBuf>,
    peer_server_name: Option<String>,
    peer_secret_file: Option<PathBuf>,
    peer_verify_id: Option<bool>,
    admin: Option<bool>,
    admin_client_auth: Option<ClientAuth>,
    admin_allow_plaintext: Option<bool>,
    reload_interval_ms: Option<u64>,
}

/// The TLS flags of `zk-server`.
#[derive(Debug, Default, clap::Args)]
pub struct TlsArgs {
    /// Client port TLS certificate chain (PEM); turns TLS on for the client port
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// Client port TLS private key (PEM)
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) client certificates must chain to
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// Ask TLS clients for a certificate: none, want (optional), need (required) [default: none]
    #[arg(long, value_enum)]
    pub tls_client_auth: Option<ClientAuth>,
    /// Also accept plaintext clients on a TLS client port
    #[arg(long)]
    pub tls_allow_plaintext: bool,
    /// Peer port certificate (PEM): peers use mutual TLS
    #[arg(long, value_name = "PEM")]
    pub peer_tls_cert: Option<PathBuf>,
    /// Peer port private key (PEM)
    #[arg(long, value_name = "PEM")]
    pub peer_tls_key: Option<PathBuf>,
    /// CA certificates (PEM) peer certificates must chain to
    #[arg(long, value_name = "PEM")]
    pub peer_tls_ca: Option<PathBuf>,
    /// Name to verify in peer certificates [default: the host of each peer address]
    #[arg(long, value_name = "NAME")]
    pub peer_tls_server_name: Option<String>,
    /// File holding a shared secret that every peer RPC must carry (same on every server)
    #[arg(long, value_name = "FILE")]
    pub peer_secret_file: Option<PathBuf>,
    /// Peer mutual TLS: refuse a peer whose certificate does not name the server id it
    /// claims (CN or SAN `server.<id>`, or the host of that server's peer address)
    #[arg(long)]
    pub peer_tls_verify_id: bool,
    /// Serve the admin HTTP port over TLS too, with the client port's certificate
    #[arg(long)]
    pub admin_tls: bool,
    /// Ask admin HTTPS clients for a certificate signed by --tls-ca: none, want, need [default: none]
    #[arg(long, value_enum)]
    pub admin_tls_client_auth: Option<ClientAuth>,
    /// Also accept plain HTTP on a TLS admin port
    #[arg(long)]
    pub admin_tls_allow_plaintext: bool,
    /// Check certificate, key and CA files for changes every this many ms and load
    /// changed ones for new connections (0: only on SIGHUP) [default: 5000]
    #[arg(long, value_name = "MS")]
    pub tls_reload_interval_ms: Option<u64>,
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

impl TlsSettings {
    /// Applies a config file's `[tls]` table.
    pub fn apply_file(&mut self, f: TlsFile) -> Result<(), TlsError> {
        set(&mut self.cert, f.cert);
        set(&mut self.key, f.key);
        set(&mut self.ca, f.ca);
        if let Some(a) = f.client_auth {
            self.client_auth = a;
        }
        if let Some(p) = f.allow_plaintext {
            self.allow_plaintext = p;
        }
        set(&mut self.peer_cert, f.peer_cert);
        set(&mut self.peer_key, f.peer_key);
        set(&mut self.peer_ca, f.peer_ca);
        set(&mut self.peer_server_name, f.peer_server_name);
        if let Some(path) = f.peer_secret_file {
            self.peer_secret = Some(read_secret(&path)?);
        }
        if let Some(v) = f.peer_verify_id {
            self.peer_verify_id = v;
        }
        if let Some(v) = f.admin {
            self.admin = v;
        }
        if let Some(a) = f.admin_client_auth {
            self.admin_client_auth = a;
        }
        if let Some(v) = f.admin_allow_plaintext {
            self.admin_allow_plaintext = v;
        }
        if let Some(ms) = f.reload_interval_ms {
            self.reload_interval_ms = ms;
        }
        Ok(())
    }

    /// Applies the command-line flags (they win over the file).
    pub fn apply_args(&mut self, a: TlsArgs) -> Result<(), TlsError> {
        set(&mut self.cert, a.tls_cert);
        set(&mut self.key, a.tls_key);
        set(&mut self.ca, a.tls_ca);
        if let Some(c) = a.tls_client_auth {
            self.client_auth = c;
        }
        if a.tls_allow_plaintext {
            self.allow_plaintext = true;
        }
        set(&mut self.peer_cert, a.peer_tls_cert);
        set(&mut self.peer_key, a.peer_tls_key);
        set(&mut self.peer_ca, a.peer_tls_ca);
        set(&mut self.peer_server_name, a.peer_tls_server_name);
        if let Some(path) = a.peer_secret_file {
            self.peer_secret = Some(read_secret(&path)?);
        }
        if a.peer_tls_verify_id {
            self.peer_verify_id = true;
        }
        if a.admin_tls {
            self.admin = true;
        }
        if let Some(c) = a.admin_tls_client_auth {
            self.admin_client_auth = c;
        }
        if a.admin_tls_allow_plaintext {
            self.admin_allow_plaintext = true;
        }
        if let Some(ms) = a.tls_reload_interval_ms {
            self.reload_interval_ms = ms;
        }
        Ok(())
    }

    /// True when the client port speaks TLS.
    pub fn client_tls(&self) -> bool {
        self.cert.is_some()
    }

    /// True when peers talk mutual TLS.
    pub fn peer_tls(&self) -> bool {
        self.peer_cert.is_some()
    }

    /// Rejects incomplete combinations.
    pub fn validate(&self) -> Result<(), TlsError> {
        let bad = |m: &str| Err(TlsError::Invalid(m.to_string()));
        if self.cert.is_some() != self.key.is_some() {
            return bad("--tls-cert and --tls-key go together");
        }
        if self.client_auth != ClientAuth::None && self.ca.is_none() {
            return bad("--tls-client-auth want|need needs --tls-ca");
        }
        if !self.client_tls() && (self.client_auth != ClientAuth::None || self.allow_plaintext) {
            return bad("--tls-client-auth and --tls-allow-plaintext need --tls-cert");
        }
        if self.peer_tls() && (self.peer_key.is_none() || self.peer_ca.is_none()) {
            return bad("peer TLS needs --peer-tls-cert, --peer-tls-key and --peer-tls-ca");
        }
        if !self.peer_tls() && (self.peer_key.is_some() || self.peer_ca.is_some()) {
            return bad("--peer-tls-key and --peer-tls-ca need --peer-tls-cert");
        }
        if self.admin && !self.client_tls() {
            return bad("--admin-tls needs --tls-cert and --tls-key (it serves that certificate)");
        }
        if !self.admin && (self.admin_client_auth != ClientAuth::None || self.admin_allow_plaintext)
        {
            return bad("--admin-tls-client-auth and --admin-tls-allow-plaintext need --admin-tls");
        }
        if self.admin_client_auth != ClientAuth::None && self.ca.is_none() {
            return bad("--admin-tls-client-auth want|need needs --tls-ca");
        }
        if self.peer_verify_id && !self.peer_tls() {
            return bad("--peer-tls-verify-id needs peer TLS (--peer-tls-cert)");
        }
        if self.peer_secret.as_deref().is_some_and(|s| s.len() < 16) {
            return bad("the peer secret must be at least 16 characters");
        }
        Ok(())
    }

    /// The client port's rustls config, if TLS is on there.
    pub fn client_port_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(Some(server_config(
                cert,
                key,
                self.ca.as_deref(),
                self.client_auth,
            )?)),
            _ => Ok(None),
        }
    }

    /// The admin port's rustls config (the client port's certificate, ALPN
    /// `http/1.1`: the admin server speaks HTTP/1.1), if admin TLS is on.
    pub fn admin_port_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
        match (&self.cert, &self.key, self.admin) {
            (Some(cert), Some(key), true) => Ok(Some(server_config_alpn(
                cert,
                key,
                self.ca.as_deref(),
                self.admin_client_auth,
                &[b"http/1.1"],
            )?)),
            _ => Ok(None),
        }
    }

    /// The client port's files (certificate, key, CA): what a reload watches.
    pub fn client_files(&self) -> Vec<PathBuf> {
        [&self.cert, &self.key, &self.ca]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The peer port's files (certificate, key, CA).
    pub fn peer_files(&self) -> Vec<PathBuf> {
        [&self.peer_cert, &self.peer_key, &self.peer_ca]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The peer port's rustls config (client certificates required), if peer TLS is on.
    pub fn peer_port_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
        match (&self.peer_cert, &self.peer_key, &self.peer_ca) {
            (Some(cert), Some(key), Some(ca)) => {
                Ok(Some(server_config(cert, key, Some(ca), ClientAuth::Need)?))
            }
            _ => Ok(None),
        }
    }

    /// How this node dials its peers over mutual TLS (our certificate, the peer CA,
    /// the name to verify, whether the answering server's id is checked), if on.
    pub fn peer_dial_config(&self) -> Result<Option<super::dial::PeerDialer>, TlsError> {
        let (Some(cert), Some(key), Some(ca)) = (&self.peer_cert, &self.peer_key, &self.peer_ca)
        else {
            return Ok(None);
        };
        let mut roots = rustls::RootCertStore::empty();
        for c in load_certs(ca)? {
            roots.add(c).map_err(|e| TlsError::Rustls(e.to_string()))?;
        }
        let config = super::dial::client_config(roots, load_certs(cert)?, load_key(key)?)?;
        Ok(Some(super::dial::PeerDialer::new(
            config,
            self.peer_server_name.clone(),
            self.peer_verify_id,
        )))
    }
}

fn read_secret(path: &Path) -> Result<String, TlsError> {
    let text = std::fs::read_to_string(path).map_err(|e| TlsError::Pem {
        what: "peer secret",
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(TlsError::Empty {
            what: "peer secret",
            path: path.to_path_buf(),
        });
    }
    Ok(secret)
}

/// The rustls provider: `ring` (builds with a C compiler only: no cmake, no system
/// OpenSSL).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |e: rustls_pki_types::pem::Error| TlsError::Pem {
        what: "certificates",
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what: "certificate",
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        what: "private key",
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A rustls server config: our certificate, client certificates per `auth` checked
/// against `ca`, ALPN `h2` (tonic's client insists on it; other clients send none).
pub fn server_config(
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
    auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config_alpn(cert, key, ca, auth, &[b"h2"])
}

/// [`server_config`] with the given ALPN protocols.
fn server_config_alpn(
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
    auth: ClientAuth,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let rustls_err = |e: rustls::Error| TlsError::Rustls(e.to_string());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?;
    let builder = match (auth, ca) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(TlsError::Invalid(
                "client certificates need a CA (--tls-ca)".into(),
            ))
        }
        (want_or_need, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c).map_err(rustls_err)?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let v = if want_or_need == ClientAuth::Want {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder
                .with_client_cert_verifier(v.build().map_err(|e| TlsError::Rustls(e.to_string()))?)
        }
    };
    let mut config = builder
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(rustls_err)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Args;

    #[test]
    fn tls_table_and_flags_load_and_bad_combinations_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "  0123456789abcdef-peers \n").expect("write");
        let file = dir.path().join("zk.toml");
        std::fs::write(
            &file,
            format!(
                "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nca = \"ca.pem\"\nclient_auth = \"want\"\npeer_secret_file = {:?}\nadmin = true\nadmin_client_auth = \"want\"\nreload_interval_ms = 250\n",
                secret.display().to_string()
            ),
        )
        .expect("write");
        let c = Args {
            config: Some(file.clone()),
            tls: TlsArgs {
                tls_client_auth: Some(ClientAuth::Need),
                admin_tls_client_auth: Some(ClientAuth::Need),
                admin_tls_allow_plaintext: true,
                ..TlsArgs::default()
            },
            ..Args::default()
        }
        .into_config()
        .expect("config");
        assert_eq!(c.tls.cert, Some(PathBuf::from("c.pem")));
        assert_eq!(c.tls.client_auth, ClientAuth::Need, "flags win");
        assert_eq!(c.tls.peer_secret.as_deref(), Some("0123456789abcdef-peers"));
        assert!(c.tls.admin && c.tls.admin_allow_plaintext);
        assert_eq!(c.tls.admin_client_auth, ClientAuth::Need, "flags win");
        assert_eq!(c.tls.reload_interval_ms, 250);
        assert_eq!(
            TlsSettings::default().reload_interval_ms,
            DEFAULT_RELOAD_INTERVAL_MS
        );
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "secret in Debug"
        );

        let bad = [
            TlsSettings {
                cert: Some("c".into()),
                ..TlsSettings::default()
            },
            TlsSettings {
                cert: Some("c".into()),
                key: Some("k".into()),
                client_auth: ClientAuth::Need,
                ..TlsSettings::default()
            },
            TlsSettings {
                allow_plaintext: true,
                ..TlsSettings::default()
            },
            TlsSettings {
                peer_cert: Some("c".into()),
                peer_key: Some("k".into()),
                ..TlsSettings::default()
            },
            TlsSettings {
                peer_secret: Some("short".into()),
                ..TlsSettings::default()
            },
            TlsSettings {
                admin: true,
                ..TlsSettings::default()
            },
            TlsSettings {
                cert: Some("c".into()),
                key: Some("k".into()),
                admin_allow_plaintext: true,
                ..TlsSettings::default()
            },
            TlsSettings {
                cert: Some("c".into()),
                key: Some("k".into()),
                admin: true,
                admin_client_auth: ClientAuth::Need,
                ..TlsSettings::default()
            },
            TlsSettings {
                peer_verify_id: true,
                ..TlsSettings::default()
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
        std::fs::write(&file, "[tls]\nnope = 1\n").expect("write");
        let e = Args {
            config: Some(file),
            ..Args::default()
        }
        .into_config()
        .expect_err("unknown key");
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
