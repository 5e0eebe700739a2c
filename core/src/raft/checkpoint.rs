//! When the state machine is made durable: both write paths share it.

use std::sync::atomic::Ordering;
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
}

impl Checkpointer {
    /// Everything up to `durable` is already durable.
    pub(crate) fn new(durable: u64) -> Self {
        Checkpointer {
            durable,
            last: Instant::now(),
            last_size_check: Instant::now(),
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
    pub(crate) fn run(&mut self, state: &State) -> Result<bool, NodeError> {
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
            state.db_in_use.store(state.storage.size_in_use()?, Ordering::Relaxed);
            self.last_size_check = Instant::now();
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
}
