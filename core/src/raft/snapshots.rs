//! Raft snapshots that never sit whole in memory.
//!
//! A snapshot raft-rs hands the transport carries only its metadata and a
//! marker ([`STREAMED`]) as data; the state itself is a read transaction
//! pinned at the snapshot's index ([`SnapshotSource`]), streamed to the
//! peer as a snapshot file while the message is sent. The receiver spools
//! the file to `<data>/raft-snap/<index>.snap` (checked, durable), then
//! the raft loop claims it (`<index>.claimed`) and steps the message;
//! applying it installs the file record by record.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use protobuf::Message as _;
use raft::prelude::{Message as RaftMessage, MessageType, Snapshot};

use crate::api::error::EtcdError;
use crate::storage::{SnapshotSource, SnapshotSpool};

/// A streamed snapshot's `data`: the state goes beside the message.
pub(crate) const STREAMED: &[u8] = b"concord-snapshot-stream/1";

/// The snapshot offered to lagging members, and where received ones land.
pub(crate) struct Snapshots {
    dir: PathBuf,
    outgoing: Mutex<Option<(Snapshot, Arc<SnapshotSource>)>>,
}

impl Snapshots {
    /// Received snapshots go to `dir`; what an earlier run left there
    /// (spooled, never applied: the leader sends again) is removed.
    pub(crate) fn new(dir: PathBuf) -> Snapshots {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Snapshots {
            dir,
            outgoing: Mutex::new(None),
        }
    }

    /// The snapshot on offer, if it is at `request_index` or later.
    pub(crate) fn offered(&self, request_index: u64) -> Option<Snapshot> {
        let out = self.outgoing.lock();
        out.as_ref()
            .filter(|(s, _)| s.get_metadata().index >= request_index)
            .map(|(s, _)| s.clone())
    }

    /// Offers `snap` (data [`STREAMED`]), whose state `source` streams.
    pub(crate) fn offer(&self, snap: Snapshot, source: SnapshotSource) {
        *self.outgoing.lock() = Some((snap, Arc::new(source)));
    }

    /// Drops the snapshot on offer (a send finished), so its read
    /// transaction no longer pins old pages; the next one is made afresh.
    pub(crate) fn release(&self) {
        self.outgoing.lock().take();
    }

    /// The state to stream with `msg`, when it is a streamed snapshot
    /// still on offer.
    pub(crate) fn source_for(&self, msg: &[u8]) -> Option<Arc<SnapshotSource>> {
        let index = streamed_index(msg)?;
        let out = self.outgoing.lock();
        out.as_ref()
            .filter(|(s, _)| s.get_metadata().index == index)
            .map(|(_, src)| Arc::clone(src))
    }

    /// Claims the state received for a streamed snapshot at `index`, just
    /// before its message is stepped: the spooled file is renamed out of
    /// the way of later transfers (which remove every unclaimed file), so
    /// it is still there when raft hands the snapshot back to be applied.
    /// A claim replaces any earlier one at a lower index (raft, having
    /// taken the newer snapshot, will not apply the older one). `false`:
    /// nothing was received for `index`, and the message must be dropped.
    pub(crate) fn claim(&self, index: u64) -> bool {
        if std::fs::rename(self.dir.join(format!("{index}.snap")), self.claimed(index)).is_err() {
            return false;
        }
        self.remove(|name| claimed_index(name).is_some_and(|i| i < index));
        true
    }

    /// Where a claimed snapshot's state is, until it is applied.
    pub(crate) fn claimed(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{index}.claimed"))
    }

    /// Drops the claims up to `index` (that snapshot is applied).
    pub(crate) fn applied(&self, index: u64) {
        self.remove(|name| claimed_index(name).is_some_and(|i| i <= index));
    }

    /// Starts receiving the state sent with `msg` (refused unless it is a
    /// streamed snapshot), at most `limit` bytes. Apart from claimed ones,
    /// one received snapshot is kept at a time: any other unclaimed file
    /// is removed first, so senders cannot fill the disk with them.
    pub(crate) fn spool(&self, msg: &[u8], limit: u64) -> Result<SnapshotSpool, EtcdError> {
        let index = streamed_index(msg)
            .ok_or_else(|| EtcdError::InvalidRequest("concord: not a streamed raft snapshot".into()))?;
        self.remove(|name| claimed_index(name).is_none());
        SnapshotSpool::create(&self.dir, &format!("{index}.snap"), limit)
            .map_err(|e| EtcdError::Internal(e.to_string()))
    }

    /// Removes the files whose names `pick` chooses.
    fn remove(&self, pick: impl Fn(&str) -> bool) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_name().to_str().is_some_and(&pick) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// The index of a claimed snapshot's file name.
fn claimed_index(name: &str) -> Option<u64> {
    name.strip_suffix(".claimed")?.parse().ok()
}

/// The index of `msg` if it is a snapshot whose state is streamed.
fn streamed_index(msg: &[u8]) -> Option<u64> {
    let m = RaftMessage::parse_from_bytes(msg).ok()?;
    (m.get_msg_type() == MessageType::MsgSnapshot && m.get_snapshot().data.as_ref() == STREAMED)
        .then(|| m.get_snapshot().get_metadata().index)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    fn message(index: u64) -> Vec<u8> {
        let mut m = RaftMessage::default();
        m.set_msg_type(MessageType::MsgSnapshot);
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = index;
        snap.data = STREAMED.to_vec().into();
        m.set_snapshot(snap);
        m.write_to_bytes().unwrap()
    }

    /// Receives a (checked, not decodable) state for a snapshot at `index`.
    fn receive(s: &Snapshots, index: u64, body: &[u8]) {
        let mut spool = s.spool(&message(index), 1 << 20).unwrap();
        spool.write(body).unwrap();
        spool.write(&Sha256::digest(body)).unwrap();
        spool.finish().unwrap();
    }

    #[test]
    fn a_claimed_snapshot_outlives_later_transfers_until_applied() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshots::new(dir.path().join("raft-snap"));
        assert!(!s.claim(7), "nothing received yet");
        receive(&s, 7, b"seven");
        assert!(s.claim(7));
        // Another transfer starts (and ends) before the stepped snapshot
        // is applied: the claimed state must still be there.
        receive(&s, 9, b"nine");
        let mut spool = s.spool(&message(8), 1 << 20).unwrap();
        spool.write(b"half of it").unwrap();
        assert!(s.claimed(7).exists());
        assert!(
            !dir.path().join("raft-snap/9.snap").exists(),
            "one unclaimed file at a time"
        );
        drop(spool);
        s.applied(7);
        assert!(!s.claimed(7).exists());
    }

    #[test]
    fn a_newer_claim_replaces_an_older_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshots::new(dir.path().join("raft-snap"));
        receive(&s, 7, b"seven");
        assert!(s.claim(7));
        receive(&s, 9, b"nine");
        assert!(s.claim(9));
        assert!(!s.claimed(7).exists());
        assert!(s.claimed(9).exists());
        assert!(!s.claim(9), "a claim is taken once");
    }
}
