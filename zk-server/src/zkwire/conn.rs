//! One ZooKeeper-protocol connection: jute frames in, the native session task in the
//! middle, jute frames out.
//!
//! - The reader half is a stream ([`Frames`]) polled by the session task
//!   ([`crate::session::conn::serve`]) itself: it decodes each frame into a native
//!   request (same xid), queuing the request's `Pending` entry (how to encode its
//!   reply) for the writer first. No task hop between the socket and the session.
//! - The writer half reads the session's ordered outbound queue (replies and watch
//!   events, already in ZooKeeper's order) and encodes each message. Replies come back
//!   in request order, so the pending entries are consumed front to back.
//!
//! A frame longer than `max_frame_bytes`, or a header that cannot be decoded, closes
//! this connection (logged); a malformed body gets MarshallingError. Neither touches
//! other connections.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tonic::Status;
use zk_proto::pb::{self, client_message::Kind as In, server_message::Kind as OutKind};

use super::jute::{ConnectRequest, ConnectResponse, Reader};
use super::translate::{self, After, AuthInfo, Reply};
use crate::admin::metrics::{ConnStats, Metrics};
use crate::pipeline::Pipeline;
use crate::session::conn as session_conn;
use crate::session::outbound::Outbound;

/// How long a new connection may take to send its ConnectRequest.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection was closed while reading.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The length prefix exceeds the limit (or is negative).
    #[error("frame of {len} bytes exceeds the limit of {max} bytes (--max-frame-bytes)")]
    TooLarge {
        /// The announced length.
        len: i64,
        /// The limit.
        max: usize,
    },
    /// The socket failed or closed inside a frame.
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one length-prefixed frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut buf = Vec::new();
    Ok(read_frame_into(rd, max, &mut buf).await?.then_some(buf))
}

/// Reads one length-prefixed frame into `buf` (replacing its contents, reusing its
/// allocation); `Ok(false)` at a clean end of stream.
async fn read_frame_into<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    let mut len = [0u8; 4];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let len = i32::from_be_bytes(len);
    let n = usize::try_from(len)
        .ok()
        .filter(|n| *n <= max)
        .ok_or(FrameError::TooLarge {
            len: i64::from(len),
            max,
        })?;
    buf.clear();
    buf.resize(n, 0);
    rd.read_exact(buf).await?;
    Ok(true)
}

/// The reader half as the session task's inbound stream: the connect message, then one
/// native request per frame (its `Pending` entry queued for the writer before it is
/// yielded). Ends at the end of the socket or at a frame that closes the connection.
struct Frames<R> {
    rd: R,
    /// The frame being read, reused from frame to frame.
    buf: Vec<u8>,
    max: usize,
    peer: SocketAddr,
    auth: AuthInfo,
    pending: mpsc::UnboundedSender<Pending>,
    metrics: Arc<Metrics>,
    conn: Arc<ConnStats>,
    /// The translated ConnectRequest, yielded first.
    connect: Option<pb::ConnectRequest>,
}

impl<R: AsyncRead + Unpin + Send + 'static> Frames<R> {
    fn into_stream(self) -> impl futures::Stream<Item = Result<pb::ClientMessage, Status>> + Send {
        futures::stream::unfold(self, |mut f| async move {
            let msg = f.next_message().await?;
            Some((Ok(msg), f))
        })
    }

    /// The next message for the session task; None ends the connection.
    async fn next_message(&mut self) -> Option<pb::ClientMessage> {
        if let Some(c) = self.connect.take() {
            return Some(pb::ClientMessage {
                kind: Some(In::Connect(c)),
            });
        }
        let peer = self.peer;
        match read_frame_into(&mut self.rd, self.max, &mut self.buf).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e @ FrameError::TooLarge { .. }) => {
                self.metrics.bad_frames.fetch_add(1, Relaxed);
                tracing::warn!(%peer, "closing ZooKeeper connection: {e}");
                return None;
            }
            Err(e) => {
                tracing::debug!(%peer, "ZooKeeper connection ended: {e}");
                return None;
            }
        }
        let frame = &self.buf;
        self.metrics
            .bytes_in
            .fetch_add(4 + frame.len() as u64, Relaxed);
        let mut r = Reader::new(frame);
        let (xid, opcode) = match (r.int("xid"), r.int("type")) {
            (Ok(x), Ok(t)) => (x, t),
            _ => {
                self.metrics.bad_frames.fetch_add(1, Relaxed);
                tracing::info!(%peer, "closing ZooKeeper connection: frame shorter than a RequestHeader");
                return None;
            }
        };
        let body = frame.get(8..).unwrap_or_default();
        let decoded = translate::decode_request(xid, opcode, body, &mut self.auth);
        self.metrics.request_received(&self.conn);
        let pending = Pending {
            xid: decoded.request.xid,
            opcode,
            reply: decoded.reply,
            started: Instant::now(),
        };
        self.pending.send(pending).ok()?;
        Some(pb::ClientMessage {
            kind: Some(In::Request(decoded.request)),
        })
    }
}

