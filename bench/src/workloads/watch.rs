//! Watch: W watchers on one prefix (spread over the connections' streams)
//! while one writer puts at a fixed rate; each put carries its send time,
//! so every delivered event gives a put-to-event latency. Events that never
//! arrive count as errors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::WatchOptions;

use super::{connect, key, Error, Shape};
use crate::stats::Samples;

pub async fn run(shape: &Shape) -> Result<(Samples, f64), Error> {
    let conns = connect(shape).await?;
    let origin = Instant::now();
    let prefix = "w/";
    let watchers = shape.clients.max(1);
    let streams = shape.conns.max(1).min(watchers);
    let collected = Arc::new(Mutex::new(Samples::default()));
    let mut receivers = Vec::new();
    for s in 0..streams {
        let mut client = conns[s % conns.len()].clone();
        let opts = || Some(WatchOptions::new().with_prefix());
        let (mut watcher, mut stream) = client.watch(prefix, opts()).await?.split();
        for _ in 1..(s..watchers).step_by(streams).count() {
            watcher.watch(prefix, opts()).await?;
        }
        let collected = Arc::clone(&collected);
        receivers.push(tokio::spawn(async move {
            let _keep = watcher;
            while let Ok(Some(resp)) = stream.message().await {
                let now = origin.elapsed().as_nanos() as u64;
                let mut got: Vec<Duration> = Vec::new();
                for ev in resp.events() {
                    if let Some(kv) = ev.kv() {
                        let sent: u64 = kv.value_str().ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
                        got.push(Duration::from_nanos(now.saturating_sub(sent)));
                    }
                }
                collected.lock().expect("not poisoned").latencies.extend(got);
            }
        }));
    }
    // Let every watcher be created before writing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut writer = conns[0].clone();
    let start = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / shape.rate.max(1) as f64);
    let (mut n, mut written) = (0u32, 0u64);
    while start.elapsed() < shape.duration {
        let stamp = origin.elapsed().as_nanos() as u64;
        let mut value = format!("{stamp:020}").into_bytes();
        value.resize(shape.val_size.max(20), b' ');
        if writer
            .put(key(prefix, n as u64, shape.key_size), value, None)
            .await
            .is_ok()
        {
            written += 1;
        }
        n += 1;
        tokio::time::sleep_until((start + gap * n).into()).await;
    }
    // Give the last events time to arrive.
    let expected = written * watchers as u64;
    let wait_until = Instant::now() + Duration::from_secs(5);
    while (collected.lock().expect("not poisoned").latencies.len() as u64) < expected && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    for r in receivers {
        r.abort();
    }
    let mut all = std::mem::take(&mut *collected.lock().expect("not poisoned"));
    all.errors += (n as u64 - written) + expected.saturating_sub(all.latencies.len() as u64);
    Ok((all, secs))
}
