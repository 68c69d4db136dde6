//! ZooKeeper's quotas, as zkCli's `setquota`/`listquota`/`delquota` use them: a quota on
//! `P` is the node `/zookeeper/quota/P/zookeeper_limits` ("count=N,bytes=B", -1 = none;
//! 3.7+ adds `countHardLimit`/`byteHardLimit`), and the server keeps
//! `/zookeeper/quota/P/zookeeper_stats` ("count=N,bytes=B") equal to the number of nodes
//! and data bytes in `P`'s subtree, `P` included, as Apache ZooKeeper does. Each change
//! is counted against the deepest quota covering its path.
//!
//! Limits are soft, as with Apache ZooKeeper's default (`zookeeper.enforceQuota=false`):
//! a write past one succeeds and logs a warning. The stats node changes without a new
//! version or watch event (as Apache's), inside the write's transaction: a failed multi
//! rolls it back with everything else. Nothing is indexed: a write looks up the limits
//! node of each ancestor only while `/zookeeper/quota` has children, so a server without
//! quotas pays one map lookup per write.

use super::multi::Undo;
use super::{is_reserved, split_parent, DataTree};

/// Where quota nodes live.
pub(super) const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The name of the node holding a quota's limits.
pub(super) const LIMITS: &str = "zookeeper_limits";
/// The name of the node holding a quota's current usage.
pub(super) const STATS: &str = "zookeeper_stats";

/// True for the paths below `/zookeeper/quota` that clients may write (the quota root
/// itself and the rest of `/zookeeper` stay read-only).
pub(super) fn is_quota_path(path: &str) -> bool {
    path.strip_prefix(QUOTA_ROOT)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| !rest.is_empty())
}

/// The value of `key` in a StatsTrack string ("count=1,bytes=2,countHardLimit=3";
/// zkCli 3.8 writes limits as "count=3,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
/// so `;` separates too and a value is its leading number); None if absent or unreadable.
fn field(data: &[u8], key: &str) -> Option<i64> {
    let text = std::str::from_utf8(data).ok()?;
    text.split([',', ';']).find_map(|f| {
        let (k, v) = f.trim().split_once('=')?;
        if k != key {
            return None;
        }
        let v = v.trim();
        let end = v
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(v.len(), |(i, _)| i);
        v[..end].parse().ok()
    })
}

/// `count` and `bytes` of a StatsTrack string.
fn parse_track(data: &[u8]) -> (Option<i64>, Option<i64>) {
    (field(data, "count"), field(data, "bytes"))
}

fn track(count: i64, bytes: i64) -> Box<[u8]> {
    format!("count={count},bytes={bytes}").into_bytes().into()
}

impl DataTree {
    /// Bookkeeping after a node at `path` with `len` data bytes was created.
    pub(super) fn quota_created(&mut self, path: &str, len: usize, undo: &mut Vec<Undo>) {
        if is_quota_path(path) {
            // A new stats node starts from the subtree's real usage (Apache's
            // updateQuotaForPath), whatever the client wrote into it.
            let (parent, name) = split_parent(path);
            if name == STATS {
                let target = parent.strip_prefix(QUOTA_ROOT).unwrap_or("");
                let (count, bytes) = self.subtree_usage(target);
                self.set_stats(path, track(count, bytes), undo);
            }
            return;
        }
        self.quota_account(path, 1, i64::try_from(len).unwrap_or(i64::MAX), undo);
    }

