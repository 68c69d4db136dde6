//! How calls reach the server: straight onto the connection's request stream from the
//! caller's own task while the session is connected and nothing is queued for the
//! session task, and through the session task otherwise.
//!
//! Ordering invariant (FIFO client order), enforced here: every write, by a caller or by
//! the session task, assigns its xid, writes and records the pending entry under the
//! one [`Wire`] lock, so the stream order is the xid order is the pending order. A caller
//! writes directly only when no command is queued for the task (`queued == 0`): a
//! command that must go through the task (a close, a persistent-watch removal, or
//! anything sent while disconnected) keeps every later request behind it. The task
//! counts a command as handled only after writing it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::time::Instant;
use zk_proto::pb::{self, client_message, request::Op};

use super::pending::{Entry, Kind, Pending};
use super::Command;

/// The session's write side, shared by the task and every caller.
#[derive(Debug)]
pub(crate) struct Wire {
    /// The connected stream callers may write to directly; `None` while disconnected,
    /// closing or ended (calls then go through the task).
    direct: Option<mpsc::UnboundedSender<pb::ClientMessage>>,
    /// Commands sent to the task and not handled yet: while any are, calls queue too.
    queued: usize,
    next_xid: i64,
    /// Requests written on the current connection and not answered yet.
    pub(crate) pending: Pending,
    /// When the last request was written (the heartbeat pings after idle time).
    pub(crate) last_sent: Instant,
    /// Every `add_auth` sent: identities belong to a connection, so they are sent again,
    /// first, after a reconnect (as ZooKeeper's client does).
    pub(crate) auths: Vec<pb::AddAuthRequest>,
}

impl Wire {
    pub(crate) fn new() -> Self {
        Wire {
            direct: None,
            queued: 0,
            next_xid: 1,
            pending: Pending::default(),
            last_sent: Instant::now(),
            auths: Vec::new(),
        }
    }

    pub(crate) fn next_xid(&mut self) -> i64 {
        let xid = self.next_xid;
        self.next_xid = if xid >= i64::MAX - 1 { 1 } else { xid + 1 };
        xid
    }

    /// Writes a request on `stream` and records it as pending. `false` if the stream is
    /// gone (the entry stays pending and fails with the connection).
    pub(crate) fn write(
        &mut self,
        stream: &mpsc::UnboundedSender<pb::ClientMessage>,
        xid: i64,
        op: Op,
        kind: Kind,
    ) -> bool {
        let now = Instant::now();
        let msg = pb::ClientMessage {
            kind: Some(client_message::Kind::Request(pb::Request {
                xid,
                op: Some(op),
            })),
        };
        let ok = stream.send(msg).is_ok();
        self.pending.push(Entry {
            xid,
            sent_at: now,
            kind,
        });
        self.last_sent = now;
        ok
    }

    /// Writes a caller's request with the next xid (remembering an `add_auth`).
    pub(crate) fn request(
        &mut self,
        stream: &mpsc::UnboundedSender<pb::ClientMessage>,
        op: Op,
        kind: Kind,
    ) -> bool {
        if let Op::AddAuth(a) = &op {
            if !self.auths.contains(a) {
                self.auths.push(a.clone());
            }
        }
        let xid = self.next_xid();
        self.write(stream, xid, op, kind)
    }

    /// Callers may now write to `stream` directly (the session is attached on it).
    pub(crate) fn open(&mut self, stream: &mpsc::UnboundedSender<pb::ClientMessage>) {
        self.direct = Some(stream.clone());
    }

    /// Calls go through the task from now on (disconnected, closing or ended).
    pub(crate) fn shut(&mut self) {
        self.direct = None;
    }

    /// The task handled one queued command (after writing it, if it wrote anything).
    pub(crate) fn handled(&mut self) {
        self.queued = self.queued.saturating_sub(1);
    }
}

/// Locks the wire; a panic elsewhere while holding it leaves plain data, still usable.
pub(crate) fn lock(wire: &Mutex<Wire>) -> MutexGuard<'_, Wire> {
    wire.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The task is gone: the command could not be queued.
#[derive(Debug)]
pub(crate) struct Gone;

/// What callers hold to reach the session (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    commands: mpsc::UnboundedSender<Command>,
    wire: Arc<Mutex<Wire>>,
}

impl Sender {
    pub(crate) fn new(commands: mpsc::UnboundedSender<Command>, wire: Arc<Mutex<Wire>>) -> Self {
        Sender { commands, wire }
    }

    /// Writes a request now if the session is connected and nothing is queued before it;
    /// otherwise hands the command to the session task, in order.
    pub(crate) fn send(&self, cmd: Command) -> Result<(), Gone> {
        let mut w = lock(&self.wire);
        let cmd = match cmd {
            Command::Request { op, watch, reply } if w.queued == 0 && w.direct.is_some() => {
                if let Some(stream) = w.direct.take() {
                    // A write to a stream that just broke stays pending: the task sees
                    // the connection end and fails it with ConnectionLoss.
                    let _ = w.request(&stream, op, Kind::Request { reply, watch });
                    w.direct = Some(stream);
                }
                return Ok(());
            }
            cmd => cmd,
        };
        // Queued under the lock, so no direct write can overtake it.
        self.commands.send(cmd).map_err(|_| Gone)?;
        w.queued += 1;
        Ok(())
    }
}
