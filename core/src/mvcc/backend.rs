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
    /// Changes from `from` up to main revision `to` (inclusive), in order.
    /// Stops early, at the end of a main revision, once about `max_bytes`
    /// have been read (a revision is never split); the flag says whether it
    /// stopped early.
    fn scan(&self, from: Revision, to: i64, max_bytes: usize) -> Result<(Vec<(Revision, Record)>, bool), BackendError>;
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

    fn scan(&self, from: Revision, to: i64, max_bytes: usize) -> Result<(Vec<(Revision, Record)>, bool), BackendError> {
        let mut budget = ScanBudget::new(max_bytes);
        let mut out = Vec::new();
        for (r, rec) in self.records.range(from..=Revision::new(to, i64::MAX)) {
            if !budget.admit(*r, rec) {
                return Ok((out, true));
            }
            out.push((*r, rec.clone()));
        }
        Ok((out, false))
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

/// Counts what a [`KvRead::scan`] has read, to stop at a revision boundary
/// once the byte budget is spent.
#[derive(Debug)]
pub struct ScanBudget {
    left: usize,
    last_main: Option<i64>,
}

impl ScanBudget {
    /// A budget of `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        ScanBudget {
            left: max_bytes,
            last_main: None,
        }
    }

    /// True if the change at `rev` is to be read.
    pub fn admit(&mut self, rev: Revision, rec: &Record) -> bool {
        if self.left == 0 && self.last_main != Some(rev.main) {
            return false;
        }
        self.last_main = Some(rev.main);
        self.left = self.left.saturating_sub(rec.kv.key.len() + rec.kv.value.len() + 32);
        true
    }
}
