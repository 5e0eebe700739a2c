//! etcd's v2 key space (`/v2/keys`): directories, values, TTLs, and the
//! watches of the classic curl guides, kept apart from the v3 key space as
//! etcd keeps it, and replicated through the same log.
//!
//! [`V2Store`] is the state (applied from [`crate::api::concordpb::V2Request`]
//! log entries); [`history`] keeps the recent events and the waiting long
//! polls; [`error`] has etcd's v2 error codes.
//!
//! ```
//! use concord_core::v2::{Outcome, V2Store};
//! use concord_core::api::concordpb::V2Request;
//!
//! let mut store = V2Store::default();
//! let mut disk = concord_core::v2::MemV2::default();
//! let req = V2Request { path: "/message".into(), value: "Hello".into(), ..Default::default() };
//! let Outcome::Done(e) = store.apply(&mut disk, &req).unwrap() else { panic!() };
//! assert_eq!(e.node.key, "/message");
//! assert_eq!(store.get("/message", false, 0).unwrap().node.value.as_deref(), Some("Hello"));
//! ```

pub mod error;
pub mod history;
mod store;
#[cfg(test)]
mod tests;

pub use error::{Code, V2Error};
pub use history::WatchSpec;
pub use store::{segments, ttl_at, Action, Event, NodeView, Outcome, Stats, V2Persist, V2Store, Watch};

use crate::api::concordpb::{V2Event, V2Node};
use crate::mvcc::BackendError;

/// v2 nodes kept in memory only (tests, examples).
#[derive(Debug, Default)]
pub struct MemV2 {
    /// The stored nodes by key.
    pub nodes: std::collections::BTreeMap<String, V2Node>,
    /// The stored index.
    pub index: u64,
    /// The remembered events by index.
    pub events: std::collections::BTreeMap<u64, V2Event>,
}

impl V2Persist for MemV2 {
    fn put_v2_node(&mut self, node: &V2Node) -> Result<(), BackendError> {
        self.nodes.insert(node.key.clone(), node.clone());
        Ok(())
    }

    fn delete_v2_node(&mut self, key: &str) -> Result<(), BackendError> {
        self.nodes.remove(key);
        Ok(())
    }

    fn put_v2_index(&mut self, index: u64) -> Result<(), BackendError> {
        self.index = index;
        Ok(())
    }

    fn put_v2_event(&mut self, event: &V2Event) -> Result<(), BackendError> {
        let index = event.node.as_ref().map_or(0, |n| n.modified_index);
        self.events.insert(index, event.clone());
        Ok(())
    }

    fn delete_v2_event(&mut self, index: u64) -> Result<(), BackendError> {
        self.events.remove(&index);
        Ok(())
    }
}
