//! Every peer call names its sender: a metadata header `id=address`, with the address
//! the ensemble knows that server by (its `--peers` entry, or the address it joined
//! with). The peer service refuses, with `FailedPrecondition`, a call whose sender it
//! knows (from its configuration or the membership) at another address: that caller
//! belongs to another ensemble whose configuration names this server's address (a
//! port reused on a busy machine, a stale address after a move). Without the check,
//! such a server answers the other ensemble's status queries, votes and appends, and
//! can be initialised into it or have its log overwritten by it.
//!
//! This guards against mistakes, not attackers: a call without the header, or from a
//! server id this one does not know yet (a member being added), passes. Authentication
//! is the peer secret's and peer TLS's job ([`crate::tls::peer_auth`]).

use std::sync::Arc;

use tonic::metadata::AsciiMetadataValue;
use tonic::{Request, Status};

use super::network::Peers;
use super::NodeId;

/// The metadata header that names the caller.
pub const HEADER: &str = "x-zk-peer-caller";

/// This node's name on its outgoing peer calls (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct Caller(Option<Arc<AsciiMetadataValue>>);

impl Caller {
    /// Server `id`, known to the ensemble at peer address `addr`. An address that cannot
    /// travel as a header is not sent (the calls then pass unchecked).
    pub fn new(id: NodeId, addr: &str) -> Caller {
        Caller(
            AsciiMetadataValue::try_from(format!("{id}={addr}"))
                .ok()
                .map(Arc::new),
        )
    }

    /// Adds the caller's name to an outgoing peer call.
    pub fn attach<T>(&self, req: &mut Request<T>) {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(HEADER, (**v).clone());
        }
    }
}

/// The peer service's check: refuses a call whose named sender `peers` knows at another
/// address, or whose header does not parse.
pub fn check(peers: &Peers, req: Request<()>) -> Result<Request<()>, Status> {
    let Some(value) = req.metadata().get(HEADER) else {
        return Ok(req);
    };
    let claimed = value
        .to_str()
        .ok()
        .and_then(|s| s.split_once('='))
        .and_then(|(id, addr)| Some((id.parse::<NodeId>().ok()?, addr.to_string())));
    let Some((id, addr)) = claimed else {
        return Err(Status::invalid_argument(format!(
            "malformed {HEADER} header (expected ID=HOST:PORT)"
        )));
    };
    match peers.address_of(id) {
        Some(known) if known != addr => {
            tracing::warn!(
                remote = ?req.remote_addr(),
                caller = id,
                caller_addr = %addr,
                known_addr = %known,
                "peer call refused: the caller is not the server {id} of this ensemble (another ensemble names this server's address?)"
            );
            Err(Status::failed_precondition(format!(
                "caller claims to be server {id} at {addr}, but this ensemble's server {id} is at {known}"
            )))
        }
        _ => Ok(req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_from(c: &Caller) -> Request<()> {
        let mut r = Request::new(());
        c.attach(&mut r);
        r
    }

    #[test]
    fn a_known_id_at_another_address_is_refused() {
        let peers = Peers::new();
        peers.learn(1, "127.0.0.1:5001");
        peers.learn(2, "127.0.0.1:5002");
        let code = |r: Result<Request<()>, Status>| r.map(|_| ()).map_err(|e| e.code());
        assert!(check(&peers, call_from(&Caller::new(1, "127.0.0.1:5001"))).is_ok());
        assert_eq!(
            code(check(&peers, call_from(&Caller::new(1, "127.0.0.1:6001")))),
            Err(tonic::Code::FailedPrecondition)
        );
        // An id not known yet (a server being added) and a call without the header pass.
        assert!(check(&peers, call_from(&Caller::new(4, "127.0.0.1:5004"))).is_ok());
        assert!(check(&peers, Request::new(())).is_ok());
        let mut bad = Request::new(());
        bad.metadata_mut()
            .insert(HEADER, AsciiMetadataValue::from_static("nonsense"));
        assert_eq!(code(check(&peers, bad)), Err(tonic::Code::InvalidArgument));
    }
}
