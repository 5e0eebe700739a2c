//! Moving a whole state machine between members without holding it in
//! memory: the sender streams a snapshot file ([`super::SnapshotSource`],
//! 64 KiB at a time), the receiver spools it to disk ([`SnapshotSpool`],
//! checking its size bound and SHA-256 as it goes), then installs it
//! record by record ([`Storage::install_file`]).
//!
//! The file is an encoded `concordpb.Snapshot` followed by its SHA-256
//! (the format of `etcdctl snapshot save` files here). Protobuf lets a
//! message be read field by field: changes (`kvs`, field 3) and leases
//! (field 4) go straight into the database as they are read; the other
//! fields (auth, members, alarms, the v2 tree: state the member holds in
//! memory anyway) are gathered and decoded at the end.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use sha2::{Digest, Sha256};

use super::{Storage, StorageError, WriteView, KV};
use crate::api::concordpb::{KvRecord, LeaseRecord, Snapshot as SnapshotData};

/// Bytes of the SHA-256 that ends a snapshot file.
const CHECKSUM_LEN: usize = 32;
const KVS_FIELD: u64 = 3;
const LEASES_FIELD: u64 = 4;
const PADDING_FIELD: u64 = 15;

/// Why a snapshot could not be received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// Writing the file failed.
    #[error("snapshot spool: {0}")]
    Io(#[from] io::Error),
    /// The sender sent more than the receiver accepts.
    #[error("snapshot larger than {0} bytes refused")]
    TooLarge(u64),
    /// The bytes received are not what the sender hashed (cut short or damaged).
    #[error("snapshot received damaged or incomplete ({0} bytes): its SHA-256 does not match")]
    Checksum(u64),
}

/// A snapshot being received into a file: `<name>.part` until
/// [`SnapshotSpool::finish`] has checked it and renamed it to `<name>`
/// (durably). Dropped unfinished, the partial file is removed.
pub struct SnapshotSpool {
    file: io::BufWriter<File>,
    part: PathBuf,
    path: PathBuf,
    limit: u64,
    written: u64,
    hash: Sha256,
    /// The last bytes written, not hashed yet: they may be the checksum.
    tail: Vec<u8>,
    finished: bool,
}

impl SnapshotSpool {
    /// Starts receiving into `dir/name` (creating `dir`), refusing more
    /// than `limit` bytes.
    pub fn create(dir: &Path, name: &str, limit: u64) -> Result<SnapshotSpool, SpoolError> {
        crate::fsync::create_dir_all(dir)?;
        let path = dir.join(name);
        let part = dir.join(format!("{name}.part"));
        let file = File::create(&part)?;
        Ok(SnapshotSpool {
            file: io::BufWriter::with_capacity(256 * 1024, file),
            part,
            path,
            limit,
            written: 0,
            hash: Sha256::new(),
            tail: Vec::with_capacity(2 * CHECKSUM_LEN),
            finished: false,
        })
    }

    /// Appends received bytes.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        self.written += chunk.len() as u64;
        if self.written > self.limit {
            return Err(SpoolError::TooLarge(self.limit));
        }
        self.file.write_all(chunk)?;
        // Hash all but the last CHECKSUM_LEN bytes seen so far.
        if chunk.len() >= CHECKSUM_LEN {
            self.hash.update(&self.tail);
            let (body, tail) = chunk.split_at(chunk.len() - CHECKSUM_LEN);
            self.hash.update(body);
            self.tail.clear();
            self.tail.extend_from_slice(tail);
        } else {
            self.tail.extend_from_slice(chunk);
            let extra = self.tail.len().saturating_sub(CHECKSUM_LEN);
            self.hash.update(&self.tail[..extra]);
            self.tail.drain(..extra);
        }
        Ok(())
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Checks the checksum, makes the file durable under its final name,
    /// and returns that name.
    pub fn finish(mut self) -> Result<PathBuf, SpoolError> {
        if self.tail.len() < CHECKSUM_LEN || self.hash.clone().finalize()[..] != self.tail[..] {
            return Err(SpoolError::Checksum(self.written));
        }
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        std::fs::rename(&self.part, &self.path)?;
        crate::fsync::sync_parent(&self.path)?;
        self.finished = true;
        Ok(self.path.clone())
    }
}

