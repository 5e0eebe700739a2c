//! Raft's durable log on the group-committed segment log ([`super::log`]):
//! everything a `Ready` asks to persist (new entries, the hard state) goes
//! out as one batch of records with one fdatasync, as etcd's WAL does.
//!
//! Records (a tag byte, then raft's protobuf encoding):
//! - `ENTRY`: a raft entry; one at an index already held replaces it and
//!   everything after it (a new leader overwrote an uncommitted tail);
//! - `HARD_STATE`: term, vote, commit;
//! - `CONF_STATE`: the configuration after a membership change;
//! - `COMPACTED`: snapshot metadata (with the configuration): entries up
//!   to its index are covered by a durable state machine and dropped;
//! - `RESTORED`: snapshot metadata: the state machine was replaced by a
//!   leader's snapshot; every entry held before it is void.
//!
//! Replaying the records in order rebuilds [`LogCore`]. Old segments are
//! deleted once every entry in them is compacted, after a `COMPACTED`
//! record plus the hard state have been written to the newest segment,
//! so nothing a restart needs lives only in a deleted file. The newest
//! segment may then begin in the middle of the log: entries below the
//! compaction point replayed from it are dropped when that record is read.

use std::path::Path;

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, SnapshotMetadata};

use super::error::pb_err;
use super::log::{Log, LogError};
use super::memlog::LogCore;
use super::NodeError;

const ENTRY: u8 = 1;
const HARD_STATE: u8 = 2;
const CONF_STATE: u8 = 3;
const COMPACTED: u8 = 4;
const RESTORED: u8 = 5;

/// What a segment holds, to know when it may go.
struct SegmentInfo {
    /// Its first record number.
    first: u64,
    /// The highest raft index of an entry in it (0: none).
    max_entry: u64,
}

/// Raft's log and hard state on disk.
pub(crate) struct RaftWal {
    log: Log,
    segments: Vec<SegmentInfo>,
    buf: Vec<Vec<u8>>,
    /// The term and vote last written (they must be durable at once).
    term_vote: (u64, u64),
    /// A hard state whose only change is the commit index: written with
    /// the next batch, not on its own (the commit index is learned again
    /// from the leader; etcd's WAL skips that fsync too).
    lazy_hs: Option<HardState>,
}

/// A record that cannot be what it claims: the log is damaged.
fn corrupt(what: String) -> NodeError {
    NodeError::Log(LogError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, what)))
}

fn record(tag: u8, msg: &dyn protobuf::Message) -> Result<Vec<u8>, NodeError> {
    let mut out = vec![tag];
    msg.write_to_vec(&mut out).map_err(pb_err)?;
    Ok(out)
}

impl RaftWal {
    /// Whether writes wait for fdatasync (see [`Log::set_fsync`]).
    pub(crate) fn set_fsync(&mut self, on: bool) {
        self.log.set_fsync(on);
    }

