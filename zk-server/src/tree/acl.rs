//! ZooKeeper's ACL model, pure: permission bits, identities, the check an apply or a
//! read makes, and the validation and `auth` expansion of a new ACL (ZooKeeper's
//! `fixupACL`). Schemes: `world:anyone`, `auth`, `digest` (`user:base64(sha1(user:pw))`)
//! `ip` (an address or a CIDR, IPv4 or IPv6) and `x509` (a client certificate's subject
//! DN, RFC 2253 form as Java's `X500Principal.getName()`, proven by mutual TLS).
//!
//! A session's identities (`Id`s) are decided by its connection (`addauth`, the client
//! address) and stamped on every write it sends, so every replica decides the same.
//! The identity `super:` (see [`super_id`]) passes every check.

use std::net::IpAddr;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// ZooKeeper's `Perms`.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 1 << 1;
    pub const CREATE: i32 = 1 << 2;
    pub const DELETE: i32 = 1 << 3;
    pub const ADMIN: i32 = 1 << 4;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// An identity: `scheme:id` (`digest:alice:HASH`, `ip:127.0.0.1`, `super:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    /// `scheme:id`.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }
}

/// One ACL entry: permission bits for the identities matching `scheme:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Acl {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

impl Acl {
    /// An entry.
    pub fn new(perms: i32, scheme: impl Into<String>, id: impl Into<String>) -> Acl {
        Acl {
            perms,
            scheme: scheme.into(),
            id: id.into(),
        }
    }
}

/// `world:anyone` with every permission: the default ACL.
pub fn open() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

/// A node's ACL, shared between all the nodes that have the same one (most have the
/// open ACL): one pointer per node instead of a list and two strings per entry.
/// (`Arc<Vec<_>>`, not `Arc<[_]>`: a thin pointer, 8 bytes per node instead of 16.)
pub type AclList = std::sync::Arc<Vec<Acl>>;

/// [`open`] as one shared list.
pub fn open_shared() -> AclList {
    static OPEN: std::sync::OnceLock<AclList> = std::sync::OnceLock::new();
    OPEN.get_or_init(|| AclList::new(open())).clone()
}

/// Distinct ACL lists in use, so nodes with equal ACLs share one allocation (as
/// ZooKeeper's ACL cache). Bounded: past [`AclCache::MAX`] distinct lists new ones are
/// simply not shared (still correct, only larger).
#[derive(Debug, Default, Clone)]
pub struct AclCache {
    lists: std::collections::HashSet<Interned>,
}

/// A list in the cache, looked up by its entries (`Arc<Vec<_>>` does not borrow as a
/// slice by itself). Hashes and compares as the slice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Interned(AclList);

impl std::borrow::Borrow<[Acl]> for Interned {
    fn borrow(&self) -> &[Acl] {
        &self.0
    }
}

impl AclCache {
    /// Most distinct lists kept for sharing.
    pub const MAX: usize = 4096;

    /// The shared list equal to `acl`.
    pub fn intern(&mut self, acl: &[Acl]) -> AclList {
        if let Some(shared) = self.lists.get(acl) {
            return shared.0.clone();
        }
        let list: AclList = AclList::new(acl.to_vec());
        if self.lists.len() < Self::MAX {
            self.lists.insert(Interned(list.clone()));
        }
        list
    }
}

/// The identity of the configured super user: passes every check.
pub fn super_id() -> Id {
    Id::new("super", "")
}

/// The identities a connection starts with, from its transport: `ip:<address>` and,
/// over mutual TLS, `x509:<subject DN>` (ZooKeeper's X509AuthenticationProvider).
pub fn connection_ids(addr: Option<std::net::SocketAddr>, x509: Option<&str>) -> Vec<Id> {
    let mut ids = Vec::with_capacity(2);
    if let Some(a) = addr {
        ids.push(Id::new("ip", a.ip().to_canonical().to_string()));
    }
    if let Some(dn) = x509 {
        ids.push(Id::new("x509", dn));
    }
    ids
}

/// ZooKeeper's digest of `user:password`: `user:base64(sha1("user:password"))`. `None`
/// without a `:`.
pub fn digest(user_password: &str) -> Option<String> {
    let (user, _) = user_password.split_once(':')?;
    let hash = Sha1::digest(user_password.as_bytes());
    Some(format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    ))
}

/// True if `ids` may do `perm` on a node with `acl` (ZooKeeper's `checkACL`): the
/// super user always, an empty ACL lets everyone, otherwise an entry granting `perm`
/// must match one of the identities.
pub fn allowed(acl: &[Acl], ids: &[Id], perm: i32) -> bool {
    if acl.is_empty() || ids.iter().any(|i| i.scheme == "super") {
        return true;
    }
    acl.iter()
        .filter(|a| a.perms & perm != 0)
        .any(|a| entry_matches(a, ids))
}

fn entry_matches(a: &Acl, ids: &[Id]) -> bool {
    match a.scheme.as_str() {
        "world" => a.id == "anyone",
        "ip" => ids
            .iter()
            .any(|i| i.scheme == "ip" && ip_matches(&a.id, &i.id)),
        _ => ids.iter().any(|i| i.scheme == a.scheme && i.id == a.id),
    }
}

/// A parsed `ip` ACL id: address and prefix length.
fn parse_cidr(s: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse::<u32>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((addr, bits))
}

