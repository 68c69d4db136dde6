//! Jute, Apache ZooKeeper's record encoding, and the records of its client protocol.
//!
//! Primitives are big-endian: `int` (4 bytes), `long` (8), `boolean` (1 byte, 0 or 1),
//! `buffer` and `ustring` (an `int` length, -1 for null, then the bytes; strings are
//! UTF-8), `vector<T>` (an `int` count, -1 for null, then the elements). A record is
//! its fields in order, with no tags. On the socket every packet is a 4-byte length
//! followed by that many bytes.
//!
//! [`Reader`] never panics and never allocates more than the input it was given: a
//! length or count larger than what is left is an error, not an allocation.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Why a record could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JuteError {
    /// The packet ended inside a field.
    #[error("record truncated: needed {needed} more bytes for {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// A field holds a value no ZooKeeper client sends.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field being read.
        field: &'static str,
        /// What was wrong.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> JuteError {
    JuteError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Reads jute fields from one packet's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], JuteError> {
        if self.buf.len() < n {
            return Err(JuteError::Truncated {
                field,
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// An `int`.
    pub fn int(&mut self, field: &'static str) -> Result<i32, JuteError> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `long`.
    pub fn long(&mut self, field: &'static str) -> Result<i64, JuteError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A `boolean` (any non-zero byte is true, as Java's `readBoolean`).
    pub fn boolean(&mut self, field: &'static str) -> Result<bool, JuteError> {
        Ok(self.take(1, field)?[0] != 0)
    }

    /// A length: -1 (null) reads as 0; other negatives and lengths past the end are
    /// errors.
    fn len(&mut self, field: &'static str, unit: usize) -> Result<usize, JuteError> {
        let n = self.int(field)?;
        if n == -1 {
            return Ok(0);
        }
        let n = usize::try_from(n).map_err(|_| invalid(field, format!("negative length {n}")))?;
        if n.saturating_mul(unit) > self.buf.len() {
            return Err(JuteError::Truncated {
                field,
                needed: n.saturating_mul(unit) - self.buf.len(),
            });
        }
        Ok(n)
    }

    /// A `buffer` (null reads as empty).
    pub fn buffer(&mut self, field: &'static str) -> Result<Bytes, JuteError> {
        let n = self.len(field, 1)?;
        Ok(Bytes::copy_from_slice(self.take(n, field)?))
    }

    /// A `ustring` (null reads as empty).
    pub fn ustring(&mut self, field: &'static str) -> Result<String, JuteError> {
        let n = self.len(field, 1)?;
        let b = self.take(n, field)?;
        String::from_utf8(b.to_vec()).map_err(|_| invalid(field, "not UTF-8"))
    }

    /// A `vector<ustring>` (null reads as empty).
    pub fn strings(&mut self, field: &'static str) -> Result<Vec<String>, JuteError> {
        // Every element takes at least 4 bytes: bounds the allocation by the input.
        let n = self.len(field, 4)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.ustring(field)?);
        }
        Ok(v)
    }

    /// A `vector<ACL>` (null reads as empty).
    pub fn acls(&mut self) -> Result<Vec<Acl>, JuteError> {
        let n = self.len("acl", 12)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(Acl {
                perms: self.int("acl.perms")?,
                scheme: self.ustring("acl.id.scheme")?,
                id: self.ustring("acl.id.id")?,
            });
        }
        Ok(v)
    }
}

/// The initial capacity of a framed packet's buffer.
const FRAME_CAPACITY: usize = 256;

/// Writes jute fields.
#[derive(Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// A writer that will produce one framed packet: call [`Writer::finish_frame`].
    pub fn framed() -> Writer {
        // Most replies (headers, stats, small values) fit: one allocation, no regrowth.
        let mut w = Writer {
            buf: BytesMut::with_capacity(FRAME_CAPACITY),
        };
        w.buf.put_i32(0);
        w
    }

    /// Fills in the length prefix of a [`Writer::framed`] packet and returns it.
    pub fn finish_frame(mut self) -> Bytes {
        let len = self.buf.len().saturating_sub(4);
        let len = i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes();
        if self.buf.len() >= 4 {
            self.buf[..4].copy_from_slice(&len);
        }
        self.buf.freeze()
    }

    /// The bytes written (unframed).
    pub fn into_bytes(self) -> Bytes {
        self.buf.freeze()
    }

    /// An `int`.
    pub fn int(&mut self, v: i32) -> &mut Self {
        self.buf.put_i32(v);
        self
    }

    /// A `long`.
    pub fn long(&mut self, v: i64) -> &mut Self {
        self.buf.put_i64(v);
        self
    }

    /// A `boolean`.
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.buf.put_u8(u8::from(v));
        self
    }

    fn length(&mut self, n: usize) {
        self.buf.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
    }

    /// A `buffer`.
    pub fn buffer(&mut self, v: &[u8]) -> &mut Self {
        self.length(v.len());
        self.buf.put_slice(v);
        self
    }

    /// A `ustring`.
    pub fn ustring(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }

    /// A `vector<ustring>`.
    pub fn strings<S: AsRef<str>>(&mut self, v: &[S]) -> &mut Self {
        self.length(v.len());
        for s in v {
            self.ustring(s.as_ref());
        }
        self
    }

    /// A `vector<ACL>`.
    pub fn acls(&mut self, v: &[Acl]) -> &mut Self {
        self.length(v.len());
        for a in v {
            self.int(a.perms).ustring(&a.scheme).ustring(&a.id);
        }
        self
    }

    /// A `Stat` record.
    pub fn stat(&mut self, s: &zk_proto::pb::Stat) -> &mut Self {
        self.long(s.czxid)
            .long(s.mzxid)
            .long(s.ctime)
            .long(s.mtime)
            .int(s.version)
            .int(s.cversion)
            .int(s.aversion)
            .long(s.ephemeral_owner)
            .int(s.data_length)
            .int(s.num_children)
            .long(s.pzxid)
    }

    /// A `ReplyHeader`.
    pub fn reply_header(&mut self, xid: i32, zxid: i64, err: i32) -> &mut Self {
        self.int(xid).long(zxid).int(err)
    }
}

