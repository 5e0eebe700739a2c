//! etcd's errors, with the gRPC status code and the exact message etcd sends,
//! because clients match on both.

use thiserror::Error;

/// gRPC status codes (the numbers are part of the wire contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The code with this number; numbers outside gRPC's list read as `Unknown`.
    pub fn from_i32(n: i32) -> Code {
        const ALL: [Code; 17] = [
            Code::Ok,
            Code::Cancelled,
            Code::Unknown,
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::Internal,
            Code::Unavailable,
            Code::DataLoss,
            Code::Unauthenticated,
        ];
        usize::try_from(n)
            .ok()
            .and_then(|i| ALL.get(i).copied())
            .unwrap_or(Code::Unknown)
    }

    /// The HTTP status the JSON gateway answers with for this code
    /// (the grpc-gateway mapping etcd's gateway uses).
    pub fn http_status(self) -> u16 {
        match self {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
            Code::InvalidArgument | Code::OutOfRange => 400,
            Code::FailedPrecondition => 412,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::Unauthenticated => 401,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
        }
    }
}

/// An error as etcd reports it: the message text is etcd's, to the letter.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EtcdError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// The CORRUPT alarm is raised: a member's data disagrees with its peers'.
    #[error("etcdserver: corrupt cluster")]
    Corrupt,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExist,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// Larger than the transport accepts at all (`--max-request-bytes` + 512 KiB);
    /// etcd's gRPC layer refuses it with this message.
    #[error("grpc: received message larger than max ({size} vs. {limit})")]
    MessageTooLarge {
        /// The message's size in bytes.
        size: usize,
        /// The transport's limit.
        limit: usize,
    },
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    /// As many leases exist as a member keeps (etcd sets no limit; each
    /// lease is held in memory on every member).
    #[error("etcdserver: too many leases (at most {limit}): revoke leases no longer used")]
    TooManyLeases {
        /// The most leases kept.
        limit: usize,
    },
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: not leader")]
    NotLeader,
    /// A membership change refused by the strict reconfiguration check:
    /// too few members started for a quorum afterwards.
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    /// A membership change refused by the strict reconfiguration check:
    /// too few members connected for a quorum afterwards.
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("etcdserver: request timed out, leader transfer took too long")]
    LeaderTransferTimeout,
    /// A request the decoder could not read (bad JSON, bad base64, …).
    #[error("{0}")]
    InvalidRequest(String),
    /// A method this server does not provide (yet).
    #[error("{0}")]
    Unimplemented(String),
    /// A fault inside the server (storage failure and the like).
    #[error("{0}")]
    Internal(String),
    /// An error received from a server that this list does not name, kept
    /// with its code and message as they arrived.
    #[error("{message}")]
    Other {
        /// The gRPC status code.
        code: Code,
        /// The message, as the server sent it.
        message: String,
    },
}

impl EtcdError {
    /// The gRPC status code etcd sends with this error.
    pub fn code(&self) -> Code {
        match self {
            EtcdError::EmptyKey
            | EtcdError::KeyNotFound
            | EtcdError::ValueProvided
            | EtcdError::LeaseProvided
            | EtcdError::InvalidSortOption
            | EtcdError::TooManyOps
            | EtcdError::DuplicateKey
            | EtcdError::RequestTooLarge
            | EtcdError::AuthFailed
            | EtcdError::AuthOldRevision
            | EtcdError::UserEmpty
            | EtcdError::RoleEmpty
            | EtcdError::InvalidAuthMgmt
            | EtcdError::InvalidRequest(_) => Code::InvalidArgument,
            EtcdError::Compacted | EtcdError::FutureRev | EtcdError::LeaseTtlTooLarge => Code::OutOfRange,
            EtcdError::LeaseExist
            | EtcdError::AuthNotEnabled
            | EtcdError::UserAlreadyExist
            | EtcdError::UserNotFound
            | EtcdError::RoleAlreadyExist
            | EtcdError::RoleNotFound
            | EtcdError::RoleNotGranted
            | EtcdError::PermissionNotGranted
            | EtcdError::RootUserNotExist
            | EtcdError::RootRoleNotExist
            | EtcdError::PeerUrlExists
            | EtcdError::MemberNotLearner
            | EtcdError::LearnerNotReady
            | EtcdError::NotLeader
            | EtcdError::NotEnoughStartedMembers
            | EtcdError::BadLeaderTransferee => Code::FailedPrecondition,
            EtcdError::NoSpace
            | EtcdError::TooManyRequests
            | EtcdError::TooManyLeases { .. }
            | EtcdError::MessageTooLarge { .. } => Code::ResourceExhausted,
            EtcdError::LeaseNotFound | EtcdError::MemberNotFound => Code::NotFound,
            EtcdError::Timeout
            | EtcdError::Stopped
            | EtcdError::NoLeader
            | EtcdError::LeaderTransferTimeout
            | EtcdError::Unhealthy => Code::Unavailable,
            EtcdError::PermissionDenied => Code::PermissionDenied,
            EtcdError::Corrupt => Code::DataLoss,
            EtcdError::InvalidAuthToken => Code::Unauthenticated,
            EtcdError::Unimplemented(_) => Code::Unimplemented,
            EtcdError::Internal(_) => Code::Internal,
            EtcdError::Other { code, .. } => *code,
        }
    }

