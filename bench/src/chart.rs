//! The comparison table and chart: per workload and client count, the
//! subject's figures next to the base's, and their ratio.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::stats::Report;

/// The figures of one server, workload and client count: a run's own, or
/// with several runs (rounds of `compare.sh --rounds N`) the median of
/// each figure. Without `--fresh` a peak RSS is the server's peak so far,
/// so later rounds report more than the first.
fn find(all: &[Report], server: &str, workload: &str, clients: usize) -> Option<Report> {
    let runs: Vec<&Report> = all
        .iter()
        .filter(|r| r.server == server && r.workload == workload && r.clients == clients)
        .collect();
    let first = (*runs.first()?).clone();
    let median = |f: fn(&Report) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(|r| f(r)).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    Some(Report {
        ops_per_sec: median(|r| r.ops_per_sec),
        p50_ms: median(|r| r.p50_ms),
        p90_ms: median(|r| r.p90_ms),
        p99_ms: median(|r| r.p99_ms),
        max_ms: median(|r| r.max_ms),
        server_cpu_us_per_op: median(|r| r.server_cpu_us_per_op),
        server_peak_rss_kib: median(|r| r.server_peak_rss_kib as f64) as u64,
        ..first
    })
}

/// How many runs each combination has (the most of any).
fn rounds(all: &[Report]) -> usize {
    let mut counts = std::collections::HashMap::new();
    for r in all {
        *counts.entry((&r.server, &r.workload, r.clients)).or_insert(0usize) += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

fn workloads(all: &[Report]) -> Vec<String> {
    let mut seen = Vec::new();
    for r in all {
        if !seen.contains(&r.workload) {
            seen.push(r.workload.clone());
        }
    }
    seen
}

fn client_counts(all: &[Report]) -> Vec<usize> {
    all.iter()
        .map(|r| r.clients)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A markdown table: ops/s, p99 and server CPU per op of both, and ratios.
pub fn table(all: &[Report], base: &str, subject: &str) -> String {
    let mut out = String::new();
    let n = rounds(all);
    if n > 1 {
        let _ = writeln!(out, "Medians of {n} runs.\n");
    }
    let _ = writeln!(
        out,
        "| workload | clients | {base} ops/s | {subject} ops/s | ratio | {base} p99 ms | {subject} p99 ms | {base} cpu µs/op | {subject} cpu µs/op | {base} peak RSS MiB | {subject} peak RSS MiB |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for w in workloads(all) {
        for c in client_counts(all) {
            let (Some(b), Some(s)) = (find(all, base, &w, c), find(all, subject, &w, c)) else {
                continue;
            };
            let ratio = if b.ops_per_sec > 0.0 {
                s.ops_per_sec / b.ops_per_sec
            } else {
                0.0
            };
            let _ = writeln!(
                out,
                "| {w} | {c} | {:.0} | {:.0} | **{ratio:.2}×** | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
                b.ops_per_sec,
                s.ops_per_sec,
                b.p99_ms,
                s.p99_ms,
                b.server_cpu_us_per_op,
                s.server_cpu_us_per_op,
                b.server_peak_rss_kib as f64 / 1024.0,
                s.server_peak_rss_kib as f64 / 1024.0
            );
        }
    }
    let peak = |server: &str| {
        all.iter()
            .filter(|r| r.server == server)
            .map(|r| r.server_peak_rss_kib)
            .max()
            .unwrap_or(0)
    };
    let _ = writeln!(
        out,
        "\nPeak RSS: {base} {} MiB, {subject} {} MiB.",
        peak(base) / 1024,
        peak(subject) / 1024
    );
    out
}

/// Small multiples: for each workload, ops/s and p99 against clients.
pub fn svg(all: &[Report], base: &str, subject: &str) -> String {
    let ws = workloads(all);
    let counts = client_counts(all);
    let (pw, ph, cols) = (260.0, 170.0, 4usize);
    let panels: Vec<(String, bool)> = ws
        .iter()
        .flat_map(|w| [(w.clone(), false), (w.clone(), true)])
        .collect();
    let rows = panels.len().div_ceil(cols);
    let (width, height) = (pw * cols as f64 + 20.0, ph * rows as f64 + 50.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="10">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r##"<text x="10" y="18" font-size="13">{subject} (blue) vs {base} (grey): ops/s and p99 latency against concurrent clients</text>"##
    );
    for (i, (w, p99)) in panels.iter().enumerate() {
        let (x0, y0) = (10.0 + (i % cols) as f64 * pw, 30.0 + (i / cols) as f64 * ph);
        let (l, t, cw, chh) = (x0 + 45.0, y0 + 20.0, pw - 60.0, ph - 50.0);
        let value = |r: &Report| if *p99 { r.p99_ms } else { r.ops_per_sec };
        let max = counts
            .iter()
            .flat_map(|c| [find(all, base, w, *c), find(all, subject, w, *c)])
            .flatten()
            .map(|r| value(&r))
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let title = if *p99 { "p99 ms" } else { "ops/s" };
        let _ = writeln!(
            out,
            r#"<text x="{l}" y="{}" font-weight="bold">{w} — {title}</text>"#,
            y0 + 12.0
        );
        let _ = writeln!(
            out,
            r##"<rect x="{l}" y="{t}" width="{cw}" height="{chh}" fill="none" stroke="#ccc"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            l - 3.0,
            t + 8.0,
            fmt(max)
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">0</text>"#,
            l - 3.0,
            t + chh
        );
        let xs: Vec<f64> = (0..counts.len())
            .map(|k| {
                l + if counts.len() > 1 {
                    cw * k as f64 / (counts.len() - 1) as f64
                } else {
                    cw / 2.0
                }
            })
            .collect();
        for (k, c) in counts.iter().enumerate() {
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="middle">{c}</text>"#,
                xs[k],
                t + chh + 12.0
            );
        }
        for (server, color) in [(base, "#999999"), (subject, "#1f6fd1")] {
            let pts: Vec<String> = counts
                .iter()
                .enumerate()
                .filter_map(|(k, c)| find(all, server, w, *c).map(|r| (xs[k], t + chh - chh * value(&r) / max)))
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                pts.join(" ")
            );
            for p in &pts {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(out, r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>"#);
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

fn fmt(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(server: &str, workload: &str, clients: usize, ops: f64, p99: f64) -> Report {
        Report {
            server: server.into(),
            workload: workload.into(),
            clients,
            ops_per_sec: ops,
            p99_ms: p99,
            ..Default::default()
        }
    }

    #[test]
    fn ratios_and_chart() {
        let all = vec![
            r("etcd", "put", 1, 100.0, 2.0),
            r("concord", "put", 1, 150.0, 1.0),
            r("etcd", "put", 64, 1000.0, 9.0),
        ];
        let t = table(&all, "etcd", "concord");
        assert!(t.contains("| put | 1 | 100 | 150 | **1.50×** | 2.00 | 1.00 |"), "{t}");
        assert!(
            !t.contains("| put | 64 |"),
            "a combination without both servers is left out"
        );
        let s = svg(&all, "etcd", "concord");
        assert!(s.starts_with("<svg") && s.contains("put — ops/s") && s.contains("put — p99 ms"));
        assert_eq!(s.matches("<polyline").count(), 4);
    }

    #[test]
    fn several_runs_give_medians() {
        let all = vec![
            r("etcd", "put", 1, 100.0, 2.0),
            r("concord", "put", 1, 150.0, 1.0),
            r("etcd", "put", 1, 300.0, 4.0),
            r("concord", "put", 1, 90.0, 9.0),
            r("etcd", "put", 1, 200.0, 3.0),
            r("concord", "put", 1, 400.0, 2.0),
        ];
        let t = table(&all, "etcd", "concord");
        assert!(t.starts_with("Medians of 3 runs."), "{t}");
        assert!(t.contains("| put | 1 | 200 | 150 | **0.75×** | 3.00 | 2.00 |"), "{t}");
    }
}
