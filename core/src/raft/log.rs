//! The durable log: numbered entries appended in batches, one fdatasync per
//! batch (group commit). It is the durability point of every write: an
//! entry is acknowledged only after its batch is on disk and it is applied.
//!
//! Files are segments named by their first index (`{index:016x}.wal`).
//! A record is `len: u32 | crc32: u32 | index: u64 | payload`, little
//! endian, with the checksum over index and payload. Space is reserved
//! ahead of the end (`fallocate`, 16 MiB at a time, as etcd preallocates
//! its WAL): an fdatasync then has no file size to record, which on ext4
//! makes it markedly cheaper. Reserved space reads as zeros, which is where
//! a segment's records end. At open, a torn or corrupt record at the end of
//! the last segment (a crash mid-write) is cut off; one anywhere else is
//! corruption and stops the member.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const HEADER: usize = 16;
/// A segment is closed once it grows past this size.
pub(crate) const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Space reserved ahead of a segment's end at a time.
const RESERVE_BYTES: u64 = 16 * 1024 * 1024;

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A file operation failed.
    #[error("log: {0}")]
    Io(#[from] io::Error),
    /// A record inside the log (not at its end) is damaged: acknowledged
    /// writes are at stake, so the member must not start over it.
    #[error("log: corrupt record in {path} at byte {offset} (a damaged record with good ones after it, not a torn write: restore this member from a snapshot or replace it)")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
    },
    /// Entries are not consecutive.
    #[error("log: expected index {expected}, found {found}")]
    Gap {
        /// The index that should come next.
        expected: u64,
        /// The index found.
        found: u64,
    },
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, from 1, consecutive.
    pub index: u64,
    /// The encoded request.
    pub payload: Vec<u8>,
}

struct Segment {
    first: u64,
    path: PathBuf,
}

/// An open log, ready to append.
pub struct Log {
    dir: PathBuf,
    segments: Vec<Segment>,
    file: File,
    /// Where the next record goes (the end of the records).
    file_len: u64,
    /// The file's size: space up to here is reserved.
    reserved: u64,
    next: u64,
    buf: Vec<u8>,
    /// Whether appends wait for fdatasync (off only with
    /// `--unsafe-no-fsync`).
    fsync: bool,
}

/// The file of the segment whose first entry is `first`.
pub fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:016x}.wal"))
}