    /// Opens the log in `dir` and rebuilds raft's log from it. `initial`
    /// gives the configuration and starting point of a log that holds
    /// nothing yet (a new cluster, or a member joining from a snapshot);
    /// it is written as the first record.
    pub(crate) fn open(
        dir: &Path,
        initial: impl FnOnce() -> Result<SnapshotMetadata, NodeError>,
    ) -> Result<(RaftWal, LogCore), NodeError> {
        let (log, records) = Log::open(dir, 1)?;
        let starts = log.segment_starts();
        let mut segments: Vec<SegmentInfo> = starts
            .iter()
            .map(|&first| SegmentInfo { first, max_entry: 0 })
            .collect();
        let mut core = LogCore::default();
        let mut seg = 0;
        for r in &records {
            while seg + 1 < segments.len() && segments[seg + 1].first <= r.index {
                seg += 1;
            }
            let (&tag, body) = r
                .payload
                .split_first()
                .ok_or_else(|| corrupt(format!("raft log: empty record {}", r.index)))?;
            match tag {
                ENTRY => {
                    let mut e = Entry::default();
                    e.merge_from_bytes(body).map_err(pb_err)?;
                    segments[seg].max_entry = segments[seg].max_entry.max(e.index);
                    core.replay_entry(e);
                }
                HARD_STATE => core.hs.merge_from_bytes(body).map_err(pb_err)?,
                CONF_STATE => {
                    let mut cs = ConfState::default();
                    cs.merge_from_bytes(body).map_err(pb_err)?;
                    core.cs = cs;
                }
                COMPACTED | RESTORED => {
                    let mut meta = SnapshotMetadata::default();
                    meta.merge_from_bytes(body).map_err(pb_err)?;
                    core.start_at(meta, tag == RESTORED);
                }
                other => return Err(corrupt(format!("raft log: unknown record type {other} at {}", r.index))),
            }
        }
        let mut wal = RaftWal {
            log,
            segments,
            buf: Vec::new(),
            term_vote: (core.hs.term, core.hs.vote),
            lazy_hs: None,
        };
        if records.is_empty() {
            let meta = initial()?;
            core.start_at(meta.clone(), true);
            wal.buf.push(record(RESTORED, &meta)?);
            wal.flush(0)?;
        }
        if core.snap.index > 0 && core.snap.term == 0 {
            return Err(corrupt(format!(
                "raft log: entries before index {} are missing",
                core.snap.index + 1
            )));
        }
        Ok((wal, core))
    }

