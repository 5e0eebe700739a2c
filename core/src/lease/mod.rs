//! Leases: the state every member agrees on (which leases exist, their
//! granted TTL, which keys are attached), kept by the [`Lessor`] and
//! changed only by applied log entries. When a lease expires is not part
//! of it: expiry is decided by one member (the leader) from its own clock
//! and reaches the state as a logged revoke, so every member deletes the
//! same keys at the same revision.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::mvcc::Leases;

/// The largest TTL a lease may be granted, in seconds (etcd's limit).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// The smallest TTL granted, in seconds: etcd's minimum for its default
/// election timeout (1.5 × election timeout, rounded up).
pub const MIN_LEASE_TTL: i64 = 2;

/// One granted lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// The TTL it was granted with, in seconds.
    pub ttl: i64,
    /// Keys attached to it.
    pub keys: BTreeSet<Vec<u8>>,
}

/// Every lease and key attachment.
#[derive(Clone, Debug, Default)]
pub struct Lessor {
    leases: BTreeMap<i64, Lease>,
    /// key → the lease it is attached to.
    items: HashMap<Vec<u8>, i64>,
}

impl Lessor {
    /// Adds a lease; false if the ID is taken.
    pub fn grant(&mut self, id: i64, ttl: i64) -> bool {
        if self.leases.contains_key(&id) {
            return false;
        }
        self.leases.insert(
            id,
            Lease {
                ttl,
                keys: BTreeSet::new(),
            },
        );
        true
    }

    /// Removes a lease and returns the keys that were attached to it.
    pub fn revoke(&mut self, id: i64) -> Option<BTreeSet<Vec<u8>>> {
        let lease = self.leases.remove(&id)?;
        for k in &lease.keys {
            self.items.remove(k);
        }
        Some(lease.keys)
    }

    /// A lease by ID.
    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// All leases, by ID.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &Lease)> {
        self.leases.iter().map(|(id, l)| (*id, l))
    }

    /// Number of leases.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// True if no lease is granted.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }
}

impl Leases for Lessor {
    fn exists(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    fn attach(&mut self, key: &[u8], id: i64) {
        if self.items.get(key) == Some(&id) {
            return;
        }
        self.detach(key);
        if id == 0 {
            return;
        }
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.insert(key.to_vec());
            self.items.insert(key.to_vec(), id);
        }
    }

    fn detach(&mut self, key: &[u8]) {
        if let Some(old) = self.items.remove(key) {
            if let Some(l) = self.leases.get_mut(&old) {
                l.keys.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_moves_keys_between_leases() {
        let mut l = Lessor::default();
        assert!(l.grant(1, 10));
        assert!(l.grant(2, 10));
        assert!(!l.grant(1, 5), "IDs are unique");
        l.attach(b"k", 1);
        l.attach(b"k", 2);
        assert!(l.get(1).unwrap().keys.is_empty());
        assert_eq!(l.get(2).unwrap().keys.len(), 1);
        l.attach(b"k", 0);
        assert!(l.get(2).unwrap().keys.is_empty());
        l.attach(b"j", 2);
        assert_eq!(
            l.revoke(2).unwrap().into_iter().collect::<Vec<_>>(),
            vec![b"j".to_vec()]
        );
        assert!(l.revoke(2).is_none());
        l.detach(b"j");
    }
}
