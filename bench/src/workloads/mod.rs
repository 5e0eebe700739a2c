//! The workloads. Each runs for a fixed time with N concurrent clients
//! spread over M connections, and reports every operation's latency.

mod gateway;
mod grpc;
mod lease;
mod watch;

use std::future::Future;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};

use crate::stats::Samples;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Every workload by name, as the command line takes them.
pub const ALL: &[&str] = &[
    "put",
    "put-seq",
    "range-lin",
    "range-ser",
    "range-prefix",
    "txn-cas",
    "watch",
    "lease",
    "gw-put",
    "gw-range",
];

/// How one run is shaped.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Connection i goes to `endpoints[i % len]`.
    pub endpoints: Vec<String>,
    pub clients: usize,
    pub conns: usize,
    pub duration: Duration,
    pub key_size: usize,
    pub val_size: usize,
    pub key_space: u64,
    /// Watch: puts per second of the writer.
    pub rate: u64,
    /// Stop after this many operations in all (0: run for `duration` only).
    pub total: u64,
}

impl Shape {
    /// The endpoint of connection (or HTTP client) `i`.
    pub fn endpoint(&self, i: usize) -> &str {
        &self.endpoints[i % self.endpoints.len().max(1)]
    }
}

/// Writes what a workload reads (once per server; not measured).
pub async fn prepare(workload: &str, shape: &Shape) -> Result<(), Error> {
    let (prefix, count) = match workload {
        "range-lin" | "range-ser" | "gw-range" => ("r", grpc::RANGE_KEYS),
        "range-prefix" => ("p/", grpc::PREFIX_KEYS),
        _ => return Ok(()),
    };
    let mut conns = connect(shape).await?;
    preload(&mut conns[0], prefix, count, shape).await
}

/// Runs `workload` (after [`prepare`]); returns the samples and the measured seconds.
pub async fn run(workload: &str, shape: &Shape) -> Result<(Samples, f64), Error> {
    match workload {
        "put" => grpc::put(shape, false).await,
        "put-seq" => grpc::put(shape, true).await,
        "range-lin" => grpc::range_one(shape, false).await,
        "range-ser" => grpc::range_one(shape, true).await,
        "range-prefix" => grpc::range_prefix(shape).await,
        "txn-cas" => grpc::txn_cas(shape).await,
        "watch" => watch::run(shape).await,
        "lease" => lease::churn(shape).await,
        "gw-put" => gateway::put(shape).await,
        "gw-range" => gateway::range(shape).await,
        other => Err(format!("unknown workload {other:?}; known: {}", ALL.join(", ")).into()),
    }
}

/// `size` bytes naming key number `i` (zero-padded, prefix kept).
pub fn key(prefix: &str, i: u64, size: usize) -> Vec<u8> {
    let digits = size.saturating_sub(prefix.len()).max(1);
    format!("{prefix}{i:0digits$}").into_bytes()
}

/// A small, fast per-client random sequence (xorshift).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// `conns` gRPC connections (etcd-client), shared round-robin by the clients.
pub async fn connect(shape: &Shape) -> Result<Vec<Client>, Error> {
    let mut out = Vec::new();
    for i in 0..shape.conns.max(1) {
        out.push(Client::connect([shape.endpoint(i)], None).await?);
    }
    Ok(out)
}

/// Runs `op` in `clients` concurrent tasks until `duration` has passed (or
/// `total` operations are done);
/// `op(client, n)` performs the n-th operation of a client and says
/// whether it succeeded. Returns the samples and the elapsed seconds.
pub async fn drive<F, Fut>(shape: &Shape, op: F) -> (Samples, f64)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let start = Instant::now();
    let deadline = start + shape.duration;
    let tickets = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = if shape.total == 0 { u64::MAX } else { shape.total };
    let mut tasks = Vec::new();
    for c in 0..shape.clients.max(1) {
        let (op, tickets) = (op.clone(), tickets.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = Samples::default();
            let mut n = 0;
            while Instant::now() < deadline && tickets.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let t = Instant::now();
                if op(c, n).await {
                    s.latencies.push(t.elapsed());
                } else {
                    s.errors += 1;
                }
                n += 1;
            }
            s
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        if let Ok(s) = t.await {
            all.merge(s);
        }
    }
    (all, start.elapsed().as_secs_f64())
}

/// Makes sure `count` keys `prefix + i` exist (written once per server).
pub async fn preload(client: &mut Client, prefix: &str, count: u64, shape: &Shape) -> Result<(), Error> {
    let first = key(prefix, 0, shape.key_size);
    let last = key(prefix, count - 1, shape.key_size);
    let have = client
        .get(
            first.clone(),
            Some(GetOptions::new().with_range(last.clone()).with_count_only()),
        )
        .await?;
    if have.count() as u64 >= count - 1 {
        return Ok(());
    }
    let value = vec![b'v'; shape.val_size];
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let mut c = client.clone();
        let (prefix, value, size) = (prefix.to_string(), value.clone(), shape.key_size);
        tasks.push(tokio::spawn(async move {
            for i in (t..count).step_by(16) {
                c.put(key(&prefix, i, size), value.clone(), None).await?;
            }
            Ok::<_, etcd_client::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Grows the server's store to at least `revisions` revisions (not
/// measured): puts under `big/` over `revisions * 2 / 5` distinct keys, so a
/// store of 500,000 revisions holds 200,000 keys, the shape of a store
/// after some churn. Nothing is written when it is already that large.
pub async fn preload_store(shape: &Shape, revisions: u64) -> Result<(), Error> {
    if revisions == 0 {
        return Ok(());
    }
    let mut client = Client::connect([shape.endpoint(0)], None).await?;
    let have = client.get("big/", None).await?.header().map_or(0, |h| h.revision()) as u64;
    if have >= revisions {
        return Ok(());
    }
    let todo = revisions - have;
    let keys = (revisions * 2 / 5).max(1);
    let value = vec![b'v'; shape.val_size];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let mut c = Client::connect([shape.endpoint(t as usize)], None).await?;
        let (value, size) = (value.clone(), shape.key_size);
        tasks.push(tokio::spawn(async move {
            for i in (t..todo).step_by(32) {
                c.put(key("big/", i % keys, size), value.clone(), None).await?;
            }
            Ok::<_, etcd_client::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    eprintln!(
        "preloaded {todo} revisions over {keys} keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
