//! The client's one error type. Errors a member sent keep etcd's gRPC code
//! and message ([`EtcdError`]); errors the client decides itself (deadline,
//! no member reachable, watch compacted, lease lost) carry the code etcd's
//! own client would report, so every binding maps both the same way.

use thiserror::Error;

use crate::api::error::{Code, EtcdError};

/// An error of [`Client`](super::Client).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A member answered with this error (etcd's code and message).
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// A watch could not start or resume: its start revision has been
    /// compacted away. Events between `revision` and `compact_revision`
    /// are lost to this watch; the caller must re-read and watch anew.
    #[error("etcdserver: mvcc: required revision has been compacted (watch from {revision}, compacted at {compact_revision})")]
    WatchCompacted {
        /// The revision the watch asked to start or resume from.
        revision: i64,
        /// The store's compaction revision.
        compact_revision: i64,
    },
    /// The server canceled a watch for a reason other than compaction.
    #[error("watch canceled: {0}")]
    WatchCanceled(String),
    /// The caller's deadline passed before a member answered.
    #[error("context deadline exceeded ({0})")]
    DeadlineExceeded(String),
    /// No member could be reached, or every one refused as unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The connection broke after a request that is not safe to repeat was
    /// sent: it may or may not have been applied.
    #[error("connection lost after the request was sent, it may have been applied: {0}")]
    Indeterminate(String),
    /// A kept-alive lease has expired or was revoked.
    #[error("lease {id:x} lost: {reason}")]
    LeaseLost {
        /// The lease.
        id: i64,
        /// Why: not refreshed before its deadline, or gone on the server.
        reason: String,
    },
    /// An argument the client refuses before sending anything.
    #[error("{0}")]
    InvalidArgument(String),
    /// An answer the client could not read.
    #[error("cannot read the server's answer: {0}")]
    Decode(String),
}

/// What kind of failure an [`Error`] is: the classes etcd's client
/// libraries expose as distinct exceptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A read or watch at a compacted revision.
    Compacted,
    /// A read at a revision the store has not reached.
    FutureRevision,
    /// The lease does not exist (or a kept-alive lease was lost).
    LeaseNotFound,
    /// The user lacks the permission.
    PermissionDenied,
    /// Wrong user name or password.
    AuthFailed,
    /// The token is missing, invalid or expired.
    InvalidAuthToken,
    /// The server sheds load or refuses the size.
    TooManyRequests,
    /// A deadline passed (the caller's or the server's).
    Timeout,
    /// No member could serve the request.
    Unavailable,
    /// The request was malformed or refused as invalid.
    InvalidArgument,
    /// The watch was canceled by the server.
    Canceled,
    /// Anything else.
    Other,
}

impl Error {
    /// The gRPC status code.
    pub fn code(&self) -> Code {
        match self {
            Error::Etcd(e) => e.code(),
            Error::WatchCompacted { .. } => Code::OutOfRange,
            Error::WatchCanceled(_) => Code::Cancelled,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Unavailable(_) | Error::Indeterminate(_) => Code::Unavailable,
            Error::LeaseLost { .. } => Code::NotFound,
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::Decode(_) => Code::Internal,
        }
    }

    /// The kind, for mapping to a language's exception classes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Etcd(e) => match e {
                EtcdError::Compacted => ErrorKind::Compacted,
                EtcdError::FutureRev => ErrorKind::FutureRevision,
                EtcdError::LeaseNotFound => ErrorKind::LeaseNotFound,
                EtcdError::PermissionDenied => ErrorKind::PermissionDenied,
                EtcdError::AuthFailed => ErrorKind::AuthFailed,
                EtcdError::InvalidAuthToken | EtcdError::AuthOldRevision => ErrorKind::InvalidAuthToken,
                EtcdError::TooManyRequests | EtcdError::NoSpace | EtcdError::MessageTooLarge { .. } => {
                    ErrorKind::TooManyRequests
                }
                EtcdError::Timeout => ErrorKind::Timeout,
                EtcdError::NoLeader | EtcdError::Stopped => ErrorKind::Unavailable,
                e => match e.code() {
                    Code::InvalidArgument => ErrorKind::InvalidArgument,
                    Code::PermissionDenied => ErrorKind::PermissionDenied,
                    Code::Unauthenticated => ErrorKind::InvalidAuthToken,
                    Code::Unavailable => ErrorKind::Unavailable,
                    Code::DeadlineExceeded => ErrorKind::Timeout,
                    Code::ResourceExhausted => ErrorKind::TooManyRequests,
                    _ => ErrorKind::Other,
                },
            },
            Error::WatchCompacted { .. } => ErrorKind::Compacted,
            Error::WatchCanceled(_) => ErrorKind::Canceled,
            Error::DeadlineExceeded(_) => ErrorKind::Timeout,
            Error::Unavailable(_) | Error::Indeterminate(_) => ErrorKind::Unavailable,
            Error::LeaseLost { .. } => ErrorKind::LeaseNotFound,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Decode(_) => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_keep_code_and_message() {
        let e = Error::from(EtcdError::from_wire(
            11,
            "etcdserver: mvcc: required revision has been compacted",
        ));
        assert_eq!(e.kind(), ErrorKind::Compacted);
        assert_eq!(e.code(), Code::OutOfRange);
        assert_eq!(e.to_string(), "etcdserver: mvcc: required revision has been compacted");
        let e = Error::from(EtcdError::from_wire(7, "etcdserver: permission denied"));
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let e = Error::from(EtcdError::from_wire(14, "something new"));
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (ErrorKind::Unavailable, "something new")
        );
    }

    #[test]
    fn client_errors_have_etcd_codes() {
        let e = Error::WatchCompacted {
            revision: 3,
            compact_revision: 9,
        };
        assert_eq!((e.kind(), e.code()), (ErrorKind::Compacted, Code::OutOfRange));
        assert_eq!(Error::DeadlineExceeded("x".into()).code(), Code::DeadlineExceeded);
        assert_eq!(Error::Unavailable("x".into()).kind(), ErrorKind::Unavailable);
    }
}