impl Drop for SnapshotSpool {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

impl Storage {
    /// Replaces the state machine's data with the snapshot file at `path`
    /// (as spooled: checked), applied up to `index`, durably; returns the
    /// snapshot's fields other than changes and leases.
    pub fn install_file(&self, path: &Path, index: u64) -> Result<SnapshotData, StorageError> {
        let db = self.db.read_recursive();
        let txn = db.begin_write()?;
        let head = {
            let mut view = WriteView {
                txn: &txn,
                table: txn.open_table(KV)?,
            };
            view.restore_file(path, index)?
        };
        txn.commit()?;
        Ok(head)
    }
}

impl WriteView<'_> {
    /// [`WriteView::restore`] from a snapshot file, read record by record.
    pub fn restore_file(&mut self, path: &Path, applied_index: u64) -> Result<SnapshotData, StorageError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let content = len
            .checked_sub(CHECKSUM_LEN as u64)
            .ok_or_else(|| corrupt(format!("{} is {len} bytes: too short", path.display())))?;
        let mut reader = BufReader::with_capacity(256 * 1024, file).take(content);
        self.clear_for_restore()?;
        let mut head = Vec::new();
        let mut field = Vec::new();
        while let Some(key) = read_varint(&mut reader)? {
            let (number, wire) = (key >> 3, key & 7);
            match wire {
                // varint: a scalar of the head
                0 => {
                    let v = read_varint(&mut reader)?.ok_or_else(|| corrupt("cut inside a field".into()))?;
                    prost::encoding::encode_varint(key, &mut head);
                    prost::encoding::encode_varint(v, &mut head);
                }
                // length-delimited: a record, padding, or a message of the head
                2 => {
                    let n = read_varint(&mut reader)?.ok_or_else(|| corrupt("cut inside a field".into()))?;
                    if n > reader.limit() {
                        return Err(corrupt(format!("a field of {n} bytes runs past the end")));
                    }
                    field.clear();
                    field.resize(n as usize, 0);
                    reader.read_exact(&mut field)?;
                    match number {
                        KVS_FIELD => {
                            let r = KvRecord::decode(field.as_slice()).map_err(|e| corrupt(e.to_string()))?;
                            self.restore_kv(&r)?;
                        }
                        LEASES_FIELD => {
                            let l = LeaseRecord::decode(field.as_slice()).map_err(|e| corrupt(e.to_string()))?;
                            self.restore_lease(&l)?;
                        }
                        PADDING_FIELD => {}
                        _ => {
                            prost::encoding::encode_varint(key, &mut head);
                            prost::encoding::encode_varint(n, &mut head);
                            head.extend_from_slice(&field);
                        }
                    }
                }
                _ => return Err(corrupt(format!("field {number} has wire type {wire}"))),
            }
        }
        let head = SnapshotData::decode(head.as_slice()).map_err(|e| corrupt(e.to_string()))?;
        self.restore_head(&head, applied_index)?;
        Ok(head)
    }
}

fn corrupt(what: String) -> StorageError {
    StorageError::Io(io::Error::new(io::ErrorKind::InvalidData, format!("snapshot: {what}")))
}

