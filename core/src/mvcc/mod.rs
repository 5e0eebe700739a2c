//! etcd's revisioned key space.
//!
//! Every write gets a new store revision; every key keeps its history as
//! generations of revisions (see [`KeyIndex`]), so a range can read any
//! revision not yet compacted. The logic here is deterministic and does no
//! I/O: values are read and written through [`KvRead`]/[`KvWrite`].
//!
//! ```
//! use concord_core::api::etcdserverpb::{PutRequest, RangeRequest};
//! use concord_core::mvcc::{MemBackend, Mvcc, NoLeases};
//!
//! let (mut mvcc, mut backend) = (Mvcc::new(), MemBackend::default());
//! let put = PutRequest { key: b"foo".to_vec(), value: b"bar".to_vec(), ..Default::default() };
//! mvcc.put(&mut backend, &mut NoLeases, &put).unwrap();
//! let got = mvcc.range(&backend, &RangeRequest { key: b"foo".to_vec(), ..Default::default() }).unwrap();
//! assert_eq!(got.kvs[0].value, b"bar");
//! assert_eq!(got.kvs[0].mod_revision, 2);
//! ```

mod backend;
mod index;
mod key_index;
mod revision;
mod store;
pub mod validate;

pub use backend::{BackendError, KvRead, KvWrite, MemBackend, Record, ScanBudget};
pub use index::{key_bounds, TreeIndex};
pub use key_index::{KeyAt, KeyIndex};
pub use revision::Revision;
pub use store::{Leases, Mvcc, NoLeases, RangePlan};

use crate::api::error::EtcdError;

/// Errors of the key space.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The requested revision has been compacted away.
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// The requested revision is newer than the store.
    #[error("mvcc: required revision is a future revision")]
    FutureRev,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("key not found")]
    KeyNotFound,
    /// A put names a lease that is not granted.
    #[error("requested lease not found")]
    LeaseNotFound,
    /// The index points at a revision the backend does not hold.
    #[error("mvcc: revision {0:?} is indexed but not stored")]
    Missing(Revision),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl From<Error> for EtcdError {
    fn from(e: Error) -> Self {
        match e {
            Error::Compacted => EtcdError::Compacted,
            Error::FutureRev => EtcdError::FutureRev,
            Error::KeyNotFound => EtcdError::KeyNotFound,
            Error::LeaseNotFound => EtcdError::LeaseNotFound,
            Error::Missing(_) | Error::Backend(_) => EtcdError::Internal(e.to_string()),
        }
    }
}
