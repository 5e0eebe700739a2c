//! Durable directory entries: a file or directory just created is only
//! guaranteed to survive a crash once the directory holding it is fsynced
//! (POSIX leaves the entry in the page cache until then).

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// The directory holding `path` (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fsyncs the directory that holds `path`, making `path`'s entry durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    File::open(parent(path))?.sync_all()
}

/// Creates `dir` and any missing parents, each made durable in its own
/// parent before the next is created inside it.
///
/// ```
/// let tmp = tempfile::tempdir().unwrap();
/// let deep = tmp.path().join("a/b/c");
/// concord_core::fsync::create_dir_all(&deep).unwrap();
/// assert!(deep.is_dir());
/// ```
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let up = parent(dir);
    if up != Path::new(".") && up != dir {
        create_dir_all(up)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_parent(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}
