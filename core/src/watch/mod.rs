//! Watches: etcd's event streams over the key space.
//!
//! [`filter`] holds the pure parts (which events a watcher selects,
//! fragmenting big responses); `hub` (feature `server`) holds the watchers
//! of a member and delivers events to them.

pub mod filter;
#[cfg(feature = "server")]
mod hub;

#[cfg(feature = "server")]
pub use hub::{
    History, Hub, HubConfig, HubStats, WatchReceiver, WatchStream, INVALID_WATCH_ID, MAX_WATCHERS_PER_STREAM,
};
