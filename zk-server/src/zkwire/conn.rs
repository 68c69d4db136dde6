//! One ZooKeeper-protocol connection: jute frames in, the native session task in the
//! middle, jute frames out.
//!
//! - The reader half decodes each frame into a native request (same xid) and feeds it
//!   to [`crate::session::conn::serve`] through a channel; before that it queues the
//!   request's `Pending` entry (how to encode its reply) for the writer.
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
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use zk_proto::pb::{self, client_message::Kind as In, server_message::Kind as OutKind};

use super::jute::{ConnectRequest, ConnectResponse, Reader};
use super::translate::{self, After, AuthInfo, Reply};
use crate::admin::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::session::conn as session_conn;
use crate::session::outbound::Outbound;

/// How long a new connection may take to send its ConnectRequest.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests decoded ahead of the session task (backpressure on the socket beyond).
const INBOUND_DEPTH: usize = 1024;

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
    let mut len = [0u8; 4];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
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
    let mut buf = vec![0u8; n];
    rd.read_exact(&mut buf).await?;
    Ok(Some(buf))
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

    let (tx, rx) = mpsc::channel::<Result<pb::ClientMessage, Status>>(INBOUND_DEPTH);
    let (pending_tx, mut pending_rx) = mpsc::unbounded_channel::<Pending>();
    let out = Outbound::with_limits(&p.config.limits, metrics.clone());
    let mut out_stream = Box::pin(out.stream());
    let native_connect = pb::ConnectRequest {
        session_id: connect.session_id,
        password: connect.password.clone(),
        timeout_ms: u32::try_from(connect.timeout_ms).unwrap_or(0),
        last_zxid_seen: connect.last_zxid_seen,
    };
    if tx
        .send(Ok(pb::ClientMessage {
            kind: Some(In::Connect(native_connect)),
        }))
        .await
        .is_err()
    {
        return;
    }
    let session_task = tokio::spawn(session_conn::serve(
        p.clone(),
        ReceiverStream::new(rx),
        out.clone(),
        crate::tree::acl::connection_ids(Some(peer), x509),
    ));

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

    let mut auth: AuthInfo = vec![("ip".to_string(), peer.ip().to_string())];
    if let Some(dn) = x509 {
        auth.push(("x509".to_string(), dn.to_string()));
    }
    let reader = tokio::spawn({
        let metrics = metrics.clone();
        let conn = conn.clone();
        async move {
            loop {
                let frame = match read_frame(&mut rd, max).await {
                    Ok(Some(f)) => f,
                    Ok(None) => return,
                    Err(e @ FrameError::TooLarge { .. }) => {
                        metrics.bad_frames.fetch_add(1, Relaxed);
                        tracing::warn!(%peer, "closing ZooKeeper connection: {e}");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(%peer, "ZooKeeper connection ended: {e}");
                        return;
                    }
                };
                metrics.bytes_in.fetch_add(4 + frame.len() as u64, Relaxed);
                let mut r = Reader::new(&frame);
                let (xid, opcode) = match (r.int("xid"), r.int("type")) {
                    (Ok(x), Ok(t)) => (x, t),
                    _ => {
                        metrics.bad_frames.fetch_add(1, Relaxed);
                        tracing::info!(%peer, "closing ZooKeeper connection: frame shorter than a RequestHeader");
                        return;
                    }
                };
                let body = frame.get(8..).unwrap_or_default();
                let decoded = translate::decode_request(xid, opcode, body, &mut auth);
                metrics.request_received(&conn);
                let pending = Pending {
                    xid: decoded.request.xid,
                    opcode,
                    reply: decoded.reply,
                    started: Instant::now(),
                };
                if pending_tx.send(pending).is_err() {
                    return;
                }
                let msg = pb::ClientMessage {
                    kind: Some(In::Request(decoded.request)),
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        }
    });

    let mut queue: VecDeque<Pending> = VecDeque::new();
    'serve: while let Some(first) = out_stream.next().await {
        let mut next = Some(first);
        // Write everything already queued, then flush once.
        while let Some(msg) = next.take() {
            let (bytes, after) = match msg.kind {
                Some(OutKind::Response(resp)) => {
                    let Some(pending) = take_pending(&mut queue, &mut pending_rx, resp.xid) else {
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
                _ = out.overflow() => false,
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
            _ = out.overflow() => false,
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
    reader.abort();
    out.close();
    let _ = session_task.await;
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