    /// The error a server reported with this code and message: etcd's
    /// errors by their message, anything else as [`EtcdError::Other`].
    /// The inverse of `(code(), to_string())` for every fixed-text error.
    ///
    /// ```
    /// use concord_core::api::error::{Code, EtcdError};
    /// let e = EtcdError::from_wire(11, "etcdserver: mvcc: required revision has been compacted");
    /// assert_eq!(e, EtcdError::Compacted);
    /// assert_eq!(EtcdError::from_wire(2, "boom").code(), Code::Unknown);
    /// ```
    pub fn from_wire(code: i32, message: &str) -> EtcdError {
        const FIXED: [EtcdError; 44] = [
            EtcdError::EmptyKey,
            EtcdError::KeyNotFound,
            EtcdError::ValueProvided,
            EtcdError::LeaseProvided,
            EtcdError::InvalidSortOption,
            EtcdError::TooManyOps,
            EtcdError::DuplicateKey,
            EtcdError::Compacted,
            EtcdError::FutureRev,
            EtcdError::NoSpace,
            EtcdError::Corrupt,
            EtcdError::LeaseNotFound,
            EtcdError::LeaseExist,
            EtcdError::LeaseTtlTooLarge,
            EtcdError::RequestTooLarge,
            EtcdError::TooManyRequests,
            EtcdError::Timeout,
            EtcdError::Stopped,
            EtcdError::NoLeader,
            EtcdError::PermissionDenied,
            EtcdError::AuthFailed,
            EtcdError::InvalidAuthToken,
            EtcdError::AuthOldRevision,
            EtcdError::AuthNotEnabled,
            EtcdError::UserEmpty,
            EtcdError::UserAlreadyExist,
            EtcdError::UserNotFound,
            EtcdError::RoleEmpty,
            EtcdError::RoleAlreadyExist,
            EtcdError::RoleNotFound,
            EtcdError::RoleNotGranted,
            EtcdError::PermissionNotGranted,
            EtcdError::RootUserNotExist,
            EtcdError::RootRoleNotExist,
            EtcdError::InvalidAuthMgmt,
            EtcdError::MemberNotFound,
            EtcdError::PeerUrlExists,
            EtcdError::MemberNotLearner,
            EtcdError::LearnerNotReady,
            EtcdError::NotLeader,
            EtcdError::BadLeaderTransferee,
            EtcdError::LeaderTransferTimeout,
            EtcdError::NotEnoughStartedMembers,
            EtcdError::Unhealthy,
        ];
        let code = Code::from_i32(code);
        FIXED
            .into_iter()
            .find(|e| e.code() == code && e.to_string() == message)
            .unwrap_or_else(|| EtcdError::Other {
                code,
                message: message.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes_are_etcds() {
        assert_eq!(
            EtcdError::Compacted.to_string(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        assert_eq!(EtcdError::Compacted.code(), Code::OutOfRange);
        assert_eq!(EtcdError::EmptyKey.code() as i32, 3);
        assert_eq!(EtcdError::LeaseNotFound.code().http_status(), 404);
        assert_eq!(EtcdError::InvalidAuthToken.code() as i32, 16);
    }

    #[test]
    fn wire_errors_read_back() {
        for e in [
            EtcdError::Compacted,
            EtcdError::AuthFailed,
            EtcdError::NoLeader,
            EtcdError::LeaseNotFound,
        ] {
            assert_eq!(EtcdError::from_wire(e.code() as i32, &e.to_string()), e);
        }
        // Same text, other code: not etcd's error.
        let e = EtcdError::from_wire(2, "etcdserver: mvcc: required revision has been compacted");
        assert_eq!(e.code(), Code::Unknown);
        assert_eq!(Code::from_i32(99), Code::Unknown);
        assert_eq!(Code::from_i32(16), Code::Unauthenticated);
    }
}
