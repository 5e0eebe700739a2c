//! When the state machine is made durable: both write paths share it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{NodeError, State};

/// Make the state machine durable (and free the log) after this many entries…
const CHECKPOINT_ENTRIES: u64 = 5_000;
/// …or this long after the last checkpoint.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How often the bytes in use are recounted (it walks the whole database).
const SIZE_IN_USE_EVERY: Duration = Duration::from_secs(30);

/// When the state machine is made durable (both write paths share it):
/// after [`CHECKPOINT_ENTRIES`] applied entries or [`CHECKPOINT_EVERY`],
/// recounting the bytes in use every [`SIZE_IN_USE_EVERY`].
pub(crate) struct Checkpointer {
    durable: u64,
    last: Instant,
    last_size_check: Instant,
    /// A recount of the bytes in use is running on its own thread.
    recounting: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Everything up to `durable` is already durable.
    pub(crate) fn new(durable: u64) -> Self {
        Checkpointer {
            durable,
            last: Instant::now(),
            last_size_check: Instant::now(),
            recounting: Arc::default(),
        }
    }

    /// The last index known durable.
    pub(crate) fn durable(&self) -> u64 {
        self.durable
    }

    /// Records that everything up to `index` is durable (installed otherwise).
    pub(crate) fn set_durable(&mut self, index: u64) {
        self.durable = index;
    }

    /// Whether a checkpoint is due now.
    pub(crate) fn due(&self, state: &State) -> bool {
        let applied = state.applied_index();
        applied > self.durable
            && (applied - self.durable >= CHECKPOINT_ENTRIES || self.last.elapsed() >= CHECKPOINT_EVERY)
    }

    /// Makes everything applied durable; `true` if that moved the durable point.
    pub(crate) fn run(&mut self, state: &Arc<State>) -> Result<bool, NodeError> {
        self.last = Instant::now();
        let applied = state.applied_index();
        if applied <= self.durable {
            return Ok(false);
        }
        let started = Instant::now();
        state.storage.checkpoint()?;
        state.db_size.store(state.storage.size(), Ordering::Relaxed);
        let synced = started.elapsed();
        crate::metrics::BACKEND_COMMIT.observe(synced);
        if self.last_size_check.elapsed() >= SIZE_IN_USE_EVERY {
            self.last_size_check = Instant::now();
            self.recount_in_use(state);
        }
        tracing::debug!(
            entries = applied - self.durable,
            sync_ms = synced.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "checkpoint"
        );
        self.durable = applied;
        Ok(true)
    }

    /// Recounts the bytes in use on a thread of its own: the walk takes a
    /// quarter of a second on a store of 500,000 revisions, and on this
    /// thread every write (and its watchers) would wait for it.
    fn recount_in_use(&self, state: &Arc<State>) {
        if self.recounting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (state, flag) = (Arc::clone(state), Arc::clone(&self.recounting));
        let spawned = std::thread::Builder::new().name("concord-size".into()).spawn(move || {
            match state.storage.size_in_use() {
                Ok(n) => state.db_in_use.store(n, Ordering::Relaxed),
                Err(e) => tracing::warn!(error = %e, "bytes in use not recounted"),
            }
            flag.store(false, Ordering::Release);
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "bytes in use not recounted");
            self.recounting.store(false, Ordering::Release);
        }
    }
}