    /// Writes the records buffered so far with one fdatasync.
    fn flush(&mut self, max_entry: u64) -> Result<(), NodeError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Some(tail) = self.segments.last_mut() {
            tail.max_entry = tail.max_entry.max(max_entry);
        }
        let res = self.log.append(self.buf.iter().map(Vec::as_slice));
        self.buf.clear();
        res?;
        for first in self.log.segment_starts() {
            if self.segments.last().is_none_or(|s| s.first < first) {
                self.segments.push(SegmentInfo { first, max_entry: 0 });
            }
        }
        Ok(())
    }

    /// Makes a `Ready`'s new entries and hard state durable (one
    /// fdatasync). A hard state that only moves the commit index, with no
    /// entries, waits for the next write.
    pub(crate) fn save(&mut self, entries: &[Entry], hs: Option<&HardState>) -> Result<(), NodeError> {
        if let Some(hs) = hs {
            if entries.is_empty() && (hs.term, hs.vote) == self.term_vote {
                self.lazy_hs = Some(hs.clone());
                return Ok(());
            }
        }
        for e in entries {
            self.buf.push(record(ENTRY, e)?);
        }
        if let Some(hs) = hs.or(self.lazy_hs.as_ref()) {
            self.buf.push(record(HARD_STATE, hs)?);
            self.term_vote = (hs.term, hs.vote);
        }
        self.lazy_hs = None;
        self.flush(entries.last().map_or(0, |e| e.index))
    }

    /// Makes a new configuration durable.
    pub(crate) fn save_conf_state(&mut self, cs: &ConfState) -> Result<(), NodeError> {
        self.buf.push(record(CONF_STATE, cs)?);
        self.flush(0)
    }

    /// Records that `core` now starts after its snapshot point (compacted,
    /// or `restored` from a leader's snapshot), with its hard state, then
    /// deletes segments holding only entries up to that point.
    pub(crate) fn start_at(&mut self, core: &LogCore, restored: bool) -> Result<(), NodeError> {
        let meta = core.snapshot_meta();
        self.buf
            .push(record(if restored { RESTORED } else { COMPACTED }, &meta)?);
        self.buf.push(record(HARD_STATE, &core.hs)?);
        self.term_vote = (core.hs.term, core.hs.vote);
        self.lazy_hs = None;
        // The segment these records go to (the log may move on to a new
        // one right after them): it and everything after it stay.
        let holder = self.segments.len() - 1;
        self.flush(0)?;
        // Whole segments before it whose entries are all covered.
        let mut keep_from = None;
        for (i, s) in self.segments.iter().enumerate().take(holder) {
            if s.max_entry > meta.index && !restored {
                break;
            }
            keep_from = Some(i + 1);
        }
        if let Some(k) = keep_from {
            let first = self.segments[k].first;
            self.log.release(first - 1)?;
            self.segments.drain(..k);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: data.to_vec().into(),
            ..Default::default()
        }
    }

    fn start(voters: &[u64]) -> impl FnOnce() -> Result<SnapshotMetadata, NodeError> {
        let cs = ConfState::from((voters.to_vec(), vec![]));
        move || {
            let mut m = SnapshotMetadata::default();
            m.set_conf_state(cs);
            Ok(m)
        }
    }

    fn hs(term: u64, vote: u64, commit: u64) -> HardState {
        HardState {
            term,
            vote,
            commit,
            ..Default::default()
        }
    }

    #[test]
    fn entries_hard_state_and_overwrites_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, core) = RaftWal::open(dir.path(), start(&[1, 2, 3])).unwrap();
        assert_eq!(core.cs.voters, vec![1, 2, 3]);
        assert_eq!((core.first(), core.last()), (1, 0));
        wal.save(
            &[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
            Some(&hs(1, 1, 1)),
        )
        .unwrap();
        // A new leader replaces the uncommitted tail from index 2.
        wal.save(&[entry(2, 2, b"x")], Some(&hs(2, 2, 2))).unwrap();
        wal.save_conf_state(&ConfState::from((vec![1, 2], vec![4]))).unwrap();
        drop(wal);

        let (_, core) = RaftWal::open(dir.path(), || panic!("the log exists")).unwrap();
        let got: Vec<_> = core
            .entries
            .iter()
            .map(|e| (e.index, e.term, e.data.to_vec()))
            .collect();
        assert_eq!(got, vec![(1, 1, b"a".to_vec()), (2, 2, b"x".to_vec())]);
        assert_eq!(core.hs, hs(2, 2, 2));
        assert_eq!(
            (core.cs.voters.clone(), core.cs.learners.clone()),
            (vec![1, 2], vec![4])
        );
    }

    #[test]
    fn a_commit_only_hard_state_waits_for_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = RaftWal::open(dir.path(), start(&[1, 2, 3])).unwrap();
        wal.save(&[entry(1, 1, b"a")], Some(&hs(1, 2, 0))).unwrap();
        wal.save(&[], Some(&hs(1, 2, 1))).unwrap();
        let (_, core) = RaftWal::open(dir.path(), || panic!("the log exists")).unwrap();
        assert_eq!(core.hs, hs(1, 2, 0), "not written on its own");
        // A vote is written at once, and carries the newest commit.
        wal.save(&[], Some(&hs(2, 3, 1))).unwrap();
        let (_, core) = RaftWal::open(dir.path(), || panic!("the log exists")).unwrap();
        assert_eq!(core.hs, hs(2, 3, 1));
        wal.save(&[], Some(&hs(2, 3, 5))).unwrap();
        wal.save(&[entry(2, 2, b"b")], None).unwrap();
        let (_, core) = RaftWal::open(dir.path(), || panic!("the log exists")).unwrap();
        assert_eq!(core.hs, hs(2, 3, 5), "the waiting commit went with the entries");
    }

    #[test]
    fn compaction_deletes_old_segments_and_keeps_what_restart_needs() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, mut core) = RaftWal::open(dir.path(), start(&[1])).unwrap();
        let big = vec![7u8; 256 * 1024];
        // 256 KiB entries until a third segment holds five.
        let mut index = 0;
        let mut more = 5;
        while more > 0 {
            index += 1;
            let e = entry(index, 3, &big);
            wal.save(std::slice::from_ref(&e), Some(&hs(3, 1, index))).unwrap();
            core.append(&[e]);
            if wal.segments.len() == 3 {
                more -= 1;
            }
        }
        core.hs = hs(3, 1, index);
        let segs_before = wal.log.segment_starts().len();
        // Compact to an index inside the second segment: only the first goes.
        let second_max = wal.segments[1].max_entry;
        core.compact(second_max - 1).unwrap();
        wal.start_at(&core, false).unwrap();
        assert_eq!(wal.log.segment_starts().len(), segs_before - 1);
        // Past the second segment: it goes too.
        core.compact(second_max + 1).unwrap();
        wal.start_at(&core, false).unwrap();
        assert_eq!(wal.log.segment_starts().len(), segs_before - 2);
        drop(wal);

        let (_, again) = RaftWal::open(dir.path(), || panic!("the log exists")).unwrap();
        assert_eq!(again.snap.index, second_max + 1);
        assert_eq!(again.snap.term, 3);
        assert_eq!((again.first(), again.last()), (second_max + 2, index));
        assert_eq!(again.hs, hs(3, 1, index));
        assert_eq!(again.cs.voters, vec![1]);
    }

    #[test]
    fn the_segment_holding_the_new_start_is_kept_when_the_log_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, mut core) = RaftWal::open(dir.path(), start(&[1])).unwrap();
        let mut index = 0;
        let mut save = |wal: &mut RaftWal, core: &mut LogCore, size: usize| {
            index += 1;
            let e = entry(index, 2, &vec![1u8; size]);
            wal.save(std::slice::from_ref(&e), None).unwrap();
            core.append(&[e]);
        };
        // Fill the first segment to just below the size that closes it, so
        // that the start record is the last thing written to it.
        while wal.log.tail_len() + (1 << 20) + 100 < super::super::log::SEGMENT_BYTES {
            save(&mut wal, &mut core, 1 << 20);
        }
        while wal.log.tail_len() + 40 < super::super::log::SEGMENT_BYTES {
            save(&mut wal, &mut core, 1);
        }
        assert_eq!(wal.segments.len(), 1);
        let mut meta = SnapshotMetadata {
            index: index + 10,
            term: 3,
            ..Default::default()
        };
        meta.set_conf_state(ConfState::from((vec![1], vec![])));
        core.start_at(meta, true);
        core.hs = hs(3, 1, index + 10);
        wal.start_at(&core, true).unwrap();
        assert_eq!(wal.segments.len(), 2, "the log moved on to a new segment");
        drop(wal);
        let (_, again) = RaftWal::open(dir.path(), || panic!("the log exists")).unwrap();
        assert_eq!((again.snap.index, again.snap.term), (index + 10, 3));
        assert_eq!(again.hs, hs(3, 1, index + 10));
    }

    #[test]
    fn a_restored_snapshot_voids_the_old_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, mut core) = RaftWal::open(dir.path(), start(&[1, 2, 3])).unwrap();
        let ents = [entry(1, 1, b"a"), entry(2, 1, b"b")];
        wal.save(&ents, Some(&hs(1, 0, 1))).unwrap();
        core.append(&ents);
        let mut meta = SnapshotMetadata {
            index: 50,
            term: 4,
            ..Default::default()
        };
        meta.set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
        core.start_at(meta, true);
        core.hs = hs(4, 0, 50);
        wal.start_at(&core, true).unwrap();
        wal.save(&[entry(51, 4, b"c")], None).unwrap();
        drop(wal);

        let (_, again) = RaftWal::open(dir.path(), || panic!("the log exists")).unwrap();
        assert_eq!((again.snap.index, again.snap.term), (50, 4));
        assert_eq!((again.first(), again.last()), (51, 51));
        assert_eq!(again.term(51).unwrap(), 4);
        assert_eq!(again.hs.commit, 50);
    }

    #[test]
    fn a_missing_start_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = Log::open(dir.path(), 1).unwrap();
            let rec = record(ENTRY, &entry(7, 2, b"x")).unwrap();
            log.append([rec.as_slice()]).unwrap();
        }
        assert!(RaftWal::open(dir.path(), || panic!("the log exists")).is_err());
    }
}
