//! The `ZooKeeper.Session` gRPC service: one bidirectional stream per connection,
//! served by a [`crate::session::conn`] task.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use zk_proto::pb::{self, zoo_keeper_server::ZooKeeper, ServerMessage};

use crate::pipeline::Pipeline;
use crate::session::conn;
use crate::session::outbound::{Outbound, DEFAULT_LIMIT};

/// The native client service.
pub struct SessionService {
    pipeline: Arc<Pipeline>,
}

impl SessionService {
    /// A service over this node's pipeline.
    pub fn new(pipeline: Arc<Pipeline>) -> SessionService {
        SessionService { pipeline }
    }
}

/// The server half of a session stream.
pub type SessionStream =
    Pin<Box<dyn Stream<Item = Result<ServerMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ZooKeeper for SessionService {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::ClientMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
        let inbound = request.into_inner();
        let out = Outbound::new(DEFAULT_LIMIT);
        tokio::spawn(conn::serve(self.pipeline.clone(), inbound, out.clone()));
        Ok(Response::new(Box::pin(out.stream().map(Ok))))
    }
}
