//! What stops a member's write path.

use super::log::LogError;
use crate::storage::StorageError;

/// Errors starting or running the write path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The state machine's storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A logged entry could not be decoded.
    #[error("log entry {0} cannot be decoded")]
    BadEntry(u64),
    /// Applying an entry failed in the backend.
    #[error("apply: {0}")]
    Apply(String),
    /// This member was removed from the cluster.
    #[error("this member was removed from the cluster")]
    Removed,
    /// The write thread could not be started.
    #[error("cannot start the write thread: {0}")]
    Thread(std::io::Error),
}

/// A raft record that protobuf could not encode or decode.
pub(super) fn pb_err(e: protobuf::ProtobufError) -> NodeError {
    NodeError::Apply(format!("raft record: {e}"))
}
