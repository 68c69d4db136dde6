//! Fencing tokens, and a validator for resources outside the tree.
//!
//! A lock or leadership is only safe if the protected resource can reject a deposed
//! holder: a process paused after acquiring (GC, swap, a stopped VM) may wake up long
//! after its session expired and another holder took over (Kleppmann, "How to do
//! distributed locking"). Every holder here carries a [`FencingToken`], the zxid that
//! created its node: the cluster assigns zxids in one increasing order, and the next
//! holder's node is created after the previous one's, so successive holders' tokens
//! strictly increase. A resource that remembers the highest token it has accepted can
//! reject anything lower: that is [`FencingValidator`].
//!
//! ```
//! # async fn f() {
//! use zk_recipes::{FencingToken, FencingValidator};
//! let store = FencingValidator::new("orders-db");
//! assert!(store.check(FencingToken::new(7)).await.is_ok());
//! assert!(store.check(FencingToken::new(9)).await.is_ok()); // a newer holder
//! assert!(store.check(FencingToken::new(7)).await.is_err()); // the deposed one
//! # }
//! ```

use std::fmt;

use tokio::sync::{Mutex, MutexGuard};
use zk_client::Stat;

use crate::error::{Error, Result};

/// A fencing token: the creating zxid of a holder's node. Later holders have larger
/// tokens. Pass it to the resource along with every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    /// A token with the given value (for resources that received it as a number).
    pub fn new(value: u64) -> FencingToken {
        FencingToken(value)
    }

    /// The token of the holder whose node has this stat (its `czxid`).
    pub fn from_stat(stat: &Stat) -> FencingToken {
        FencingToken(u64::try_from(stat.czxid).unwrap_or(0))
    }

    /// The token as a number (to send it to the resource).
    pub fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<FencingToken> for u64 {
    fn from(token: FencingToken) -> u64 {
        token.0
    }
}

/// The check a protected resource runs on every write: reject any token lower than the
/// highest it has accepted (equal is accepted: the same holder writing again).
///
/// [`FencingValidator::admit`] holds the validator while the write runs, so a check and
/// the write it guards are atomic with respect to other holders: a deposed holder cannot
/// pass the check, pause, and land its write after a newer holder's. Keep the highest
/// token durable with the resource's data if the resource outlives the process.
#[derive(Debug)]
pub struct FencingValidator {
    resource: String,
    highest: Mutex<Option<FencingToken>>,
}

/// Proof that a token was admitted; the validator admits no other token until it is
/// dropped. Do the guarded write while holding it.
#[derive(Debug)]
pub struct Admitted<'a> {
    token: FencingToken,
    _guard: MutexGuard<'a, Option<FencingToken>>,
}

impl Admitted<'_> {
    /// The admitted token.
    pub fn token(&self) -> FencingToken {
        self.token
    }
}

impl FencingValidator {
    /// A validator that has accepted nothing yet; `resource` names it in errors.
    pub fn new(resource: impl Into<String>) -> FencingValidator {
        FencingValidator::starting_at(resource, None)
    }

    /// A validator that already accepted `highest` (restored from the resource's storage).
    pub fn starting_at(
        resource: impl Into<String>,
        highest: Option<FencingToken>,
    ) -> FencingValidator {
        FencingValidator {
            resource: resource.into(),
            highest: Mutex::new(highest),
        }
    }

    /// Admits `token` if no higher token was accepted, records it as the highest, and
    /// holds the validator until the returned guard is dropped.
    ///
    /// Errors: [`Error::Fenced`] when a higher token was accepted before.
    pub async fn admit(&self, token: FencingToken) -> Result<Admitted<'_>> {
        let mut highest = self.highest.lock().await;
        match *highest {
            Some(h) if token < h => Err(Error::Fenced {
                token: token.value(),
                reason: format!("{} already accepted token {h}", self.resource),
            }),
            _ => {
                *highest = Some(token);
                Ok(Admitted {
                    token,
                    _guard: highest,
                })
            }
        }
    }

    /// [`FencingValidator::admit`] without holding: for a check that is itself the write
    /// (or when ordering between holders does not matter).
    pub async fn check(&self, token: FencingToken) -> Result<()> {
        self.admit(token).await.map(drop)
    }

    /// The highest token accepted so far.
    pub async fn highest(&self) -> Option<FencingToken> {
        *self.highest.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejects_lower_tokens_only() {
        let v = FencingValidator::new("db");
        assert_eq!(v.highest().await, None);
        v.check(FencingToken::new(5)).await.expect("first");
        v.check(FencingToken::new(5))
            .await
            .expect("same holder again");
        let e = v.check(FencingToken::new(4)).await.expect_err("stale");
        assert!(matches!(e, Error::Fenced { token: 4, .. }), "{e}");
        assert!(e.to_string().contains("db already accepted token 5"));
        v.check(FencingToken::new(6)).await.expect("newer");
        assert_eq!(v.highest().await, Some(FencingToken::new(6)));
        let admitted = v.admit(FencingToken::new(8)).await.expect("newer");
        assert_eq!(admitted.token().value(), 8);
    }
}
