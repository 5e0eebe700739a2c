//! The write path: a request becomes an entry in a durable log, the entry
//! is applied to the state machine (mvcc on redb), and only then is the
//! answer sent. A single member uses its local group-committed log
//! ([`log::Log`]); a member of a cluster agrees on the log with the others
//! through raft-rs (`replica`). Either way [`Node::propose`] is the entry point.

pub mod log;
mod node;
mod replica;
mod state_machine;
mod wal;

pub use node::{Node, NodeConfig, NodeError, State};
pub use replica::{MemberChange, RaftConfig, Transport};
pub use state_machine::{txn_has_puts, ApplyError, AuthPersist, LeaseStore, StateMachine, WriteResponse};

/// A crash test's hook: aborts the process at `point` when the environment
/// variable `CONCORD_CRASH_AT` names it (as etcd's failpoints do for its
/// robustness tests). Never set in production.
pub(crate) fn crash_point(point: &str) {
    if std::env::var("CONCORD_CRASH_AT").is_ok_and(|v| v == point) {
        tracing::error!(point, "stopping here on purpose (CONCORD_CRASH_AT)");
        std::process::abort();
    }
}
