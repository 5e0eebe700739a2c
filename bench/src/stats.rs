//! Latency and throughput figures of one run.

use std::time::Duration;

use serde::Serialize;

/// What every client task of a run reports back.
#[derive(Default)]
pub struct Samples {
    /// One latency per completed operation.
    pub latencies: Vec<Duration>,
    /// Operations that failed.
    pub errors: u64,
}

impl Samples {
    /// Adds another task's samples.
    pub fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
    }
}

/// One result line.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Report {
    pub server: String,
    pub workload: String,
    pub clients: usize,
    pub conns: usize,
    pub ops: u64,
    pub errors: u64,
    pub secs: f64,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Server CPU time (user + system) per operation, in microseconds.
    pub server_cpu_us_per_op: f64,
    /// Server peak RSS so far (VmHWM), in KiB.
    pub server_peak_rss_kib: u64,
}

impl Report {
    /// Builds the figures from the samples of a run that took `secs`.
    pub fn new(server: &str, workload: &str, clients: usize, conns: usize, mut s: Samples, secs: f64) -> Report {
        s.latencies.sort_unstable();
        let ms = |p: f64| -> f64 {
            if s.latencies.is_empty() {
                return 0.0;
            }
            let i = ((s.latencies.len() as f64 * p).ceil() as usize).clamp(1, s.latencies.len()) - 1;
            s.latencies[i].as_secs_f64() * 1e3
        };
        let ops = s.latencies.len() as u64;
        Report {
            server: server.into(),
            workload: workload.into(),
            clients,
            conns,
            ops,
            errors: s.errors,
            secs,
            ops_per_sec: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: ms(1.0),
            ..Default::default()
        }
    }

    /// One human-readable line.
    pub fn table_row(&self) -> String {
        format!(
            "{:<8} {:<16} {:>4} clients {:>9.0} ops/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  errors {:>4}  cpu {:>6.1} us/op  rss {:>6} KiB",
            self.server,
            self.workload,
            self.clients,
            self.ops_per_sec,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.errors,
            self.server_cpu_us_per_op,
            self.server_peak_rss_kib
        )
    }
}

/// CPU time (user + system, seconds) and peak RSS (KiB) of a process, from /proc.
pub fn process_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Linux reports CPU time in clock ticks of 100 Hz (USER_HZ).
    Some((ticks / 100.0, hwm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s = Samples {
            latencies: (1..=100).map(Duration::from_millis).collect(),
            errors: 2,
        };
        let r = Report::new("x", "put", 4, 1, s, 2.0);
        assert_eq!((r.ops, r.errors), (100, 2));
        assert_eq!((r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(r.ops_per_sec, 50.0);
    }
}