/// Reads a protobuf varint; `None` at a clean end of input.
fn read_varint(r: &mut impl BufRead) -> Result<Option<u64>, StorageError> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b)? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(corrupt("cut inside a varint".into()))
            };
        }
        value |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(corrupt("a varint longer than 10 bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::concordpb::log_request::Request as LogOp;
    use crate::api::etcdserverpb::{LeaseGrantRequest, PutRequest, RangeRequest};

    /// A store with `n` keys (some on a lease), its state machine, and a
    /// snapshot file of it spooled through `chunk`-byte writes.
    fn spooled(dir: &Path, n: usize, chunk: usize) -> (Storage, PathBuf) {
        let storage = Storage::open(&dir.join(format!("src{chunk}.db")), 1 << 20).unwrap();
        let mut sm = storage.load().unwrap();
        storage
            .write(|view| {
                let grant = LogOp::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 7 });
                sm.apply(view, &grant, 0).unwrap();
                for i in 0..n {
                    let put = LogOp::Put(PutRequest {
                        key: format!("key/{i:05}").into_bytes(),
                        value: vec![b'v'; 100 + i % 50],
                        lease: if i % 10 == 0 { 7 } else { 0 },
                        ..Default::default()
                    });
                    sm.apply(view, &put, 0).unwrap();
                }
                view.set_applied(&sm.mvcc, 42)
            })
            .unwrap();
        let source = storage.snapshot_source(&sm).unwrap();
        let mut spool = SnapshotSpool::create(&dir.join("snap"), "in", u64::MAX).unwrap();
        let mut buf = Vec::new();
        source
            .write(&mut |bytes| {
                buf.extend_from_slice(&bytes);
                true
            })
            .unwrap();
        for c in buf.chunks(chunk) {
            spool.write(c).unwrap();
        }
        let path = spool.finish().unwrap();
        (storage, path)
    }

    #[test]
    fn a_spooled_snapshot_installs_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        for chunk in [1, 31, 32, 33, 65536] {
            let (src, path) = spooled(dir.path(), 500, chunk);
            let dst = Storage::open(&dir.path().join(format!("dst{chunk}.db")), 1 << 20).unwrap();
            dst.install_file(&path, 42).unwrap();
            assert_eq!(dst.meta().unwrap().applied_index, 42);
            let (a, b) = (src.load().unwrap(), dst.load().unwrap());
            let all = RangeRequest {
                key: b"\0".to_vec(),
                range_end: b"\0".to_vec(),
                ..Default::default()
            };
            let (ra, rb) = (
                a.mvcc.range(&src.read().unwrap(), &all).unwrap(),
                b.mvcc.range(&dst.read().unwrap(), &all).unwrap(),
            );
            assert_eq!(rb.count, 500);
            assert_eq!(ra.kvs, rb.kvs);
            assert_eq!(a.mvcc.current_revision(), b.mvcc.current_revision());
            assert_eq!(b.lessor.get(7).map(|l| l.keys.len()), Some(50));
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn damaged_cut_or_oversized_snapshots_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, path) = spooled(dir.path(), 50, 4096);
        let good = std::fs::read(&path).unwrap();

        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 1;
        let mut spool = SnapshotSpool::create(dir.path(), "bad", u64::MAX).unwrap();
        spool.write(&flipped).unwrap();
        assert!(matches!(spool.finish(), Err(SpoolError::Checksum(_))));

        let mut spool = SnapshotSpool::create(dir.path(), "cut", u64::MAX).unwrap();
        spool.write(&good[..good.len() - 100]).unwrap();
        assert!(matches!(spool.finish(), Err(SpoolError::Checksum(_))));

        let mut spool = SnapshotSpool::create(dir.path(), "big", 1000).unwrap();
        assert!(matches!(spool.write(&good), Err(SpoolError::TooLarge(1000))));
        drop(spool);
        // Nothing unfinished is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".part"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever a spooled file holds (a real snapshot damaged anywhere,
        /// or any bytes): installing it never panics, and a refused one
        /// leaves the store as it was.
        #[test]
        fn any_snapshot_file_installs_or_is_refused_cleanly(
            flips in proptest::collection::vec((proptest::num::usize::ANY, 1u8..=255), 0..6),
            cut in proptest::option::of(proptest::num::usize::ANY),
            noise in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..400)),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (_, path) = spooled(dir.path(), 20, 4096);
            let mut data = match noise {
                Some(n) => n,
                None => std::fs::read(&path).unwrap(),
            };
            for (at, x) in &flips {
                if !data.is_empty() {
                    let i = at % data.len();
                    data[i] ^= x;
                }
            }
            if let Some(c) = cut {
                data.truncate(c % (data.len() + 1));
            }
            std::fs::write(&path, &data).unwrap();
            let dst = Storage::open(&dir.path().join("dst.db"), 1 << 20).unwrap();
            if dst.install_file(&path, 9).is_err() {
                proptest::prop_assert_eq!(dst.meta().unwrap().applied_index, 0);
            }
        }
    }
}
