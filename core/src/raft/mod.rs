//! The write path: a request becomes an entry in a durable log, the entry
//! is applied to the state machine (mvcc on redb), and only then is the
//! answer sent. A single member uses its local group-committed log
//! ([`log::Log`]); a member of a cluster agrees on the log with the others
//! through raft-rs (`replica`). Either way [`Node::propose`] is the entry point.

//!
//! Modules, each depending only on those listed before it:
//! - [`log`]: the single member's segmented, checksummed log;
//! - `error`: [`NodeError`];
//! - `shared`: [`State`], what readers share with the write path, and
//!   applying one entry;
//! - `checkpoint`: when the state machine is made durable;
//! - `single`: the single member's group-commit loop;
//! - `memlog` and `wal`: raft's log in memory and its durable records;
//! - `snapshots`: raft snapshots streamed beside their messages;
//! - `replica`: the raft-rs loop of a cluster member;
//! - `node`: [`Node`], the front both write paths sit behind.

mod checkpoint;
mod error;
pub mod log;
mod memlog;
mod node;
mod replica;
mod shared;
mod single;
mod snapshots;
mod wal;

pub use error::NodeError;
pub use node::{Node, NodeConfig};
pub use replica::{JoinAnswer, MemberChange, RaftConfig, Transport};
pub use shared::{State, MAX_INBOX};

/// A crash test's hook: aborts the process at `point` when the environment
/// variable `CONCORD_CRASH_AT` names it (as etcd's failpoints do for its
/// robustness tests). Never set in production.
pub(crate) fn crash_point(point: &str) {
    if std::env::var("CONCORD_CRASH_AT").is_ok_and(|v| v == point) {
        tracing::error!(point, "stopping here on purpose (CONCORD_CRASH_AT)");
        std::process::abort();
    }
}