/// True if the client address `client` is within the `ip` ACL id `pattern`.
fn ip_matches(pattern: &str, client: &str) -> bool {
    let (Some((net, bits)), Ok(addr)) = (parse_cidr(pattern), client.parse::<IpAddr>()) else {
        return false;
    };
    let addr = match (net, addr) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        _ => addr,
    };
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
        (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
        _ => false,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u32) -> bool {
    let full = (bits / 8) as usize;
    if a.get(..full) != b.get(..full) {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xFFu8 << (8 - rest);
    match (a.get(full), b.get(full)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

/// Validates a new ACL and expands `auth` to the caller's authenticated identities
/// (ZooKeeper's `fixupACL`); duplicates are removed. `Err` is the InvalidACL reason.
pub fn fixup(acl: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, String> {
    if acl.is_empty() {
        return Err("an ACL needs at least one entry".into());
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    let mut push = |a: Acl| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    for a in acl {
        match a.scheme.as_str() {
            "world" if a.id == "anyone" => push(a.clone()),
            "auth" => {
                // Only identities proven by authentication (digest, x509), as
                // ZooKeeper's `isAuthenticated`: not the client address, not the super
                // marker.
                let mut any = false;
                for i in ids
                    .iter()
                    .filter(|i| i.scheme == "digest" || i.scheme == "x509")
                {
                    any = true;
                    push(Acl::new(a.perms, i.scheme.clone(), i.id.clone()));
                }
                if !any {
                    return Err("scheme auth needs an authenticated identity (addauth)".into());
                }
            }
            "digest" if valid_digest(&a.id) => push(a.clone()),
            "ip" if parse_cidr(&a.id).is_some() => push(a.clone()),
            "x509" if !a.id.is_empty() => push(a.clone()),
            scheme => {
                return Err(format!("invalid ACL entry {scheme}:{}", a.id));
            }
        }
    }
    Ok(out)
}

fn valid_digest(id: &str) -> bool {
    matches!(id.split(':').collect::<Vec<_>>().as_slice(), [u, h] if !u.is_empty() && !h.is_empty())
}

/// ZooKeeper's getACL answer for a caller without ADMIN: digest ids lose their hash
/// (`user:x`), so the hashes cannot be attacked offline (CVE-2019-0201).
pub fn redacted(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.scheme == "digest" {
                let user = a.id.split(':').next().unwrap_or("");
                Acl::new(a.perms, "digest", format!("{user}:x"))
            } else {
                a.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_zookeepers() {
        // ZooKeeper's documented example: super:test.
        assert_eq!(
            digest("super:test").as_deref(),
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        assert_eq!(digest("nocolon"), None);
    }

    #[test]
    fn checks() {
        let alice = Id::new("digest", digest("alice:pw").expect("d"));
        let acl = vec![
            Acl::new(perms::READ, "world", "anyone"),
            Acl::new(perms::ALL, "digest", alice.id.clone()),
        ];
        assert!(allowed(&acl, &[], perms::READ));
        assert!(!allowed(&acl, &[], perms::WRITE));
        assert!(allowed(&acl, std::slice::from_ref(&alice), perms::WRITE));
        assert!(allowed(&acl, &[super_id()], perms::ADMIN));
        assert!(allowed(&[], &[], perms::ADMIN));
        let ip = vec![Acl::new(perms::ALL, "ip", "10.0.0.0/8")];
        assert!(allowed(&ip, &[Id::new("ip", "10.1.2.3")], perms::READ));
        assert!(!allowed(&ip, &[Id::new("ip", "127.0.0.1")], perms::READ));
        assert!(allowed(
            &ip,
            &[Id::new("ip", "::ffff:10.1.2.3")],
            perms::READ
        ));
        let v6 = vec![Acl::new(perms::ALL, "ip", "fe80::/10")];
        assert!(allowed(&v6, &[Id::new("ip", "fe80::1")], perms::READ));
        assert!(!allowed(&v6, &[Id::new("ip", "::1")], perms::READ));
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("0.0.0.0/0", "1.2.3.4"));
    }

    #[test]
    fn fixup_validates_and_expands() {
        let alice = Id::new("digest", "alice:h");
        let ids = [Id::new("ip", "127.0.0.1"), alice.clone(), super_id()];
        let got = fixup(&[Acl::new(perms::ALL, "auth", "")], &ids).expect("ok");
        assert_eq!(got, vec![Acl::new(perms::ALL, "digest", "alice:h")]);
        for bad in [
            Acl::new(perms::ALL, "auth", ""),
            Acl::new(perms::ALL, "world", "someone"),
            Acl::new(perms::ALL, "digest", "nohash"),
            Acl::new(perms::ALL, "ip", "300.1.1.1"),
            Acl::new(perms::ALL, "ip", "10.0.0.0/33"),
            Acl::new(perms::ALL, "x509", ""),
            Acl::new(perms::ALL, "super", ""),
        ] {
            assert!(fixup(std::slice::from_ref(&bad), &[]).is_err(), "{bad:?}");
        }
        assert!(fixup(&[], &ids).is_err());
        let cert = Id::new("x509", "CN=app,O=Example");
        let got = fixup(
            &[Acl::new(perms::READ, "auth", "")],
            std::slice::from_ref(&cert),
        )
        .expect("x509");
        assert_eq!(got, vec![Acl::new(perms::READ, "x509", "CN=app,O=Example")]);
        assert!(allowed(&got, &[cert], perms::READ));
        assert!(!allowed(&got, &[Id::new("x509", "CN=other")], perms::READ));
        assert_eq!(
            redacted(&[Acl::new(1, "digest", "bob:abc=")]),
            vec![Acl::new(1, "digest", "bob:x")]
        );
    }
}