/// An `ACL` record: permissions and an `Id` (scheme, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// `ZooDefs.Perms` bits.
    pub perms: i32,
    /// `world`, `digest`, `ip`, `auth`, ...
    pub scheme: String,
    /// Scheme-specific id (`anyone` for world).
    pub id: String,
}

/// All permissions (`ZooDefs.Perms.ALL`: read, write, create, delete, admin).
pub const PERMS_ALL: i32 = 31;

impl Acl {
    /// `world:anyone:cdrwa` (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
    pub fn open() -> Acl {
        Acl {
            perms: PERMS_ALL,
            scheme: "world".into(),
            id: "anyone".into(),
        }
    }
}

/// The first packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Always 0 in ZooKeeper 3.x.
    pub protocol_version: i32,
    /// The highest zxid the client has seen.
    pub last_zxid_seen: i64,
    /// Requested session timeout (ms).
    pub timeout_ms: i32,
    /// 0 for a new session.
    pub session_id: i64,
    /// The session password (reattach).
    pub password: Bytes,
    /// The trailing readOnly flag: `None` when the client did not send it (pre-3.4).
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    /// Decodes the packet body (without its length prefix).
    pub fn decode(body: &[u8]) -> Result<ConnectRequest, JuteError> {
        let mut r = Reader::new(body);
        let c = ConnectRequest {
            protocol_version: r.int("protocolVersion")?,
            last_zxid_seen: r.long("lastZxidSeen")?,
            timeout_ms: r.int("timeOut")?,
            session_id: r.long("sessionId")?,
            password: r.buffer("passwd")?,
            read_only: if r.remaining() > 0 {
                Some(r.boolean("readOnly")?)
            } else {
                None
            },
        };
        Ok(c)
    }

    /// Encodes it as one framed packet (used by tests).
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::framed();
        w.int(self.protocol_version)
            .long(self.last_zxid_seen)
            .int(self.timeout_ms)
            .long(self.session_id)
            .buffer(&self.password);
        if let Some(ro) = self.read_only {
            w.boolean(ro);
        }
        w.finish_frame()
    }
}

/// The server's answer to a [`ConnectRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Negotiated timeout; 0 means the session is expired (then `session_id` is 0).
    pub timeout_ms: i32,
    /// The session id.
    pub session_id: i64,
    /// The session password (16 zero bytes when refused).
    pub password: Bytes,
    /// The trailing readOnly flag; written only if the client sent one.
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// Encodes it as one framed packet.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::framed();
        w.int(0)
            .int(self.timeout_ms)
            .long(self.session_id)
            .buffer(&self.password);
        if let Some(ro) = self.read_only {
            w.boolean(ro);
        }
        w.finish_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = Writer::new();
        w.int(-7)
            .long(1 << 40)
            .boolean(true)
            .buffer(b"abc")
            .ustring("/a/ü")
            .strings(&["x", "yz"])
            .acls(&[Acl::open()]);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.int("i"), Ok(-7));
        assert_eq!(r.long("l"), Ok(1 << 40));
        assert_eq!(r.boolean("b"), Ok(true));
        assert_eq!(r.buffer("buf").as_deref(), Ok(&b"abc"[..]));
        assert_eq!(r.ustring("s").as_deref(), Ok("/a/ü"));
        assert_eq!(r.strings("v"), Ok(vec!["x".to_string(), "yz".to_string()]));
        assert_eq!(r.acls(), Ok(vec![Acl::open()]));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn null_and_bad_lengths() {
        let mut w = Writer::new();
        w.int(-1).int(-1).int(-2).int(1000);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.buffer("b").as_deref(), Ok(&b""[..]));
        assert_eq!(r.strings("v"), Ok(vec![]));
        assert!(matches!(r.ustring("s"), Err(JuteError::Invalid { .. })));
        assert!(matches!(r.ustring("s"), Err(JuteError::Truncated { .. })));
        // A huge vector count must not allocate.
        let mut w = Writer::new();
        w.int(i32::MAX);
        let bytes = w.into_bytes();
        assert!(Reader::new(&bytes).strings("v").is_err());
        assert!(Reader::new(&bytes).acls().is_err());
    }

    #[test]
    fn connect_request_with_and_without_read_only() {
        let c = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 42,
            timeout_ms: 30_000,
            session_id: 0x1234,
            password: Bytes::from_static(&[7; 16]),
            read_only: Some(false),
        };
        let framed = c.encode();
        assert_eq!(ConnectRequest::decode(&framed[4..]), Ok(c.clone()));
        let old = ConnectRequest {
            read_only: None,
            ..c
        };
        assert_eq!(ConnectRequest::decode(&old.encode()[4..]), Ok(old));
    }
}
