//! Where values live. The MVCC logic never does I/O itself: it reads and
//! writes revisioned values through these traits. `storage` implements them
//! on redb; [`MemBackend`] implements them in memory (tests, models).

use std::collections::BTreeMap;

use crate::api::mvccpb::KeyValue;

use super::Revision;

/// A failure of the backend under the key space (disk, corruption).
#[derive(Debug, thiserror::Error)]
#[error("backend: {0}")]
pub struct BackendError(pub String);

/// One stored change: the key-value written at a revision, or a tombstone.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The key-value as written (for a tombstone, only the key is set).
    pub kv: KeyValue,
    /// True if this change deleted the key.
    pub tombstone: bool,
}

/// Reads revisioned values.
pub trait KvRead {
    /// The change stored at `rev`, if any.
    fn get(&self, rev: Revision) -> Result<Option<Record>, BackendError>;
    /// Every change from `from` up to main revision `to` (inclusive), in order.
    fn scan(&self, from: Revision, to: i64) -> Result<Vec<(Revision, Record)>, BackendError>;
}

/// Writes revisioned values. Reads through a writer see its own writes.
pub trait KvWrite: KvRead {
    /// Stores the change made at `rev`.
    fn put(&mut self, rev: Revision, record: &Record) -> Result<(), BackendError>;
    /// Frees every stored change at or below `at` whose revision is not in
    /// `keep` (sorted). This is what makes compaction physical.
    fn compact(&mut self, at: i64, keep: &[Revision]) -> Result<(), BackendError>;
}

/// An in-memory backend: a sorted map from revision to change.
#[derive(Clone, Debug, Default)]
pub struct MemBackend {
    records: BTreeMap<Revision, Record>,
}

impl MemBackend {
    /// Number of stored changes (all revisions not yet compacted away).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every stored change in revision order (to rebuild an index).
    pub fn iter(&self) -> impl Iterator<Item = (&Revision, &Record)> {
        self.records.iter()
    }
}

impl KvRead for MemBackend {
    fn get(&self, rev: Revision) -> Result<Option<Record>, BackendError> {
        Ok(self.records.get(&rev).cloned())
    }

    fn scan(&self, from: Revision, to: i64) -> Result<Vec<(Revision, Record)>, BackendError> {
        Ok(self
            .records
            .range(from..=Revision::new(to, i64::MAX))
            .map(|(r, rec)| (*r, rec.clone()))
            .collect())
    }
}

impl KvWrite for MemBackend {
    fn put(&mut self, rev: Revision, record: &Record) -> Result<(), BackendError> {
        self.records.insert(rev, record.clone());
        Ok(())
    }

    fn compact(&mut self, at: i64, keep: &[Revision]) -> Result<(), BackendError> {
        self.records
            .retain(|rev, _| rev.main > at || keep.binary_search(rev).is_ok());
        Ok(())
    }
}
