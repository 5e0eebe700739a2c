//! What operators run on a member's backend: defragmentation, the
//! content hashes members compare, and snapshot files.
//!
//! A snapshot file is a `concordpb.Snapshot` (with `format` set to
//! [`SNAPSHOT_FORMAT`]) followed by the SHA-256 of those bytes, as etcd
//! appends a SHA-256 to its own snapshot files; the content is padded to a
//! multiple of 512 bytes (field `padding`), as etcdctl expects of a file
//! with a checksum. It is written as a stream
//! from one read transaction, so a snapshot of a large store never sits
//! in memory whole.

use std::time::{Duration, Instant};

use prost::Message;
use redb::{ReadTransaction, ReadableDatabase, ReadableTable};
use sha2::{Digest, Sha256};

use super::{Storage, StorageError, AUTH, KV, LEASE};
use crate::api::concordpb::{KvRecord, LeaseRecord, Snapshot as SnapshotData};
use crate::mvcc::Revision;
use crate::state_machine::StateMachine;

/// The `format` of Concord's snapshot files.
pub const SNAPSHOT_FORMAT: &str = "concord-snapshot/1";
/// Bytes of the checksum at a snapshot file's end.
const CHECKSUM_LEN: usize = 32;
/// Snapshot bytes handed on at a time.
const CHUNK: usize = 64 * 1024;
/// How long a defragmentation waits for reads in progress to end.
const DEFRAG_WAIT: Duration = Duration::from_secs(10);

/// Why a snapshot file cannot be restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotFileError {
    /// Shorter than a checksum: cut off, or not a snapshot.
    #[error("snapshot file is truncated: {0} bytes is too short to be a snapshot")]
    TooShort(usize),
    /// The checksum at the end does not match the content.
    #[error("snapshot file is corrupt or truncated: its SHA-256 does not match its content")]
    Checksum,
    /// The content is not a Concord snapshot.
    #[error("not a Concord snapshot file ({0})")]
    NotASnapshot(String),
}

/// A consistent copy of the state machine being written out.
pub struct SnapshotSource {
    txn: ReadTransaction,
    /// Everything but the changes and leases (the v2 key space is in
    /// memory already, so it goes here too).
    head: Vec<u8>,
}

/// Feeds bytes to a sink in [`CHUNK`]s, hashing them on the way.
struct ChunkedWriter<'a> {
    buf: Vec<u8>,
    hash: Sha256,
    sink: &'a mut dyn FnMut(Vec<u8>) -> bool,
    open: bool,
    /// Bytes pushed so far.
    written: u64,
}

impl ChunkedWriter<'_> {
    fn push(&mut self, bytes: &[u8]) {
        self.written += bytes.len() as u64;
        self.hash.update(bytes);
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.open && !self.buf.is_empty() {
            self.open = (self.sink)(std::mem::take(&mut self.buf));
        }
        self.buf.clear();
    }
}

impl super::Dump {
    /// The dump as a snapshot file's bytes, streamed (see
    /// [`SnapshotSource::write`]) rather than read into memory.
    pub fn into_source(self) -> SnapshotSource {
        let super::Dump { txn, mut head } = self;
        head.format = SNAPSHOT_FORMAT.into();
        SnapshotSource {
            txn,
            head: head.encode_to_vec(),
        }
    }

    /// What the dump holds besides changes and leases (small: auth,
    /// members, alarms, the v2 tree).
    pub fn head(&self) -> &SnapshotData {
        &self.head
    }
}

impl SnapshotSource {
    /// The file's size in bytes (content and checksum): one pass over the
    /// copy, reading lengths only.
    pub fn len(&self) -> Result<u64, StorageError> {
        let mut total = self.head.len() as u64;
        for entry in self.txn.open_table(KV)?.iter()? {
            let (k, v) = entry?;
            total += field_len(record_len(k.value().len(), v.value().len()));
        }
        for entry in self.txn.open_table(LEASE)?.iter()? {
            let (id, ttl) = entry?;
            total += field_len(
                LeaseRecord {
                    id: id.value(),
                    ttl: ttl.value(),
                }
                .encoded_len(),
            );
        }
        Ok(total + padding(total).len() as u64 + CHECKSUM_LEN as u64)
    }

