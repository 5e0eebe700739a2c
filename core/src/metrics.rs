//! What the write path counts, kept with atomics and exported by the
//! server: latency histograms under etcd's names
//! (`etcd_disk_wal_fsync_duration_seconds`,
//! `etcd_disk_backend_commit_duration_seconds`, with etcd's buckets), the
//! proposal and lease counters etcd has, and Concord's group-commit batch
//! sizes. They are process-wide, as etcd's are.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// etcd's bucket bounds for disk latencies: 1 ms doubling to 8.192 s.
pub const DISK_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192,
];

/// Group-commit batch sizes (entries per durable append): 1 doubling to 1024.
pub const BATCH_BUCKETS: [f64; 11] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// The most bounds a [`Histogram`] may have.
const MAX_BUCKETS: usize = 16;

/// Observations of a value (a duration, or a count), by bucket.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the one after the last
    /// bound is above every bound.
    counts: [AtomicU64; MAX_BUCKETS + 1],
    /// The sum, in millionths of the observed unit.
    sum_micros: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations at or under it)`, cumulative.
    pub buckets: Vec<(f64, u64)>,
    /// Every observation.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

impl Histogram {
    /// An empty histogram with these (ascending) bucket bounds.
    ///
    /// ```
    /// use concord_core::metrics::{Histogram, BATCH_BUCKETS};
    /// static SIZES: Histogram = Histogram::new(&BATCH_BUCKETS);
    /// SIZES.observe_value(3.0);
    /// assert_eq!(SIZES.snapshot().buckets[2], (4.0, 1));
    /// ```
    pub const fn new(bounds: &'static [f64]) -> Histogram {
        assert!(bounds.len() <= MAX_BUCKETS, "too many bucket bounds");
        Histogram {
            bounds,
            counts: [const { AtomicU64::new(0) }; MAX_BUCKETS + 1],
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one duration, in seconds.
    pub fn observe(&self, d: Duration) {
        self.observe_value(d.as_secs_f64());
    }

    /// Records one value.
    pub fn observe_value(&self, v: f64) {
        let i = self.bounds.iter().position(|&b| v <= b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        // Saturating float-to-int conversion: a huge value cannot wrap.
        self.sum_micros.fetch_add((v * 1e6) as u64, Ordering::Relaxed);
    }

    /// The buckets, count and sum now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (i, &bound) in self.bounds.iter().enumerate() {
            total += self.counts[i].load(Ordering::Relaxed);
            buckets.push((bound, total));
        }
        total += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count: total,
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A count that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Zero.
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Zero.
    pub const fn new() -> Gauge {
        Gauge(AtomicI64::new(0))
    }

    /// Adds one until the returned guard is dropped.
    pub fn track(&self) -> GaugeGuard<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(self)
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Takes back what [`Gauge::track`] added, when dropped.
#[derive(Debug)]
pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An apply slower than this is counted (and logged) as slow, as etcd's
/// `etcd_server_slow_apply_total` counts.
pub const SLOW_APPLY: Duration = Duration::from_millis(100);

/// Each fdatasync of the log (etcd: `etcd_disk_wal_fsync_duration_seconds`).
pub static WAL_FSYNC: Histogram = Histogram::new(&DISK_BUCKETS);

/// Each durable commit of the state machine's database (etcd:
/// `etcd_disk_backend_commit_duration_seconds`).
pub static BACKEND_COMMIT: Histogram = Histogram::new(&DISK_BUCKETS);

/// Entries made durable by one append of the write path: one fdatasync
/// for that many proposals (Concord's `concord_write_batch_size`).
pub static WRITE_BATCH: Histogram = Histogram::new(&BATCH_BUCKETS);

/// Writes proposed on this member and not answered yet (etcd:
/// `etcd_server_proposals_pending`).
pub static PROPOSALS_PENDING: Gauge = Gauge::new();

/// Writes proposed on this member that the write path could not commit:
/// no leader, timed out, stopped (etcd: `etcd_server_proposals_failed_total`).
/// A write refused by the state machine (a failed compare, an unknown
/// lease) was committed, and is not counted.
pub static PROPOSALS_FAILED: Counter = Counter::new();

/// Log entries whose apply took longer than [`SLOW_APPLY`] (etcd:
/// `etcd_server_slow_apply_total`).
pub static SLOW_APPLIES: Counter = Counter::new();

/// Leases granted (applied) on this member (etcd:
/// `etcd_debugging_lease_granted_total`).
pub static LEASES_GRANTED: Counter = Counter::new();

/// Leases revoked (applied) on this member, on request or at expiry
/// (etcd: `etcd_debugging_lease_revoked_total`).
pub static LEASES_REVOKED: Counter = Counter::new();

/// Keep-alives this member renewed as the lessor (etcd:
/// `etcd_debugging_lease_renewed_total`).
pub static LEASES_RENEWED: Counter = Counter::new();

/// raft appends this member took from a leader (etcd's v2
/// `/v2/stats/self` `recvAppendRequestCnt`).
pub static APPENDS_RECEIVED: Counter = Counter::new();

/// raft appends this member sent as leader (`sendAppendRequestCnt`).
pub static APPENDS_SENT: Counter = Counter::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let h = Histogram::new(&DISK_BUCKETS);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.001, 1));
        assert_eq!(s.buckets[1], (0.002, 1));
        assert_eq!(s.buckets[2], (0.004, 2));
        assert_eq!(s.buckets.last(), Some(&(8.192, 2)));
        assert!((s.sum - 20.0035).abs() < 1e-9);
    }

    #[test]
    fn counts_fall_in_batch_buckets() {
        let h = Histogram::new(&BATCH_BUCKETS);
        for v in [1.0, 1.0, 3.0, 5000.0] {
            h.observe_value(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets[0], (1.0, 2));
        assert_eq!(s.buckets[2], (4.0, 3));
        assert_eq!(s.buckets.last(), Some(&(1024.0, 3)));
        assert_eq!(s.count, 4);
        assert!((s.sum - 5005.0).abs() < 1e-6);
    }

    #[test]
    fn a_tracked_gauge_goes_back_down() {
        let g = Gauge::new();
        let a = g.track();
        let b = g.track();
        assert_eq!(g.get(), 2);
        drop(a);
        assert_eq!(g.get(), 1);
        drop(b);
        assert_eq!(g.get(), 0);
    }
}
