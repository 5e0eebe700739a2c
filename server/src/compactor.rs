//! Auto-compaction (`--auto-compaction-mode`/`--auto-compaction-retention`).
//!
//! Revision mode: every 5 minutes, compact to `current - retention`.
//! Periodic mode: sample the revision every tenth of the period (the
//! retention, at most an hour); once per period, compact to the newest
//! sample at least `retention` old. Both go through the log like a client's
//! compaction.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use concord_core::api::etcdserverpb::CompactionRequest;
use concord_core::service::{Caller, EtcdService};
use tokio::time::{interval, Instant, MissedTickBehavior};

/// What to keep.
#[derive(Clone, Copy, Debug)]
pub enum Retention {
    /// Keep this long a history.
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(i64),
}

async fn compact_to(svc: &EtcdService, revision: i64, last: &mut i64) {
    if revision <= *last || revision <= 0 {
        return;
    }
    match svc
        .compact(
            &Caller::member(),
            CompactionRequest {
                revision,
                physical: false,
            },
        )
        .await
    {
        Ok(_) => {
            tracing::info!(revision, "auto-compaction done");
            *last = revision;
        }
        Err(e) => tracing::warn!(revision, error = %e, "auto-compaction failed"),
    }
}

/// Runs forever (until the task is dropped).
pub async fn run(svc: Arc<EtcdService>, retention: Retention) {
    let mut last = 0;
    match retention {
        Retention::Revision(keep) => {
            let mut tick = interval(Duration::from_secs(300));
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let target = svc.current_revision() - keep;
                compact_to(&svc, target, &mut last).await;
            }
        }
        Retention::Periodic(keep) => {
            let period = keep.min(Duration::from_secs(3600));
            let step = (period / 10).max(Duration::from_millis(100));
            let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
            let mut tick = interval(step);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut last_run = Instant::now();
            loop {
                tick.tick().await;
                let now = Instant::now();
                samples.push_back((now, svc.current_revision()));
                if now.duration_since(last_run) < period {
                    continue;
                }
                last_run = now;
                let mut target = None;
                while let Some(&(at, rev)) = samples.front() {
                    if now.duration_since(at) >= keep {
                        target = Some(rev);
                        samples.pop_front();
                    } else {
                        break;
                    }
                }
                if let Some(rev) = target {
                    compact_to(&svc, rev, &mut last).await;
                }
            }
        }
    }
}
