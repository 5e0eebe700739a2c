//! Raft's log in memory: what raft-rs reads through its `Storage` trait,
//! rebuilt from the durable records (`wal`) at start.

use raft::prelude::{ConfState, Entry, HardState, SnapshotMetadata};

/// Raft's log in memory: entries after the last compaction point.
#[derive(Default)]
pub(crate) struct LogCore {
    pub(crate) hs: HardState,
    pub(crate) cs: ConfState,
    /// The last compacted (or restored) point; its conf state is unused.
    pub(crate) snap: SnapshotMetadata,
    pub(crate) entries: Vec<Entry>,
}

impl LogCore {
    pub(crate) fn first(&self) -> u64 {
        self.snap.index + 1
    }

    pub(crate) fn last(&self) -> u64 {
        self.snap.index + self.entries.len() as u64
    }

    pub(crate) fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snap.index {
            return Ok(self.snap.term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        Ok(self.entries[(idx - self.first()) as usize].term)
    }

    /// Appends, replacing any entries at or after the first new index.
    pub(crate) fn append(&mut self, ents: &[Entry]) {
        let Some(first_new) = ents.first().map(|e| e.index) else {
            return;
        };
        let keep = first_new.saturating_sub(self.first()) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(ents);
    }

    /// Drops entries up to `idx`, which becomes the snapshot point.
    pub(crate) fn compact(&mut self, idx: u64) -> raft::Result<()> {
        if idx <= self.snap.index || idx > self.last() {
            return Ok(());
        }
        let term = self.term(idx)?;
        let n = (idx - self.snap.index) as usize;
        self.entries.drain(..n);
        self.snap.index = idx;
        self.snap.term = term;
        Ok(())
    }

    pub(crate) fn snapshot_meta(&self) -> SnapshotMetadata {
        let mut m = self.snap.clone();
        m.set_conf_state(self.cs.clone());
        m
    }

    /// Makes the log start after `meta`'s point, taking its configuration:
    /// entries up to it are dropped, and with `restored` every entry is
    /// (the state machine came from a leader's snapshot).
    pub(crate) fn start_at(&mut self, mut meta: SnapshotMetadata, restored: bool) {
        self.cs = meta.take_conf_state();
        if restored || meta.index > self.last() {
            self.entries.clear();
        } else if meta.index > self.snap.index {
            let n = (meta.index - self.snap.index) as usize;
            self.entries.drain(..n);
        } else {
            return;
        }
        self.snap = meta;
    }

    /// Adds one entry read back from disk: it replaces any entry at or
    /// after its index. Entries at or below the start are dropped; one
    /// beyond the end (the disk log begins mid-way, after compaction)
    /// starts the log there, its start point to be confirmed by a later
    /// compaction record.
    pub(crate) fn replay_entry(&mut self, e: Entry) {
        if e.index <= self.snap.index {
            return;
        }
        if e.index > self.last() + 1 {
            self.entries.clear();
            self.snap = SnapshotMetadata {
                index: e.index - 1,
                term: 0,
                ..Default::default()
            };
        }
        self.append(std::slice::from_ref(&e));
    }
}
