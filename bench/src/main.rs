//! `concord-bench`: the same workloads against any etcd-compatible
//! endpoint, through third-party clients (the `etcd-client` crate for gRPC,
//! reqwest for the JSON gateway), so Concord and etcd are measured alike.
//!
//! ```text
//! concord-bench run --endpoint 127.0.0.1:2379 --server concord --server-pid PID \
//!     --workloads put,range-ser --clients 1,16,64,256 --duration 3 >> results.jsonl
//! concord-bench report results.jsonl --svg chart.svg
//! ```
//! For a cluster, `--endpoint` and `--server-pid` take every member's
//! (comma-separated): connections are spread over the members and CPU
//! time is the cluster's.
//! `bench/compare.sh` runs the whole comparison in one command.

mod chart;
mod stats;
mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use stats::{process_usage, Report};
use workloads::Shape;

#[derive(Parser)]
#[command(
    name = "concord-bench",
    version,
    about = "Load generator for etcd-compatible servers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs workloads against one server; prints JSON lines (stdout) and a table (stderr).
    Run {
        /// host:port of the server's client URL; several (comma-separated)
        /// for a cluster: connection i goes to endpoint i mod n.
        #[arg(long, default_value = "127.0.0.1:2379", value_delimiter = ',')]
        endpoint: Vec<String>,
        /// Label for the results (e.g. etcd, concord).
        #[arg(long, default_value = "server")]
        server: String,
        /// The server's process ID, to report its CPU time per op and peak
        /// RSS; several (comma-separated) for a cluster: CPU time is summed
        /// over them, peak RSS is the largest.
        #[arg(long, value_delimiter = ',')]
        server_pid: Vec<u32>,
        /// Comma-separated workloads (`all` for every one).
        #[arg(long, default_value = "all", value_delimiter = ',')]
        workloads: Vec<String>,
        /// Comma-separated client counts.
        #[arg(long, default_value = "1,16,64,256", value_delimiter = ',')]
        clients: Vec<usize>,
        /// Connections the clients share (0: one per 8 clients).
        #[arg(long, default_value_t = 0)]
        conns: usize,
        /// Seconds per run.
        #[arg(long, default_value_t = 3.0)]
        duration: f64,
        #[arg(long, default_value_t = 8)]
        key_size: usize,
        #[arg(long, default_value_t = 256)]
        val_size: usize,
        /// Distinct keys the put workloads write.
        #[arg(long, default_value_t = 100_000)]
        key_space: u64,
        /// Watch: the writer's puts per second.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Stop each run after this many operations (0: run for --duration).
        #[arg(long, default_value_t = 0)]
        total: u64,
        /// Before the workloads, grow the store to this many revisions
        /// (over 2/5 as many keys under `big/`); 0: leave it as it is.
        #[arg(long, default_value_t = 0)]
        preload: u64,
    },
    /// Pairs two servers' results: ratio table (markdown) and an SVG chart.
    Report {
        /// JSON-lines files written by `run`.
        files: Vec<PathBuf>,
        /// The server compared against.
        #[arg(long, default_value = "etcd")]
        base: String,
        /// The server measured.
        #[arg(long, default_value = "concord")]
        subject: String,
        /// Where to write the chart.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

/// CPU seconds summed over `pids` and the largest peak RSS (KiB); `None`
/// without pids or when one is gone.
fn usage(pids: &[u32]) -> Option<(f64, u64)> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold((0.0, 0), |(cpu, rss), &pid| {
        let (c, r) = process_usage(pid)?;
        Some((cpu + c, rss.max(r)))
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match Cli::parse().cmd {
        Cmd::Run {
            endpoint,
            server,
            server_pid,
            workloads,
            clients,
            conns,
            duration,
            key_size,
            val_size,
            key_space,
            rate,
            total,
            preload,
        } => {
            let names: Vec<String> = if workloads.iter().any(|w| w == "all") {
                workloads::ALL.iter().map(|s| s.to_string()).collect()
            } else {
                workloads
            };
            let shape_for = |c: usize| Shape {
                endpoints: endpoint.clone(),
                clients: c,
                conns: if conns == 0 { c.div_ceil(8) } else { conns },
                duration: Duration::from_secs_f64(duration),
                key_size,
                val_size,
                key_space,
                rate,
                total,
            };
            workloads::preload_store(&shape_for(1), preload).await?;
            for w in &names {
                for &c in &clients {
                    let shape = shape_for(c);
                    workloads::prepare(w, &shape).await?;
                    let before = usage(&server_pid);
                    let (samples, secs) = workloads::run(w, &shape).await?;
                    let mut r = Report::new(&server, w, c, shape.conns, samples, secs);
                    if let (Some((cpu0, _)), Some((cpu1, rss))) = (before, usage(&server_pid)) {
                        r.server_cpu_us_per_op = if r.ops > 0 {
                            (cpu1 - cpu0) * 1e6 / r.ops as f64
                        } else {
                            0.0
                        };
                        r.server_peak_rss_kib = rss;
                    }
                    eprintln!("{}", r.table_row());
                    println!("{}", serde_json::to_string(&r)?);
                }
            }
        }
        Cmd::Report {
            files,
            base,
            subject,
            svg,
        } => {
            let mut all: Vec<Report> = Vec::new();
            for f in files {
                for line in std::fs::read_to_string(&f)?.lines().filter(|l| !l.trim().is_empty()) {
                    all.push(serde_json::from_str(line)?);
                }
            }
            print!("{}", chart::table(&all, &base, &subject));
            if let Some(path) = svg {
                std::fs::write(&path, chart::svg(&all, &base, &subject))?;
                eprintln!("chart written to {}", path.display());
            }
        }
    }
    Ok(())
}
