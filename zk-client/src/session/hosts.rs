//! Connect strings (`host:port,host:port/chroot`) and the rotation over their servers.

use crate::error::Error;

/// The port used when a host has none.
pub(crate) const DEFAULT_PORT: u16 = 2181;

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectString {
    /// `host:port` entries, in the given order.
    pub(crate) hosts: Vec<String>,
    /// The chroot suffix, if any (`/app`); validated later.
    pub(crate) chroot: Option<String>,
}

fn bad(s: &str, why: &str) -> Error {
    Error::bad_arguments("connect", s, why)
}

/// Parses `"h1:2181,h2:2182/app"`: comma-separated hosts (default port 2181; IPv6 in
/// brackets, `[::1]:2181`), optionally followed by a chroot path.
pub(crate) fn parse(s: &str) -> Result<ConnectString, Error> {
    let s = s.trim();
    let (hosts_part, chroot) = match s.find('/') {
        Some(i) => (&s[..i], Some(s[i..].to_string())),
        None => (s, None),
    };
    let mut hosts = Vec::new();
    for raw in hosts_part.split(',') {
        let h = raw.trim();
        if h.is_empty() {
            continue;
        }
        hosts.push(with_port(h).ok_or_else(|| bad(s, "malformed host (expected host:port)"))?);
    }
    if hosts.is_empty() {
        return Err(bad(s, "no servers in the connect string"));
    }
    Ok(ConnectString { hosts, chroot })
}

fn with_port(h: &str) -> Option<String> {
    if let Some(rest) = h.strip_prefix('[') {
        // [v6] or [v6]:port
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        return match after {
            "" => Some(format!("{h}:{DEFAULT_PORT}")),
            p => p
                .strip_prefix(':')?
                .parse::<u16>()
                .ok()
                .map(|_| h.to_string()),
        };
    }
    match h.rsplit_once(':') {
        None => Some(format!("{h}:{DEFAULT_PORT}")),
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            port.parse::<u16>().ok().map(|_| h.to_string())
        }
        _ => None,
    }
}

/// Round-robin over the servers: each reconnect goes to the next one.
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    list: Vec<String>,
    next: usize,
}

impl Hosts {
    /// `list` must not be empty (as [`parse`] guarantees).
    pub(crate) fn new(list: Vec<String>) -> Self {
        Hosts { list, next: 0 }
    }

    /// Shuffles the order (spreads many clients over an ensemble).
    pub(crate) fn shuffle(&mut self) {
        use rand::seq::SliceRandom;
        crate::random::with_rng(|r| self.list.shuffle(r));
    }

    /// The server to try next; advances the rotation.
    pub(crate) fn next_host(&mut self) -> String {
        if self.list.is_empty() {
            return format!("127.0.0.1:{DEFAULT_PORT}");
        }
        let h = self.list[self.next % self.list.len()].clone();
        self.next = (self.next + 1) % self.list.len();
        h
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_chroot() {
        let c = parse("127.0.0.1:2181,127.0.0.1:2182/app").expect("valid");
        assert_eq!(c.hosts, vec!["127.0.0.1:2181", "127.0.0.1:2182"]);
        assert_eq!(c.chroot.as_deref(), Some("/app"));
        let c = parse(" zk1, zk2:3000 ").expect("valid");
        assert_eq!(c.hosts, vec!["zk1:2181", "zk2:3000"]);
        assert_eq!(c.chroot, None);
        let c = parse("[::1]:2181,[::1]/a/b").expect("valid");
        assert_eq!(c.hosts, vec!["[::1]:2181", "[::1]:2181"]);
        assert_eq!(c.chroot.as_deref(), Some("/a/b"));
        assert_eq!(parse("h:1/").expect("valid").chroot.as_deref(), Some("/"));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            " , ",
            "/app",
            "h:notaport",
            "h:99999",
            "::1",
            "[::1",
            "[::1]x",
        ] {
            assert!(parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn rotates() {
        let mut h = Hosts::new(vec!["a:1".into(), "b:2".into()]);
        assert_eq!(h.next_host(), "a:1");
        assert_eq!(h.next_host(), "b:2");
        assert_eq!(h.next_host(), "a:1");
        assert_eq!(h.len(), 2);
        h.shuffle();
        assert_eq!(h.len(), 2);
    }
}
