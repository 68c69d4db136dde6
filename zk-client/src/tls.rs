//! [`TlsOptions`]: connect to a server's TLS client port (`zk-server --tls-cert ...`),
//! optionally presenting a client certificate (mutual TLS; the server then knows the
//! session as `x509:<subject DN>` for ACLs).

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::error::{Error, Result};

/// TLS settings of a client: the CA that signed the servers' certificates, an optional
/// client certificate and key, and the name to verify (default: each server's host).
///
/// ```no_run
/// # async fn f() -> zk_client::Result<()> {
/// use zk_client::{Client, TlsOptions};
/// let tls = TlsOptions::from_ca_file("ca.pem")?
///     .client_cert_files("client.pem", "client-key.pem")?;
/// let zk = Client::builder().servers("zk1:2181").tls(tls).connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsOptions {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("client_cert", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::bad_arguments(
            "tls",
            &path.display().to_string(),
            &format!("cannot read {what}: {e}"),
        )
    })
}

impl TlsOptions {
    /// Trust servers whose certificates chain to these CA certificates (PEM).
    pub fn from_ca_pem(ca_pem: impl Into<Vec<u8>>) -> TlsOptions {
        TlsOptions {
            ca_pem: ca_pem.into(),
            identity: None,
            server_name: None,
        }
    }

    /// [`TlsOptions::from_ca_pem`] from a file.
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<TlsOptions> {
        Ok(Self::from_ca_pem(read(path.as_ref(), "CA certificates")?))
    }

    /// Present this client certificate chain and private key (PEM): mutual TLS.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((cert.into(), key.into()));
        self
    }

    /// [`TlsOptions::client_cert_pem`] from files.
    pub fn client_cert_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsOptions> {
        let cert = read(cert.as_ref(), "client certificate")?;
        let key = read(key.as_ref(), "client key")?;
        Ok(self.client_cert_pem(cert, key))
    }

    /// Verify this name in the servers' certificates instead of each server's host.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// tonic's form.
    pub(crate) fn to_tonic(&self) -> ClientTlsConfig {
        let mut c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            c = c.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            c = c.domain_name(name.clone());
        }
        c
    }
}
