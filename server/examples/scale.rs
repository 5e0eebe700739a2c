//! Watch and lease scale check against any etcd-compatible endpoint (gRPC):
//!
//! 1. `watchers`: W watchers on one Watch stream, all on one prefix; P puts
//!    under the prefix; time until every watcher has every event.
//! 2. `leases`: grant N leases (64 at a time).
//! 3. `catchup`: R puts, then one watcher starting R revisions back; time
//!    until it has caught up.
//!
//! After each step it prints the server's RSS and CPU time (read from
//! /proc/PID, so run it on the server's machine).
//!
//! `cargo run --release --example scale -- ENDPOINT PID [W P N R]`

use std::time::Instant;

use concord_core::api::etcdserverpb::watch_request::RequestUnion;
use concord_core::api::etcdserverpb::{LeaseGrantRequest, PutRequest, WatchCreateRequest, WatchRequest};
use concord_server::pb::etcdserverpb::kv_client::KvClient;
use concord_server::pb::etcdserverpb::lease_client::LeaseClient;
use concord_server::pb::etcdserverpb::watch_client::WatchClient;
use tonic::transport::{Channel, Endpoint};

fn usage(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("VmRSS: ?")
        .to_string();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    format!(
        "{} cpu={:.1}s",
        rss.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        (ticks(11) + ticks(12)) / 100.0
    )
}

async fn puts(ch: &Channel, prefix: &str, n: usize) {
    let mut tasks = Vec::new();
    for c in 0..16 {
        let mut kv = KvClient::new(ch.clone());
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (c..n).step_by(16) {
                let req = PutRequest {
                    key: format!("{prefix}{i:08}").into_bytes(),
                    value: vec![b'v'; 64],
                    ..Default::default()
                };
                kv.put(req).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A create request for `[key, end)` from `start_revision` (0: now).
fn create(key: &[u8], end: &[u8], start_revision: i64) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: key.to_vec(),
            range_end: end.to_vec(),
            start_revision,
            ..Default::default()
        })),
    }
}

/// Opens a Watch call fed by `rx` (requests are queued before the call: a
/// server may send its response headers only with its first message).
async fn open_watch(
    ch: &Channel,
    rx: tokio::sync::mpsc::Receiver<WatchRequest>,
) -> Result<tonic::Streaming<concord_core::api::etcdserverpb::WatchResponse>, tonic::Status> {
    Ok(WatchClient::new(ch.clone())
        .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let ep = a.get(1).cloned().unwrap_or_else(|| "127.0.0.1:2379".into());
    let pid = a.get(2).cloned().unwrap_or_default();
    let num = |i: usize, d: usize| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (w, p, n, r) = (num(3, 10_000), num(4, 100), num(5, 100_000), num(6, 100_000));
    let ch = Endpoint::from_shared(format!("http://{ep}"))?.connect().await?;
    println!("start: {}", usage(&pid));

    // 1. W watchers on one stream.
    // Requests are queued before the call: a server may send its response
    // headers only with its first message.
    let (tx, rx) = tokio::sync::mpsc::channel(w.max(1));
    let t = Instant::now();
    for _ in 0..w {
        tx.send(create(b"w/", b"w0", 0)).await?;
    }
    let mut stream = open_watch(&ch, rx).await?;
    let mut created = 0;
    while created < w {
        let resp = stream.message().await?.expect("stream open");
        created += usize::from(resp.created);
    }
    println!(
        "{w} watchers created on one stream in {:.2}s: {}",
        t.elapsed().as_secs_f64(),
        usage(&pid)
    );
    let t = Instant::now();
    let writer = {
        let ch = ch.clone();
        tokio::spawn(async move { puts(&ch, "w/", p).await })
    };
    let mut events = 0usize;
    while events < w * p {
        let resp = stream.message().await?.expect("stream open");
        events += resp.events.len();
    }
    writer.await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{p} puts -> {events} events delivered in {secs:.2}s ({:.0} events/s): {}",
        events as f64 / secs,
        usage(&pid)
    );
    drop(tx);
    drop(stream);

    // 2. N leases.
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..64 {
        let mut lease = LeaseClient::new(ch.clone());
        tasks.push(tokio::spawn(async move {
            for i in (c..n).step_by(64) {
                lease
                    .lease_grant(LeaseGrantRequest {
                        ttl: 3600,
                        id: 1_000_000 + i as i64,
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{n} leases granted in {secs:.2}s ({:.0}/s): {}",
        n as f64 / secs,
        usage(&pid)
    );

    // 3. A watcher R revisions behind.
    puts(&ch, "c/", r).await;
    let mut kv = KvClient::new(ch.clone());
    let head = kv
        .range(concord_core::api::etcdserverpb::RangeRequest {
            key: b"c/".to_vec(),
            count_only: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    let current = head.header.unwrap().revision;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let t = Instant::now();
    tx.send(create(b"c/", b"c0", current - r as i64 + 1)).await?;
    let mut stream = open_watch(&ch, rx).await?;
    let mut got = 0usize;
    while got < r {
        got += stream.message().await?.expect("stream open").events.len();
    }
    println!(
        "watcher {r} revisions behind caught up in {:.2}s: {}",
        t.elapsed().as_secs_f64(),
        usage(&pid)
    );
    Ok(())
}