    /// Whether the copy is empty (it never is: it has a header).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the file's bytes to `sink`, in chunks of about 64 KiB; stops
    /// early (returning `false`) when `sink` answers `false`.
    pub fn write(&self, sink: &mut dyn FnMut(Vec<u8>) -> bool) -> Result<bool, StorageError> {
        let mut w = ChunkedWriter {
            buf: Vec::with_capacity(CHUNK * 2),
            hash: Sha256::new(),
            sink,
            open: true,
            written: 0,
        };
        w.push(&self.head);
        let mut field = Vec::new();
        for entry in self.txn.open_table(KV)?.iter()? {
            let (k, v) = entry?;
            field.clear();
            prost::encoding::message::encode(
                3,
                &KvRecord {
                    revision: k.value().to_vec(),
                    record: v.value().to_vec(),
                },
                &mut field,
            );
            w.push(&field);
            if !w.open {
                return Ok(false);
            }
        }
        for entry in self.txn.open_table(LEASE)?.iter()? {
            let (id, ttl) = entry?;
            field.clear();
            prost::encoding::message::encode(
                4,
                &LeaseRecord {
                    id: id.value(),
                    ttl: ttl.value(),
                },
                &mut field,
            );
            w.push(&field);
        }
        let pad = padding(w.written);
        w.push(&pad);
        let digest = w.hash.clone().finalize();
        w.buf.extend_from_slice(&digest);
        w.flush();
        Ok(w.open)
    }
}

/// The `padding` field that brings `content` bytes to a multiple of 512.
fn padding(content: u64) -> Vec<u8> {
    let mut target = (512 - content % 512) % 512;
    loop {
        // Key (one byte: field 15, length-delimited), length, bytes.
        if target >= 2 {
            for n in target.saturating_sub(11)..=target - 2 {
                if 1 + prost::encoding::encoded_len_varint(n) as u64 + n == target {
                    let mut out = Vec::with_capacity(target as usize);
                    prost::encoding::bytes::encode(15, &vec![0u8; n as usize], &mut out);
                    return out;
                }
            }
        }
        target += 512;
    }
}

/// Encoded length of a `KvRecord` with a key and a value of these sizes.
fn record_len(k: usize, v: usize) -> usize {
    let bytes = |n: usize| {
        if n == 0 {
            0
        } else {
            1 + prost::encoding::encoded_len_varint(n as u64) + n
        }
    };
    bytes(k) + bytes(v)
}

/// Encoded length of a length-delimited field (tag < 16) holding `n` bytes.
fn field_len(n: usize) -> u64 {
    (1 + prost::encoding::encoded_len_varint(n as u64) + n) as u64
}