fn checksum(index: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&index.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Whether a whole, checksummed record starts at `off` in `data`.
fn record_at(data: &[u8], off: usize) -> bool {
    if off + HEADER > data.len() {
        return false;
    }
    let len = u32::from_le_bytes(data[off..off + 4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(data[off + 4..off + 8].try_into().expect("4 bytes"));
    let index = u64::from_le_bytes(data[off + 8..off + 16].try_into().expect("8 bytes"));
    let end = off + HEADER + len;
    end <= data.len() && index != 0 && checksum(index, &data[off + HEADER..end]) == crc
}

/// What follows the last good record of a segment.
#[derive(Debug, PartialEq, Eq)]
enum Tail {
    /// Nothing but zeros (reserved space): a clean end.
    Clean,
    /// An incomplete or garbled last write: cut it off.
    Torn,
    /// A whole record that fails its checksum, with good records after
    /// it: acknowledged data is damaged.
    Corrupt,
}

/// Reads the records of one segment; returns them, the length of the
/// valid prefix of the file, and what follows it.
fn read_segment(path: &Path) -> io::Result<(Vec<Entry>, u64, Tail)> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut entries = Vec::new();
    let mut off = 0usize;
    while off + HEADER <= data.len() {
        let len = u32::from_le_bytes(data[off..off + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[off + 4..off + 8].try_into().expect("4 bytes"));
        let index = u64::from_le_bytes(data[off + 8..off + 16].try_into().expect("8 bytes"));
        let end = off + HEADER + len;
        if end > data.len() {
            break;
        }
        let payload = &data[off + HEADER..end];
        if checksum(index, payload) != crc {
            break;
        }
        entries.push(Entry {
            index,
            payload: payload.to_vec(),
        });
        off = end;
    }
    // Reserved space (zeros) after the records is a clean end. A record
    // whose length fits but whose checksum fails, followed by a good
    // record, is damage to written data, not a write cut short.
    let tail = if data[off..].iter().all(|&b| b == 0) {
        Tail::Clean
    } else {
        let len = data.get(off..off + 4).map_or(usize::MAX, |b| {
            u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize
        });
        match off.checked_add(HEADER).and_then(|h| h.checked_add(len)) {
            Some(next) if next < data.len() && record_at(&data, next) => Tail::Corrupt,
            _ => Tail::Torn,
        }
    };
    Ok((entries, off as u64, tail))
}

/// Reserves space in `file` up to `len` bytes (best effort: where the file
/// system cannot, writes simply extend the file).
fn reserve(file: &File, from: u64, len: u64) -> bool {
    #[cfg(target_os = "linux")]
    {
        rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), from, len - from).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, from, len);
        false
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Log {
    /// Whether appends are made durable before they return (the default);
    /// `false` is etcd's `--unsafe-no-fsync`, for throwaway clusters.
    pub fn set_fsync(&mut self, on: bool) {
        self.fsync = on;
    }

    /// Opens the log in `dir` (created if missing) and returns it with every
    /// entry it holds at or after `from`.
    pub fn open(dir: &Path, from: u64) -> Result<(Log, Vec<Entry>), LogError> {
        crate::fsync::create_dir_all(dir)?;
        let mut firsts: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                u64::from_str_radix(name.strip_suffix(".wal")?, 16).ok()
            })
            .collect();
        firsts.sort_unstable();

        let mut entries = Vec::new();
        let mut segments = Vec::new();
        let mut next = None;
        let mut tail_len = 0;
        for (i, first) in firsts.iter().copied().enumerate() {
            let path = segment_path(dir, first);
            let (seg_entries, valid, tail) = read_segment(&path)?;
            let last_segment = i + 1 == firsts.len();
            if tail == Tail::Corrupt || (tail == Tail::Torn && !last_segment) {
                return Err(LogError::Corrupt { path, offset: valid });
            }
            if tail == Tail::Torn {
                tracing::warn!(path = %path.display(), valid, "cutting off a torn log tail");
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid)?;
                f.sync_all()?;
            }
            // A segment is named by its first entry's index: a record that
            // says otherwise (a misplaced write whose checksum happens to
            // hold) must not renumber the log.
            if let Some(e) = seg_entries.first().filter(|e| e.index != first) {
                return Err(LogError::Gap {
                    expected: first,
                    found: e.index,
                });
            }
            for e in seg_entries {
                let expected = *next.get_or_insert(e.index);
                if e.index != expected {
                    return Err(LogError::Gap {
                        expected,
                        found: e.index,
                    });
                }
                next = Some(e.index + 1);
                if e.index >= from {
                    entries.push(e);
                }
            }
            if next.is_none() {
                next = Some(first);
            }
            tail_len = valid;
            segments.push(Segment { first, path });
        }
        let next = next.unwrap_or(from.max(1));
        if segments.is_empty() {
            let path = segment_path(dir, next);
            File::create(&path)?;
            sync_dir(dir)?;
            segments.push(Segment { first: next, path });
            tail_len = 0;
        }
        let path = &segments.last().expect("one segment at least").path;
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let reserved = file.metadata()?.len();
        Ok((
            Log {
                dir: dir.to_path_buf(),
                segments,
                file,
                file_len: tail_len,
                reserved,
                next,
                buf: Vec::new(),
                fsync: true,
            },
            entries,
        ))
    }

    /// The index the next appended entry gets.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// The last index in the log (0 if none was ever written).
    pub fn last_index(&self) -> u64 {
        self.next - 1
    }

    /// The first index of each segment file, oldest first.
    pub fn segment_starts(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.first).collect()
    }

    /// Bytes of records in the newest segment.
    #[cfg(test)]
    pub(crate) fn tail_len(&self) -> u64 {
        self.file_len
    }

    /// Whether the newest segment holds nothing yet (a fresh log, or one
    /// that has just moved on to a new segment).
    pub fn tail_is_empty(&self) -> bool {
        self.file_len == 0
    }

    /// Appends `payloads` as consecutive entries and makes them durable
    /// with one fdatasync. Returns the index of the first one.
    ///
    /// Without fsync ([`Log::set_fsync`]) the batch is only written: a
    /// crash of the machine (not of the process) may lose it.
    pub fn append<'a>(&mut self, payloads: impl IntoIterator<Item = &'a [u8]>) -> Result<u64, LogError> {
        let first = self.next;
        self.buf.clear();
        for p in payloads {
            let index = self.next;
            self.buf.extend_from_slice(&(p.len() as u32).to_le_bytes());
            self.buf.extend_from_slice(&checksum(index, p).to_le_bytes());
            self.buf.extend_from_slice(&index.to_le_bytes());
            self.buf.extend_from_slice(p);
            self.next += 1;
        }
        let end = self.file_len + self.buf.len() as u64;
        if end > self.reserved {
            let to = end.next_multiple_of(RESERVE_BYTES);
            self.reserved = if reserve(&self.file, self.reserved, to) {
                to
            } else {
                end
            };
        }
        let synced = self.file.write_all_at(&self.buf, self.file_len).and_then(|()| {
            if !self.fsync {
                return Ok(());
            }
            let started = std::time::Instant::now();
            let r = self.file.sync_data();
            crate::metrics::WAL_FSYNC.observe(started.elapsed());
            r
        });
        if let Err(e) = synced {
            // What reached the disk is unknown: the member must stop.
            self.next = first;
            return Err(e.into());
        }
        self.file_len += self.buf.len() as u64;
        if self.file_len >= SEGMENT_BYTES {
            self.rotate()?;
        }
        Ok(first)
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let path = segment_path(&self.dir, self.next);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        sync_dir(&self.dir)?;
        self.reserved = file.metadata()?.len();
        self.file = file;
        self.file_len = 0;
        self.segments.push(Segment { first: self.next, path });
        Ok(())
    }

    /// Drops closed segments whose entries are all at or below `index`
    /// (the state machine has made them durable).
    pub fn release(&mut self, index: u64) -> Result<(), LogError> {
        while self.segments.len() > 1 && self.segments[1].first <= index + 1 {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn records_go_into_reserved_space_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 1).unwrap();
        log.append([b"one".as_slice()]).unwrap();
        let seg = segment_path(dir.path(), 1);
        if cfg!(target_os = "linux") {
            assert_eq!(fs::metadata(&seg).unwrap().len(), RESERVE_BYTES, "space reserved ahead");
        }
        drop(log);
        // Reopened: the next record follows the first, not the reserved end.
        let (mut log, got) = Log::open(dir.path(), 1).unwrap();
        assert_eq!(got.len(), 1);
        log.append([b"two".as_slice(), b"three"]).unwrap();
        drop(log);
        let (_, got) = Log::open(dir.path(), 1).unwrap();
        let payloads: Vec<_> = got.iter().map(|e| (e.index, e.payload.clone())).collect();
        assert_eq!(
            payloads,
            vec![(1, b"one".to_vec()), (2, b"two".to_vec()), (3, b"three".to_vec())]
        );
        let data = fs::read(&seg).unwrap();
        assert_eq!(&data[HEADER..HEADER + 3], b"one");
    }

    #[test]
    fn entries_survive_reopen_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, got) = Log::open(dir.path(), 1).unwrap();
        assert!(got.is_empty());
        assert_eq!(log.append([b"a".as_slice(), b"bb"]).unwrap(), 1);
        assert_eq!(log.append([b"ccc".as_slice()]).unwrap(), 3);
        drop(log);

        // A crash in the middle of writing a record.
        let seg = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);

        let (mut log, got) = Log::open(dir.path(), 2).unwrap();
        let payloads: Vec<_> = got.iter().map(|e| (e.index, e.payload.clone())).collect();
        assert_eq!(payloads, vec![(2, b"bb".to_vec()), (3, b"ccc".to_vec())]);
        assert_eq!(log.append([b"d".as_slice()]).unwrap(), 4);
        drop(log);
        let (_, got) = Log::open(dir.path(), 1).unwrap();
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn a_bad_record_in_the_middle_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 1).unwrap();
        log.append([b"hello".as_slice()]).unwrap();
        log.rotate().unwrap();
        log.append([b"world".as_slice()]).unwrap();
        drop(log);
        let seg = segment_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        data[HEADER] ^= 0xff; // the first payload byte of "hello"
        fs::write(&seg, data).unwrap();
        assert!(matches!(Log::open(dir.path(), 1), Err(LogError::Corrupt { .. })));
    }

    #[test]
    fn a_bad_record_before_good_ones_in_the_last_segment_is_corruption_not_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 1).unwrap();
        log.append([b"one".as_slice()]).unwrap();
        log.append([b"two".as_slice()]).unwrap();
        log.append([b"three".as_slice()]).unwrap();
        drop(log);
        let seg = segment_path(dir.path(), 1);
        let clean = fs::read(&seg).unwrap();
        // Bit rot in the second record's payload: the third is intact.
        let mut data = clean.clone();
        data[HEADER + 3 + HEADER] ^= 0x01;
        fs::write(&seg, &data).unwrap();
        let Err(e) = Log::open(dir.path(), 1) else {
            panic!("a corrupt record was taken for a torn tail")
        };
        assert!(
            matches!(e, LogError::Corrupt { offset, .. } if offset == (HEADER + 3) as u64),
            "{e}"
        );
        assert!(e.to_string().contains("not a torn write"), "{e}");
        assert_eq!(fs::read(&seg).unwrap(), data, "nothing was cut");
        // The same damage to the last record is a torn tail: cut, and the
        // first two survive.
        let mut data = clean;
        data[HEADER + 3 + HEADER + 3 + HEADER] ^= 0x01;
        fs::write(&seg, &data).unwrap();
        let (_, got) = Log::open(dir.path(), 1).unwrap();
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn release_drops_only_durable_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 1).unwrap();
        log.append([b"1".as_slice(), b"2"]).unwrap();
        log.rotate().unwrap();
        log.append([b"3".as_slice()]).unwrap();
        log.release(1).unwrap();
        assert_eq!(log.segments.len(), 2);
        log.release(2).unwrap();
        assert_eq!(log.segments.len(), 1);
        drop(log);
        let (log, got) = Log::open(dir.path(), 3).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(log.next_index(), 4);
    }

    /// Found by the `log_reader` fuzz target: a first record with a good
    /// checksum but another index than its segment's name.
    #[test]
    fn a_segment_must_start_at_the_index_it_is_named_after() {
        let dir = tempfile::tempdir().unwrap();
        let index: u64 = 0xffff_ffff;
        let mut rec = Vec::new();
        rec.extend_from_slice(&0u32.to_le_bytes());
        rec.extend_from_slice(&checksum(index, b"").to_le_bytes());
        rec.extend_from_slice(&index.to_le_bytes());
        fs::write(segment_path(dir.path(), 1), &rec).unwrap();
        match Log::open(dir.path(), 1) {
            Err(LogError::Gap { expected: 1, found }) => assert_eq!(found, index),
            other => panic!("opened: {:?}", other.map(|(_, e)| e)),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// Damage of any kind (bytes flipped anywhere, a cut, garbage
        /// appended): opening never panics, and whatever it returns is a
        /// prefix of what was written, never altered data.
        #[test]
        fn damaged_logs_open_without_panic_or_altered_entries(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..12),
            flips in proptest::collection::vec((proptest::num::usize::ANY, 1u8..=255), 0..4),
            cut in proptest::option::of(proptest::num::usize::ANY),
            garbage in proptest::collection::vec(proptest::num::u8::ANY, 0..30),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = Log::open(dir.path(), 1).unwrap();
            log.append(payloads.iter().map(Vec::as_slice)).unwrap();
            drop(log);
            let seg = segment_path(dir.path(), 1);
            let mut data = fs::read(&seg).unwrap();
            let used = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            for (at, x) in &flips {
                let i = at % used.max(1);
                data[i] ^= x;
            }
            if let Some(c) = cut {
                data.truncate(c % (used + 1));
            }
            let end = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1).min(data.len());
            data.truncate(end);
            data.extend_from_slice(&garbage);
            fs::write(&seg, &data).unwrap();
            if let Ok((_, got)) = Log::open(dir.path(), 1) {
                proptest::prop_assert!(got.len() <= payloads.len());
                for (i, e) in got.iter().enumerate() {
                    proptest::prop_assert_eq!(e.index, i as u64 + 1);
                    proptest::prop_assert_eq!(&e.payload, &payloads[i]);
                }
            }
        }
    }
}
