//! Measurements besides load runs: the disk's fsync latency ([`fsync`]) and a server's
//! lifecycle ([`lifecycle`]: cold start, RSS with a big tree, snapshot, restart
//! recovery), driven through [`server`] (start / stop zk-server or Apache ZooKeeper as
//! separate processes) and [`tree`] (building the tree with pipelined creates).

pub mod fsync;
pub mod lifecycle;
pub mod server;
pub mod tree;