/// Reads a snapshot file's content: its checksum verified (unless
/// `verify` is false, as etcd's `--skip-hash-check`), then decoded.
pub fn read_snapshot_file(bytes: &[u8], verify: bool) -> Result<SnapshotData, SnapshotFileError> {
    if bytes.len() < CHECKSUM_LEN {
        return Err(SnapshotFileError::TooShort(bytes.len()));
    }
    let (content, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if verify && Sha256::digest(content)[..] != *sum {
        return Err(SnapshotFileError::Checksum);
    }
    let snap = SnapshotData::decode(content).map_err(|e| SnapshotFileError::NotASnapshot(e.to_string()))?;
    if snap.format != SNAPSHOT_FORMAT {
        return Err(SnapshotFileError::NotASnapshot(format!(
            "format {:?}, expected {SNAPSHOT_FORMAT:?}",
            snap.format
        )));
    }
    Ok(snap)
}

impl Storage {
    /// Begins a consistent copy for a snapshot file. Call it with the
    /// state machine's lock held (the copy then holds exactly what `sm`
    /// describes); the copy itself needs no lock.
    pub fn snapshot_source(&self, sm: &StateMachine) -> Result<SnapshotSource, StorageError> {
        Ok(self.dump_start(sm)?.into_source())
    }

    /// Rewrites the database file without its free pages, so it shrinks
    /// (etcd's defragment). Waits up to 10 s for reads in progress (a
    /// snapshot being sent, a long range) to end; writes must be held off
    /// by the caller.
    pub fn defragment(&self) -> Result<(), StorageError> {
        let mut db = self.db.write();
        let deadline = Instant::now() + DEFRAG_WAIT;
        for _ in 0..8 {
            match db.compact() {
                Ok(true) => {}
                Ok(false) => break,
                Err(redb::CompactionError::TransactionInProgress) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(StorageError::Db(e.into())),
            }
        }
        Ok(())
    }

    /// A consistent view to hash (see [`HashView`]); take it with the
    /// state machine's lock held, hash after letting go of it.
    pub fn hash_view(&self) -> Result<HashView, StorageError> {
        Ok(HashView {
            txn: self.db.read_recursive().begin_read()?,
        })
    }
}

/// The stored state at one moment, for the hashes members compare.
pub struct HashView {
    txn: ReadTransaction,
}

impl HashView {
    /// CRC-32 of every stored change up to revision `rev` (key: the
    /// revision; value: the stored record), as etcd's HashKV hashes its
    /// key bucket. Members that applied the same log agree on it; compare
    /// it only at equal compaction revisions. Walks the whole history up
    /// to `rev`.
    pub fn hash_kv(&self, rev: i64) -> Result<u32, StorageError> {
        let txn = &self.txn;
        let mut h = crc32fast::Hasher::new();
        h.update(b"key");
        let end = Revision::new(rev, i64::MAX).to_bytes();
        for entry in txn.open_table(KV)?.range(..=end.as_slice())? {
            let (k, v) = entry?;
            h.update(k.value());
            h.update(v.value());
        }
        Ok(h.finalize())
    }

    /// CRC-32 of the whole replicated state (changes, leases, auth, member
    /// list and alarms; not the member's own bookkeeping), as etcd's Hash.
    pub fn hash(&self) -> Result<u32, StorageError> {
        let txn = &self.txn;
        let mut h = crc32fast::Hasher::new();
        h.update(b"key");
        for entry in txn.open_table(KV)?.iter()? {
            let (k, v) = entry?;
            h.update(k.value());
            h.update(v.value());
        }
        h.update(b"lease");
        for entry in txn.open_table(LEASE)?.iter()? {
            let (id, ttl) = entry?;
            h.update(&id.value().to_be_bytes());
            h.update(&ttl.value().to_be_bytes());
        }
        h.update(b"auth");
        for entry in txn.open_table(AUTH)?.iter()? {
            let (k, v) = entry?;
            h.update(k.value().as_bytes());
            h.update(v.value());
        }
        Ok(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_fills_to_a_multiple_of_512() {
        for content in [0u64, 1, 2, 100, 381, 382, 383, 384, 510, 511, 512, 513, 4000, 100_001] {
            let p = padding(content);
            assert_eq!((content + p.len() as u64) % 512, 0, "content {content}");
            let decoded = SnapshotData::decode(p.as_slice()).unwrap();
            assert!(decoded.padding.iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn a_cut_or_altered_file_is_refused() {
        let snap = SnapshotData {
            current_revision: 7,
            format: SNAPSHOT_FORMAT.into(),
            ..Default::default()
        };
        let mut bytes = snap.encode_to_vec();
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        assert_eq!(read_snapshot_file(&bytes, true).unwrap().current_revision, 7);
        let cut = &bytes[..bytes.len() - 5];
        assert!(matches!(
            read_snapshot_file(cut, true),
            Err(SnapshotFileError::Checksum)
        ));
        assert!(matches!(
            read_snapshot_file(&bytes[..10], true),
            Err(SnapshotFileError::TooShort(10))
        ));
        let mut altered = bytes.clone();
        altered[1] ^= 1;
        assert!(matches!(
            read_snapshot_file(&altered, true),
            Err(SnapshotFileError::Checksum)
        ));
        let other = b"not a snapshot at all, but long enough to have a checksum....";
        assert!(read_snapshot_file(other, true).is_err());
    }
}
