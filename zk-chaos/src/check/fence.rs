//! Lock safety: the fenced resource's own log of accepted writes.
//!
//! Every lock-protected increment appends one entry to the resource (a sequential child
//! holding the writer's fencing token and the counter value it wrote), in the same
//! atomic write as the increment. Read back in commit order, that log must show what a
//! correct fenced lock guarantees: tokens never go down (the resource never accepted a
//! write from a holder older than one it had already accepted), and the increments form
//! the chain 1, 2, 3, ... (none lost, none applied twice), ending at the counter's value.

use serde::Serialize;

/// One write the fenced resource accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FenceEntry {
    /// Its place in commit order (the sequential suffix).
    pub seq: u64,
    /// The writer's fencing token.
    pub token: u64,
    /// The counter value it wrote.
    pub value: u64,
}

impl FenceEntry {
    /// Parses a log child: name `w-<seq>` (10 digits), data `<token>:<value>`.
    pub fn parse(name: &str, data: &[u8]) -> Option<FenceEntry> {
        let seq = name.rsplit('-').next()?.parse().ok()?;
        let text = std::str::from_utf8(data).ok()?;
        let (token, value) = text.split_once(':')?;
        Some(FenceEntry {
            seq,
            token: token.parse().ok()?,
            value: value.parse().ok()?,
        })
    }

    /// The data a writer stores: `<token>:<value>`.
    pub fn data(token: u64, value: u64) -> String {
        format!("{token}:{value}")
    }
}

/// The anomalies of a fence log (empty: safe). `log` in any order; `counter` is the
/// counter's final value, if read.
pub fn check(log: &[FenceEntry], counter: Option<u64>) -> Vec<String> {
    let mut log = log.to_vec();
    log.sort();
    let mut anomalies = Vec::new();
    for pair in log.windows(2) {
        if pair[1].token < pair[0].token {
            anomalies.push(format!(
                "fencing violated: write #{} with token {} accepted after write #{} with newer token {}",
                pair[1].seq, pair[1].token, pair[0].seq, pair[0].token
            ));
        }
    }
    for (i, e) in log.iter().enumerate() {
        let want = i as u64 + 1;
        if e.value != want {
            anomalies.push(format!(
                "lock-protected increments broken: write #{} (token {}) wrote {}, expected {want} (lost or doubled increment)",
                e.seq, e.token, e.value
            ));
            break;
        }
    }
    if let Some(c) = counter {
        if c != log.len() as u64 {
            anomalies.push(format!(
                "counter is {c} but the resource accepted {} increments",
                log.len()
            ));
        }
    }
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(seq: u64, token: u64, value: u64) -> FenceEntry {
        FenceEntry { seq, token, value }
    }

    #[test]
    fn a_correct_log_passes() {
        let log = [e(2, 10, 3), e(0, 5, 1), e(1, 10, 2)];
        assert!(check(&log, Some(3)).is_empty());
        assert!(check(&[], Some(0)).is_empty());
    }

    #[test]
    fn an_older_token_after_a_newer_one_is_caught() {
        let log = [e(0, 5, 1), e(1, 9, 2), e(2, 7, 3)];
        let a = check(&log, Some(3));
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(a[0].contains("token 7"), "{a:?}");
    }

    #[test]
    fn a_lost_increment_is_caught() {
        let log = [e(0, 5, 1), e(1, 9, 1)];
        assert!(!check(&log, Some(1)).is_empty());
    }

    #[test]
    fn parses_children() {
        assert_eq!(
            FenceEntry::parse("w-0000000012", b"77:3"),
            Some(e(12, 77, 3))
        );
        assert_eq!(FenceEntry::parse("w-x", b"77:3"), None);
        assert_eq!(FenceEntry::parse("w-0000000001", b"773"), None);
    }
}
