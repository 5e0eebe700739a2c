//! The write path: a request becomes an entry in the durable log, the entry
//! is applied to the state machine (mvcc on redb), and only then is the
//! answer sent. With one member the log is local ([`log::Log`]); the
//! replication issue puts Raft (raft-rs) under this same path, with
//! [`Node::propose`] as the entry point.

pub mod log;
mod node;
mod state_machine;

pub use node::{Node, NodeConfig, NodeError, State};
pub use state_machine::{ApplyError, AuthPersist, LeaseStore, StateMachine, WriteResponse};
