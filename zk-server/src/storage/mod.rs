//! Durable bytes that know nothing of znodes: WAL segments, vote/meta, snapshot files.
