//! Concord's core: everything that is the same in every Concord process.
//!
//! # Layout
//! - [`api`]: the etcd v3 wire contract as Rust types (prost) with the JSON
//!   gateway mapping (pbjson), plus [`api::error`], etcd's errors with their
//!   gRPC codes and messages.
//! - [`mvcc`]: the revisioned key space (key index, revisions, range, put,
//!   delete, txn, compaction). Deterministic and free of I/O: it reads and
//!   writes values through the [`mvcc::KvRead`]/[`mvcc::KvWrite`] traits.
//! - [`auth`]: users, roles, key-range permissions (state machine data);
//!   with feature `server` also the tokens.
//! - [`lease`]: the lessor (leases, TTLs, attached keys); no clock, no I/O.
//! - [`watch`]: which events a watcher selects, fragments; with feature
//!   `server` also the watcher hub of a member.
//! - `state_machine` (feature `server`): what a log entry does: mvcc, the
//!   lessor, auth, alarms, members and the v2 tree, with the persistence
//!   traits its stores write through. Below both `storage` and `raft`.
//! - `storage` (feature `server`): the durable backend on redb; loads and
//!   persists the state machine.
//! - `raft` (feature `server`): the write path. A request becomes an entry
//!   in a durable, group-committed log (one member) or raft's log (a
//!   cluster), then is applied to the state machine, and the batch's events
//!   go to the watcher hub.
//! - `service` (feature `server`): the one service layer every front end
//!   (gRPC, JSON gateway) calls.
//! - `client` (feature `client`): the shared client of the JSON gateway
//!   that every binding is built on; native and wasm32.

pub mod api;
pub mod auth;
pub mod lease;
pub mod mvcc;
pub mod watch;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod fsync;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod raft;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod state_machine;
#[cfg(feature = "server")]
pub mod storage;
#[cfg(feature = "server")]
pub mod v2;

/// Entry points for the fuzz targets in `fuzz/` (not an API).
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod fuzzing {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    fn scratch() -> &'static PathBuf {
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        DIR.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("concord-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a scratch directory");
            dir
        })
    }

    /// Opens a log whose only segment holds `data`: never a panic, and
    /// entries come back numbered from 1.
    pub fn log_open(data: &[u8]) {
        let dir = scratch().join("log");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a log directory");
        std::fs::write(crate::raft::log::segment_path(&dir, 1), data).expect("a segment");
        if let Ok((_, entries)) = crate::raft::log::Log::open(&dir, 1) {
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(e.index, i as u64 + 1);
            }
        }
    }

    /// Installs `data` as a spooled snapshot file: installed or refused,
    /// never a panic.
    pub fn snapshot_install(data: &[u8]) {
        static STORE: OnceLock<crate::storage::Storage> = OnceLock::new();
        let store = STORE
            .get_or_init(|| crate::storage::Storage::open(&scratch().join("db"), 1 << 20).expect("a scratch database"));
        let path = scratch().join("in.snap");
        std::fs::write(&path, data).expect("a snapshot file");
        let _ = store.install_file(&path, 1);
    }
}