    /// Counts a change of `count` nodes and `bytes` data bytes at `path` against the
    /// deepest quota covering it, and warns when that quota's limits are passed.
    pub(super) fn quota_account(
        &mut self,
        path: &str,
        count: i64,
        bytes: i64,
        undo: &mut Vec<Undo>,
    ) {
        if is_reserved(path)
            || self
                .nodes
                .get(QUOTA_ROOT)
                .is_none_or(|q| q.children.is_empty())
        {
            return;
        }
        let Some(target) = self.quota_target(path) else {
            return;
        };
        let stats_path = format!("{QUOTA_ROOT}{target}/{STATS}");
        let Some(stats) = self.nodes.get(stats_path.as_str()) else {
            return;
        };
        let (Some(now_count), Some(now_bytes)) = parse_track(&stats.data) else {
            // Unreadable usage (written by hand): count it again from the tree.
            let (c, b) = self.subtree_usage(&target);
            self.set_stats(&stats_path, track(c, b), undo);
            return;
        };
        let (new_count, new_bytes) = (
            now_count.saturating_add(count),
            now_bytes.saturating_add(bytes),
        );
        self.set_stats(&stats_path, track(new_count, new_bytes), undo);
        let limits_path = format!("{QUOTA_ROOT}{target}/{LIMITS}");
        if let Some(limits) = self.nodes.get(limits_path.as_str()) {
            // Soft and hard limits alike only warn (hard limits are not enforced).
            let over = |value: i64, keys: [&str; 2]| {
                keys.iter()
                    .filter_map(|k| field(&limits.data, k))
                    .find(|&max| max >= 0 && value > max)
            };
            if let Some(max) = over(new_count, ["count", "countHardLimit"]) {
                tracing::warn!(
                    "quota exceeded: {target} has {new_count} nodes, the limit is {max}"
                );
            }
            if let Some(max) = over(new_bytes, ["bytes", "byteHardLimit"]) {
                tracing::warn!(
                    "quota exceeded: {target} has {new_bytes} data bytes, the limit is {max}"
                );
            }
        }
    }

    /// The deepest of `path` and its ancestors (not `/`) with a limits node.
    fn quota_target(&self, path: &str) -> Option<String> {
        let mut prefix = path;
        while prefix != "/" && !prefix.is_empty() {
            let limits = format!("{QUOTA_ROOT}{prefix}/{LIMITS}");
            if self.nodes.contains_key(limits.as_str()) {
                return Some(prefix.to_string());
            }
            prefix = split_parent(prefix).0;
        }
        None
    }

