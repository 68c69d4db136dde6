//! Apache ZooKeeper's error codes (`KeeperException.Code`), with their wire values.

use std::fmt;

/// A ZooKeeper result code. The integer values are ZooKeeper's own, so the native
/// protocol and ZooKeeper's jute protocol carry the same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    Ok,
    SystemError,
    RuntimeInconsistency,
    DataInconsistency,
    ConnectionLoss,
    MarshallingError,
    Unimplemented,
    OperationTimeout,
    BadArguments,
    UnknownSession,
    NewConfigNoQuorum,
    ReconfigInProgress,
    ApiError,
    NoNode,
    NoAuth,
    BadVersion,
    NoChildrenForEphemerals,
    NodeExists,
    NotEmpty,
    SessionExpired,
    InvalidCallback,
    InvalidAcl,
    AuthFailed,
    SessionMoved,
    NotReadOnly,
    EphemeralOnLocalSession,
    NoWatcher,
    RequestTimeout,
    ReconfigDisabled,
    QuotaExceeded,
    Throttled,
    /// A code this version does not know; the raw value is kept.
    Other(i32),
}

/// (code, wire value, name): the one table both directions are derived from.
const TABLE: &[(Code, i32, &str)] = &[
    (Code::Ok, 0, "OK"),
    (Code::SystemError, -1, "SystemError"),
    (Code::RuntimeInconsistency, -2, "RuntimeInconsistency"),
    (Code::DataInconsistency, -3, "DataInconsistency"),
    (Code::ConnectionLoss, -4, "ConnectionLoss"),
    (Code::MarshallingError, -5, "MarshallingError"),
    (Code::Unimplemented, -6, "Unimplemented"),
    (Code::OperationTimeout, -7, "OperationTimeout"),
    (Code::BadArguments, -8, "BadArguments"),
    (Code::UnknownSession, -12, "UnknownSession"),
    (Code::NewConfigNoQuorum, -13, "NewConfigNoQuorum"),
    (Code::ReconfigInProgress, -14, "ReconfigInProgress"),
    (Code::ApiError, -100, "APIError"),
    (Code::NoNode, -101, "NoNode"),
    (Code::NoAuth, -102, "NoAuth"),
    (Code::BadVersion, -103, "BadVersion"),
    (
        Code::NoChildrenForEphemerals,
        -108,
        "NoChildrenForEphemerals",
    ),
    (Code::NodeExists, -110, "NodeExists"),
    (Code::NotEmpty, -111, "NotEmpty"),
    (Code::SessionExpired, -112, "SessionExpired"),
    (Code::InvalidCallback, -113, "InvalidCallback"),
    (Code::InvalidAcl, -114, "InvalidACL"),
    (Code::AuthFailed, -115, "AuthFailed"),
    (Code::SessionMoved, -118, "SessionMoved"),
    (Code::NotReadOnly, -119, "NotReadOnly"),
    (
        Code::EphemeralOnLocalSession,
        -120,
        "EphemeralOnLocalSession",
    ),
    (Code::NoWatcher, -121, "NoWatcher"),
    (Code::RequestTimeout, -122, "RequestTimeout"),
    (Code::ReconfigDisabled, -123, "ReconfigDisabled"),
    (Code::QuotaExceeded, -125, "QuotaExceeded"),
    (Code::Throttled, -127, "Throttled"),
];

impl Code {
    /// The wire value.
    pub fn as_i32(self) -> i32 {
        if let Code::Other(v) = self {
            return v;
        }
        TABLE
            .iter()
            .find(|(c, _, _)| *c == self)
            .map(|(_, v, _)| *v)
            .unwrap_or(-1)
    }

    /// The code for a wire value; unknown values are kept as [`Code::Other`].
    pub fn from_i32(value: i32) -> Code {
        TABLE
            .iter()
            .find(|(_, v, _)| *v == value)
            .map(|(c, _, _)| *c)
            .unwrap_or(Code::Other(value))
    }

    /// ZooKeeper's name for the code.
    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(c, _, _)| *c == self)
            .map(|(_, _, n)| *n)
            .unwrap_or("Unknown")
    }

    /// True for [`Code::Ok`].
    pub fn is_ok(self) -> bool {
        self == Code::Ok
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Other(v) => write!(f, "Unknown({v})"),
            c => f.write_str(c.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_code() {
        for (code, value, _) in TABLE {
            assert_eq!(Code::from_i32(*value), *code);
            assert_eq!(code.as_i32(), *value);
        }
        assert_eq!(Code::from_i32(-999), Code::Other(-999));
        assert_eq!(Code::Other(-999).as_i32(), -999);
        assert_eq!(Code::NoNode.as_i32(), -101);
        assert_eq!(Code::NodeExists.to_string(), "NodeExists");
    }
}
