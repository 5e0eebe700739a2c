//! Latency histograms of the write path, kept with atomics and exported by
//! the server under etcd's names (`etcd_disk_wal_fsync_duration_seconds`,
//! `etcd_disk_backend_commit_duration_seconds`), with etcd's buckets. They
//! are process-wide, as etcd's are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// etcd's bucket bounds for disk latencies: 1 ms doubling to 8.192 s.
pub const DISK_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192,
];

/// Observations of a duration, by bucket.
#[derive(Debug)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last is above every bound.
    counts: [AtomicU64; DISK_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
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
    /// An empty histogram.
    pub const fn new() -> Histogram {
        Histogram {
            counts: [const { AtomicU64::new(0) }; DISK_BUCKETS.len() + 1],
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = DISK_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(DISK_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The buckets, count and sum now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(DISK_BUCKETS.len());
        for (i, &bound) in DISK_BUCKETS.iter().enumerate() {
            total += self.counts[i].load(Ordering::Relaxed);
            buckets.push((bound, total));
        }
        total += self.counts[DISK_BUCKETS.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count: total,
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// Each fdatasync of the log (etcd: `etcd_disk_wal_fsync_duration_seconds`).
pub static WAL_FSYNC: Histogram = Histogram::new();

/// Each durable commit of the state machine's database (etcd:
/// `etcd_disk_backend_commit_duration_seconds`).
pub static BACKEND_COMMIT: Histogram = Histogram::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let h = Histogram::new();
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
}
