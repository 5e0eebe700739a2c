//! A small put load generator for any etcd-compatible endpoint (gRPC), for
//! quick comparisons until `bench/` exists. Random 8-byte keys in a 100,000
//! key space, 256-byte values (etcd's benchmark sizes).
//!
//! `cargo run --release --example putload -- ENDPOINT CLIENTS CONNECTIONS TOTAL`

use std::time::{Duration, Instant};

use concord_core::api::etcdserverpb::PutRequest;
use concord_server::pb::etcdserverpb::kv_client::KvClient;
use tonic::transport::{Channel, Endpoint};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let ep = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:2379".into());
    let clients: usize = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let conns: usize = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let total: usize = args.get(4).map_or(Ok(10_000), |s| s.parse())?;

    let mut channels: Vec<Channel> = Vec::new();
    for _ in 0..conns.max(1) {
        channels.push(Endpoint::from_shared(format!("http://{ep}"))?.connect().await?);
    }
    let per = total / clients;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut kv = KvClient::new(channels[c % channels.len()].clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1);
            let mut errors = 0usize;
            for _ in 0..per {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = format!("{:08}", x % 100_000).into_bytes();
                let t = Instant::now();
                let r = kv
                    .put(PutRequest {
                        key,
                        value: vec![b'v'; 256],
                        ..Default::default()
                    })
                    .await;
                lat.push(t.elapsed());
                errors += usize::from(r.is_err());
            }
            (lat, errors)
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "endpoint={ep} clients={clients} conns={conns} ops={} secs={secs:.2} ops/s={:.0} p50={:.2}ms p99={:.2}ms errors={errors}",
        lat.len(),
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}