/// How to answer one request.
#[derive(Debug)]
struct Pending {
    xid: i64,
    opcode: i32,
    reply: Reply,
    started: Instant,
}

/// Serves one ZooKeeper-protocol connection until either side ends it. `x509`: the
/// subject of the client's verified certificate (TLS), an `x509` identity for ACLs.
pub async fn serve<S>(p: Arc<Pipeline>, stream: S, peer: SocketAddr, x509: Option<&str>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let metrics = p.shared.metrics.clone();
    let guard = metrics.open_connection(peer, "zookeeper");
    let conn = guard.stats.clone();
    let max = p.config.max_frame_bytes;
    let (rd, wr) = tokio::io::split(stream);
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::new(wr);

    let first = match tokio::time::timeout(CONNECT_TIMEOUT, read_frame(&mut rd, max)).await {
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            metrics.bad_frames.fetch_add(1, Relaxed);
            tracing::info!(%peer, "closing ZooKeeper connection: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "no ConnectRequest in time; closing");
            return;
        }
    };
    metrics.bytes_in.fetch_add(4 + first.len() as u64, Relaxed);
    let connect = match ConnectRequest::decode(&first) {
        Ok(c) => c,
        Err(e) => {
            metrics.bad_frames.fetch_add(1, Relaxed);
            tracing::info!(%peer, "closing ZooKeeper connection: bad ConnectRequest: {e}");
            return;
        }
    };
    let read_only = connect.read_only.map(|_| false);

    let (pending_tx, mut pending_rx) = mpsc::unbounded_channel::<Pending>();
    let out = Outbound::with_limits(&p.config.limits, metrics.clone());
    let mut out_stream = Box::pin(out.stream());
    let native_connect = pb::ConnectRequest {
        session_id: connect.session_id,
        password: connect.password.clone(),
        timeout_ms: u32::try_from(connect.timeout_ms).unwrap_or(0),
        last_zxid_seen: connect.last_zxid_seen,
    };
    let mut auth: AuthInfo = vec![("ip".to_string(), peer.ip().to_string())];
    if let Some(dn) = x509 {
        auth.push(("x509".to_string(), dn.to_string()));
    }
    // The session task reads the socket itself (no reader task, no channel between):
    // the connect message first, then one decoded request per frame.
    let frames = Frames {
        rd,
        buf: Vec::new(),
        max,
        peer,
        auth,
        pending: pending_tx,
        metrics: metrics.clone(),
        conn: conn.clone(),
        connect: Some(native_connect),
    };
    let session = session_conn::serve(
        p.clone(),
        Box::pin(frames.into_stream()),
        out.clone(),
        crate::tree::acl::connection_ids(Some(peer), x509),
    );
    let mut queue: VecDeque<Pending> = VecDeque::new();
    // The writer, polled right after the session in the same task: a reply the session
    // queued is encoded and written in the same wakeup (no hop to a writer task).
    let writer = async {
        // The handshake reply comes first on the outbound queue.
        let connected = match out_stream.next().await {
            Some(pb::ServerMessage {
                kind: Some(OutKind::Connected(c)),
            }) => c,
            other => {
                tracing::debug!(%peer, ?other, "session refused without a ConnectResponse");
                out.close();
                return;
            }
        };
        let refused = connected.session_id == 0;
        let resp = ConnectResponse {
            timeout_ms: if refused {
                0
            } else {
                i32::try_from(connected.timeout_ms).unwrap_or(i32::MAX)
            },
            session_id: connected.session_id,
            password: if refused {
                Bytes::from_static(&[0u8; 16])
            } else {
                connected.password.clone()
            },
            read_only,
        };
        if write(&mut wr, &metrics, resp.encode()).await.is_err() || wr.flush().await.is_err() {
            out.close();
            return;
        }
        if refused {
            tracing::debug!(%peer, session = format!("{:#x}", connect.session_id), "told the client its session expired");
            out.close();
            let _ = wr.shutdown().await;
            return;
        }
        conn.session.store(connected.session_id, Relaxed);

        // One overflow future for the whole connection (registered once, not per write);
        // once it fires the loop ends, so it is never polled again.
        let overflow = out.overflow();
        tokio::pin!(overflow);
        'serve: while let Some(first) = out_stream.next().await {
            let mut next = Some(first);
            // Write everything already queued, then flush once.
            while let Some(msg) = next.take() {
                let (bytes, after) = match msg.kind {
                    Some(OutKind::Response(resp)) => {
                        let Some(pending) = take_pending(&mut queue, &mut pending_rx, resp.xid)
                        else {
                            tracing::error!(%peer, xid = resp.xid, "reply without a request; closing");
                            break 'serve;
                        };
                        let (bytes, after) = translate::encode_reply(&pending.reply, &resp);
                        let err = reply_err(&bytes);
                        metrics.request_done(
                            &conn,
                            translate::op_name(pending.opcode),
                            pending.started.elapsed(),
                            err,
                        );
                        (bytes, after)
                    }
                    Some(OutKind::Event(ev)) => {
                        metrics.packet_sent(&conn);
                        (translate::encode_event(&ev), After::Continue)
                    }
                    Some(OutKind::Connected(_)) | None => continue,
                };
                // A client that does not read blocks this write; overflow of its queue
                // (it is too slow) ends the connection instead of waiting forever.
                let written = tokio::select! {
                    r = write(&mut wr, &metrics, bytes) => r.is_ok(),
                    _ = &mut overflow => false,
                };
                if !written {
                    break 'serve;
                }
                if after == After::Close {
                    let _ = wr.flush().await;
                    break 'serve;
                }
                next = out_stream.next().now_or_never().flatten();
            }
            let flushed = tokio::select! {
                r = wr.flush() => r.is_ok(),
                _ = &mut overflow => false,
            };
            if !flushed {
                break;
            }
        }
        if out.overflowed() {
            tracing::info!(%peer, "closed a ZooKeeper connection whose client does not read its replies");
        } else {
            let _ = wr.shutdown().await;
        }
        out.close();
    };
    // Both end: the session when the queue closes, the writer when the client leaves
    // or the session ends (its queue closed and drained).
    futures::future::join(session, writer).await;
    // Requests never answered (connection cut) are no longer outstanding.
    pending_rx.close();
    while let Ok(p) = pending_rx.try_recv() {
        queue.push_back(p);
    }
    for _ in queue.drain(..) {
        metrics.outstanding.fetch_sub(1, Relaxed);
        conn.outstanding.fetch_sub(1, Relaxed);
    }
    drop(guard);
}

/// The pending entry for the reply with `xid`: replies come in request order, so it is
/// the oldest one; entries before it (none, unless the session task skipped a request)
/// are dropped.
fn take_pending(
    queue: &mut VecDeque<Pending>,
    rx: &mut mpsc::UnboundedReceiver<Pending>,
    xid: i64,
) -> Option<Pending> {
    loop {
        if queue.is_empty() {
            match rx.try_recv() {
                Ok(p) => queue.push_back(p),
                Err(_) => return None,
            }
        }
        let p = queue.pop_front()?;
        if p.xid == xid {
            return Some(p);
        }
        tracing::warn!(
            xid = p.xid,
            op = translate::op_name(p.opcode),
            "request left unanswered"
        );
    }
}

/// The err field of an encoded reply frame (for metrics).
fn reply_err(frame: &[u8]) -> i32 {
    let mut r = Reader::new(frame.get(16..).unwrap_or_default());
    r.int("err").unwrap_or(0)
}

async fn write<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    metrics: &Metrics,
    bytes: Bytes,
) -> std::io::Result<()> {
    metrics.bytes_out.fetch_add(bytes.len() as u64, Relaxed);
    wr.write_all(&bytes).await
}
