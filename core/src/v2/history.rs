//! What v2 watches wait on: the last [`HISTORY`] events (so that a client
//! that passes `waitIndex` misses nothing it has not been told about), and
//! the long polls waiting for the next matching event.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::error::{Code, V2Error};
use super::store::{Action, Event};

/// How many events are kept for `waitIndex` (as etcd keeps).
pub const HISTORY: usize = 1000;

/// Most long polls waiting at once on one member. Polls whose client went
/// away are dropped first; past this, a new poll is refused.
pub const MAX_WAITING: usize = 65_536;

/// What a watch asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSpec {
    /// The key or directory watched (`/` for the root).
    pub key: String,
    /// Changes anywhere under `key`, not only to it.
    pub recursive: bool,
    /// The first index of interest.
    pub since: u64,
}

impl WatchSpec {
    /// Whether `e` answers this watch (etcd's rules): a change to the key
    /// itself; with `recursive`, a change below it that is not under a
    /// hidden name (`_…`) relative to it; or the deletion (or expiry) of
    /// a directory the key is in.
    pub fn matches(&self, e: &Event) -> bool {
        if e.index() < self.since {
            return false;
        }
        let k = e.node.key.as_str();
        if k == self.key {
            return true;
        }
        // A watch on the root always sees everything below it.
        if (self.recursive || self.key == "/") && is_below(k, &self.key) {
            let rest = &k[self.key.trim_end_matches('/').len()..];
            return !rest.contains("/_");
        }
        matches!(e.action, Action::Delete | Action::Expire | Action::CompareAndDelete)
            && e.node.dir
            && is_below(&self.key, k)
    }
}

/// Whether `key` is strictly below directory `dir`.
fn is_below(key: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    key.len() > dir.len() + 1 && key.starts_with(dir) && key.as_bytes()[dir.len()] == b'/'
}

/// The recent events, oldest first.
#[derive(Debug, Default)]
pub struct History {
    events: VecDeque<Arc<Event>>,
}

impl History {
    /// Remembers `e`; the oldest event, if it had to go to stay within
    /// [`HISTORY`].
    pub fn push(&mut self, e: Arc<Event>) -> Option<Arc<Event>> {
        let gone = if self.events.len() >= HISTORY {
            self.events.pop_front()
        } else {
            None
        };
        self.events.push_back(e);
        gone
    }

    /// The first event at or after `spec.since` that matches, if any is
    /// remembered; an error if events from `spec.since` were forgotten.
    pub fn scan(&self, spec: &WatchSpec, current: u64) -> Result<Option<Arc<Event>>, V2Error> {
        let Some(first) = self.events.front() else {
            return Ok(None);
        };
        let start = first.index();
        if spec.since < start {
            return Err(V2Error::new(
                Code::EventIndexCleared,
                format!("the requested history has been cleared [{start}/{}]", spec.since),
                current,
            ));
        }
        Ok(self.events.iter().find(|e| spec.matches(e)).cloned())
    }
}

/// A long poll waiting for its event.
#[derive(Debug)]
struct Waiting {
    spec: WatchSpec,
    tx: oneshot::Sender<Arc<Event>>,
}

/// The long polls waiting on one member.
#[derive(Debug, Default)]
pub struct Waiters {
    waiting: Vec<Waiting>,
}

impl Waiters {
    /// Adds a poll; refused past [`MAX_WAITING`] live ones.
    pub fn add(&mut self, spec: WatchSpec, current: u64) -> Result<oneshot::Receiver<Arc<Event>>, V2Error> {
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.retain(|w| !w.tx.is_closed());
            if self.waiting.len() >= MAX_WAITING {
                return Err(V2Error::new(
                    Code::RaftInternal,
                    format!("too many waiting watches (at most {MAX_WAITING})"),
                    current,
                ));
            }
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.push(Waiting { spec, tx });
        Ok(rx)
    }

    /// Answers (and removes) every poll `e` matches, and drops those whose
    /// client went away.
    pub fn notify(&mut self, e: &Arc<Event>) {
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &self.waiting[i];
            if w.tx.is_closed() || w.spec.matches(e) {
                let w = self.waiting.swap_remove(i);
                let _ = w.tx.send(Arc::clone(e));
            } else {
                i += 1;
            }
        }
    }

    /// Polls still waiting whose client is still there.
    pub fn len(&self) -> usize {
        self.waiting.iter().filter(|w| !w.tx.is_closed()).count()
    }

    /// Whether no live poll waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
