//! The shared peer secret (`--peer-secret-file`): every peer RPC carries it in a
//! metadata header and the peer service refuses, with `Unauthenticated`, any call
//! whose header is missing or differs (compared in constant time). Without it, anyone
//! who reaches the peer port could vote, append entries or change the membership
//! (ZooKeeper's CVE-2023-44981 class). The secret travels with every call: on an
//! untrusted network combine it with peer TLS, or use peer mutual TLS alone.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::metadata::AsciiMetadataValue;
use tonic::{Request, Status};

/// The metadata header that carries the secret.
pub const HEADER: &str = "x-zk-peer-secret";

/// The secret to send and expect; `None` when peer-secret authentication is off.
#[derive(Clone, Default)]
pub struct PeerSecret(Option<Arc<AsciiMetadataValue>>);

impl std::fmt::Debug for PeerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "PeerSecret(set)"
        } else {
            "PeerSecret(off)"
        })
    }
}

impl PeerSecret {
    /// From the configured secret; an error if it cannot travel as a header (it must
    /// be printable ASCII).
    pub fn new(secret: Option<&str>) -> Result<PeerSecret, super::TlsError> {
        match secret {
            None => Ok(PeerSecret(None)),
            Some(s) => AsciiMetadataValue::try_from(s)
                .map(|v| PeerSecret(Some(Arc::new(v))))
                .map_err(|_| {
                    super::TlsError::Invalid("the peer secret must be printable ASCII".into())
                }),
        }
    }

    /// Adds the secret to an outgoing peer call.
    pub fn attach<T>(&self, req: &mut Request<T>) {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(HEADER, (**v).clone());
        }
    }

    /// The peer service's interceptor: passes every call when no secret is set,
    /// otherwise only those carrying it.
    pub fn check(&self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.0 else {
            return Ok(req);
        };
        let ok = req
            .metadata()
            .get(HEADER)
            .is_some_and(|got| bool::from(got.as_bytes().ct_eq(expected.as_bytes())));
        if ok {
            Ok(req)
        } else {
            tracing::warn!(
                remote = ?req.remote_addr(),
                "peer call refused: missing or wrong peer secret"
            );
            Err(Status::unauthenticated("peer secret missing or wrong"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secret_passes() {
        let s = PeerSecret::new(Some("0123456789abcdef")).expect("secret");
        let mut good = Request::new(());
        s.attach(&mut good);
        assert!(s.check(good).is_ok());
        assert!(s.check(Request::new(())).is_err());
        let wrong = PeerSecret::new(Some("0123456789abcdeX")).expect("secret");
        let mut bad = Request::new(());
        wrong.attach(&mut bad);
        assert_eq!(
            s.check(bad).map(|_| ()).map_err(|e| e.code()),
            Err(tonic::Code::Unauthenticated)
        );
        assert!(PeerSecret::default().check(Request::new(())).is_ok());
        assert!(PeerSecret::new(Some("bad\nsecret")).is_err());
    }
}
