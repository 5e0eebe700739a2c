//! The in-memory key index: key → [`KeyIndex`], ordered by key. Rebuilt
//! from the backend at start, like etcd's; values stay in the backend.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::key_index::{KeyAt, KeyIndex};
use super::Revision;

/// Turns etcd's `(key, range_end)` convention into bounds: an empty
/// `range_end` means the single key, `"\0"` means every key `>= key`.
///
/// ```
/// use std::ops::Bound;
/// use concord_core::mvcc::key_bounds;
/// assert_eq!(key_bounds(b"a", b"\0").1, Bound::Unbounded);
/// assert_eq!(key_bounds(b"a", b"").1, Bound::Included(b"a".to_vec()));
/// ```
pub fn key_bounds(key: &[u8], range_end: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let start = Bound::Included(key.to_vec());
    if range_end.is_empty() {
        (start, Bound::Included(key.to_vec()))
    } else if range_end == [0] {
        (start, Bound::Unbounded)
    } else {
        (start, Bound::Excluded(range_end.to_vec()))
    }
}

fn is_empty_range(key: &[u8], range_end: &[u8]) -> bool {
    !range_end.is_empty() && range_end != [0] && range_end <= key
}

/// Every key's history, ordered by key.
#[derive(Debug, Default)]
pub struct TreeIndex {
    keys: BTreeMap<Vec<u8>, KeyIndex>,
}

impl TreeIndex {
    /// Number of keys with any history held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key has any history held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// One key's state at revision `at`.
    pub fn get(&self, key: &[u8], at: i64) -> Option<KeyAt> {
        self.keys.get(key)?.get(at)
    }

    /// Keys live at revision `at` in `[key, range_end)`, in key order.
    pub fn range(&self, key: &[u8], range_end: &[u8], at: i64) -> Vec<(&[u8], KeyAt)> {
        if range_end.is_empty() {
            return self
                .keys
                .get_key_value(key)
                .and_then(|(k, ki)| ki.get(at).map(|a| (k.as_slice(), a)))
                .into_iter()
                .collect();
        }
        if is_empty_range(key, range_end) {
            return Vec::new();
        }
        self.keys
            .range(key_bounds(key, range_end))
            .filter_map(|(k, ki)| ki.get(at).map(|a| (k.as_slice(), a)))
            .collect()
    }

    /// Number of keys live at revision `at` in `[key, range_end)`.
    pub fn count(&self, key: &[u8], range_end: &[u8], at: i64) -> usize {
        if range_end.is_empty() {
            return usize::from(self.get(key, at).is_some());
        }
        if is_empty_range(key, range_end) {
            return 0;
        }
        self.keys
            .range(key_bounds(key, range_end))
            .filter(|(_, ki)| ki.get(at).is_some())
            .count()
    }

    /// Records a put of `key` at `rev`.
    pub fn put(&mut self, key: &[u8], rev: Revision) {
        match self.keys.get_mut(key) {
            Some(ki) => ki.put(rev),
            None => {
                let mut ki = KeyIndex::default();
                ki.put(rev);
                self.keys.insert(key.to_vec(), ki);
            }
        }
    }

    /// Records a stored put while rebuilding the index from the backend.
    pub fn restore(&mut self, key: &[u8], created: Revision, modified: Revision, version: i64) {
        let ki = self.keys.entry(key.to_vec()).or_default();
        if ki.is_live() {
            ki.put(modified);
        } else {
            ki.restore(created, modified, version);
        }
    }

    /// Records a delete of a live `key` at `rev`.
    pub fn tombstone(&mut self, key: &[u8], rev: Revision) {
        if let Some(ki) = self.keys.get_mut(key) {
            if ki.is_live() {
                ki.tombstone(rev);
            }
        }
    }

    /// Compacts every key at revision `at`; returns the revisions at or
    /// below `at` that are still needed. Keys with no history left go.
    pub fn compact(&mut self, at: i64) -> Vec<Revision> {
        let mut keep = Vec::new();
        self.keys.retain(|_, ki| {
            ki.compact(at, &mut keep);
            !ki.is_empty()
        });
        keep.sort_unstable();
        keep
    }
}