    /// Nodes and data bytes in the subtree at `path` (0, 0 if there is none).
    fn subtree_usage(&self, path: &str) -> (i64, i64) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            let Some(node) = self.nodes.get(p.as_str()) else {
                continue;
            };
            count += 1;
            bytes += i64::try_from(node.data.len()).unwrap_or(i64::MAX);
            for name in node.children.iter() {
                stack.push(super::child_path(&p, name));
            }
        }
        (count, bytes)
    }

    /// Replaces a stats node's data, keeping its version and mzxid (no watch fires).
    fn set_stats(&mut self, path: &str, data: Box<[u8]>, undo: &mut Vec<Undo>) {
        if let Some(node) = self.nodes.get_mut(path) {
            undo.push(Undo::DataSet {
                path: path.to_string(),
                data: std::mem::replace(&mut node.data, data),
                version: node.version,
                mzxid: node.mzxid,
                mtime: node.mtime,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::CreateMode::Persistent;
    use super::*;

    fn usage(k: &Kit, target: &str) -> String {
        let path = format!("{QUOTA_ROOT}{target}/{STATS}");
        let node = k.tree.nodes.get(path.as_str()).expect("stats node");
        String::from_utf8_lossy(&node.data).into_owned()
    }

    /// zkCli's `setquota -n 5 /app`: the quota path nodes, the stats, then the limits.
    fn set_quota(k: &mut Kit, target: &str, limits: &str) {
        let mut path = QUOTA_ROOT.to_string();
        for part in target.split('/').filter(|p| !p.is_empty()) {
            path.push('/');
            path.push_str(part);
            let _ = k.op(create(&path, "", Persistent));
        }
        k.ok(create(
            &format!("{path}/{STATS}"),
            "count=0,bytes=0",
            Persistent,
        ));
        k.ok(create(&format!("{path}/{LIMITS}"), limits, Persistent));
    }

    #[test]
    fn stats_follow_creates_sets_and_deletes_in_the_subtree() {
        let mut k = Kit::new();
        k.ok(create("/app", "abc", Persistent));
        k.ok(create("/app/a", "12345", Persistent));
        k.ok(create("/other", "zzzz", Persistent));
        set_quota(&mut k, "/app", "count=5,bytes=-1");
        assert_eq!(usage(&k, "/app"), "count=2,bytes=8");
        k.ok(create("/app/a/deep", "xy", Persistent));
        assert_eq!(usage(&k, "/app"), "count=3,bytes=10");
        k.ok(set("/app/a", "1", -1));
        assert_eq!(usage(&k, "/app"), "count=3,bytes=6");
        k.ok(delete("/app/a/deep", -1));
        assert_eq!(usage(&k, "/app"), "count=2,bytes=4");
        k.ok(create("/other/x", "no", Persistent));
        assert_eq!(usage(&k, "/app"), "count=2,bytes=4");
        // A soft limit: the sixth node is created anyway.
        for i in 0..4 {
            k.ok(create(&format!("/app/n{i}"), "", Persistent));
        }
        assert_eq!(usage(&k, "/app"), "count=6,bytes=4");
        // The stats node's own version does not move.
        let stats = format!("{QUOTA_ROOT}/app/{STATS}");
        assert_eq!(k.tree.nodes.get(stats.as_str()).map(|n| n.version), Some(0));
    }

    #[test]
    fn the_deepest_quota_counts_and_a_failed_multi_leaves_stats_alone() {
        let mut k = Kit::new();
        k.ok(create("/a", "", Persistent));
        k.ok(create("/a/b", "", Persistent));
        set_quota(&mut k, "/a", "count=-1,bytes=-1");
        set_quota(&mut k, "/a/b", "count=-1,bytes=-1");
        assert_eq!(usage(&k, "/a"), "count=2,bytes=0");
        assert_eq!(usage(&k, "/a/b"), "count=1,bytes=0");
        k.ok(create("/a/b/c", "1234", Persistent));
        assert_eq!(usage(&k, "/a/b"), "count=2,bytes=4");
        assert_eq!(usage(&k, "/a"), "count=2,bytes=0");
        let before = k.tree.clone();
        let r = k.multi(
            0,
            vec![create("/a/b/d", "xx", Persistent), delete("/a/missing", -1)],
        );
        assert!(r.is_err());
        assert_same(&before, &k.tree);
        assert_eq!(usage(&k, "/a/b"), "count=2,bytes=4");
    }

    #[test]
    fn quota_nodes_survive_a_snapshot_and_keep_counting() {
        let mut k = Kit::new();
        k.ok(create("/s", "12", Persistent));
        set_quota(&mut k, "/s", "count=10,bytes=-1");
        let bytes = k.tree.to_snapshot_bytes();
        k.tree = DataTree::from_snapshot_bytes(&bytes).expect("snapshot loads");
        assert_eq!(usage(&k, "/s"), "count=1,bytes=2");
        k.ok(create("/s/x", "345", Persistent));
        assert_eq!(usage(&k, "/s"), "count=2,bytes=5");
    }

    #[test]
    fn only_paths_below_the_quota_root_are_writable() {
        assert!(is_quota_path("/zookeeper/quota/a"));
        assert!(!is_quota_path("/zookeeper/quota"));
        assert!(!is_quota_path("/zookeeper/quota/"));
        assert!(!is_quota_path("/zookeeper/quotax/a"));
        assert!(!is_quota_path("/zookeeper/config/a"));
        assert_eq!(parse_track(b"count=3,bytes=-1"), (Some(3), Some(-1)));
        assert_eq!(
            parse_track(b"count=3,bytes=9,countHardLimit=4"),
            (Some(3), Some(9))
        );
        assert_eq!(parse_track(b"\xff garbage"), (None, None));
        let zkcli = b"count=3,bytes=-1=;byteHardLimit=100;countHardLimit=-1";
        assert_eq!(parse_track(zkcli), (Some(3), Some(-1)));
        assert_eq!(field(zkcli, "byteHardLimit"), Some(100));
        assert_eq!(field(zkcli, "countHardLimit"), Some(-1));
        assert_eq!(field(b"count=x", "count"), None);
    }

    #[test]
    fn a_quota_on_a_missing_path_counts_from_zero_and_unreadable_stats_are_recounted() {
        let mut k = Kit::new();
        set_quota(&mut k, "/later", "count=1,bytes=-1");
        assert_eq!(usage(&k, "/later"), "count=0,bytes=0");
        k.ok(create("/later", "ab", Persistent));
        assert_eq!(usage(&k, "/later"), "count=1,bytes=2");
        k.ok(set(&format!("{QUOTA_ROOT}/later/{STATS}"), "junk", -1));
        k.ok(create("/later/x", "c", Persistent));
        assert_eq!(usage(&k, "/later"), "count=2,bytes=3");
    }
}
