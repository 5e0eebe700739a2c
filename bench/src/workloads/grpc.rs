//! gRPC workloads through the third-party `etcd-client` crate.

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};

use super::{connect, drive, key, Error, Rng, Shape};
use crate::stats::Samples;

/// Keys the range workloads read (preloaded once).
pub const RANGE_KEYS: u64 = 10_000;
/// Keys under the prefix the prefix-range workload reads.
pub const PREFIX_KEYS: u64 = 100;

/// Puts of `val_size` bytes: random keys in `key_space`, or sequential.
pub async fn put(shape: &Shape, sequential: bool) -> Result<(Samples, f64), Error> {
    let conns = connect(shape).await?;
    let (clients, size, space) = (shape.clients, shape.key_size, shape.key_space);
    let value = vec![b'v'; shape.val_size];
    Ok(drive(shape, move |c, n| {
        let mut kv = conns[c % conns.len()].clone();
        let value = value.clone();
        async move {
            let i = if sequential {
                n * clients as u64 + c as u64
            } else {
                Rng::new(c as u64 * 1_000_003 + n).below(space)
            };
            kv.put(key("", i, size), value, None).await.is_ok()
        }
    })
    .await)
}

/// Single-key gets of random preloaded keys.
pub async fn range_one(shape: &Shape, serializable: bool) -> Result<(Samples, f64), Error> {
    let conns = connect(shape).await?;
    let size = shape.key_size;
    Ok(drive(shape, move |c, n| {
        let mut kv = conns[c % conns.len()].clone();
        async move {
            let k = key("r", Rng::new(c as u64 * 7919 + n).below(RANGE_KEYS), size);
            let opts = serializable.then(|| GetOptions::new().with_serializable());
            matches!(kv.get(k, opts).await, Ok(r) if r.kvs().len() == 1)
        }
    })
    .await)
}

/// Gets of a prefix holding 100 keys.
pub async fn range_prefix(shape: &Shape) -> Result<(Samples, f64), Error> {
    let conns = connect(shape).await?;
    Ok(drive(shape, move |c, _| {
        let mut kv = conns[c % conns.len()].clone();
        async move {
            let r = kv.get("p/", Some(GetOptions::new().with_prefix())).await;
            matches!(r, Ok(r) if r.kvs().len() == PREFIX_KEYS as usize)
        }
    })
    .await)
}

/// Compare-and-swap: each client owns a key and replaces it only if its
/// mod revision is still the one it last wrote.
pub async fn txn_cas(shape: &Shape) -> Result<(Samples, f64), Error> {
    let conns = connect(shape).await?;
    let (size, value) = (shape.key_size, vec![b'v'; shape.val_size]);
    let mut last = Vec::new();
    for c in 0..shape.clients {
        let mut kv = conns[c % conns.len()].clone();
        let r = kv.put(key("t", c as u64, size), value.clone(), None).await?;
        last.push(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(
            r.header().map_or(0, |h| h.revision()),
        )));
    }
    Ok(drive(shape, move |c, _| {
        let mut kv = conns[c % conns.len()].clone();
        let (last, value) = (last[c].clone(), value.clone());
        async move {
            let k = key("t", c as u64, size);
            let rev = last.load(std::sync::atomic::Ordering::Relaxed);
            let txn = Txn::new()
                .when([Compare::mod_revision(k.clone(), CompareOp::Equal, rev)])
                .and_then([TxnOp::put(k, value, None)]);
            match kv.txn(txn).await {
                Ok(r) if r.succeeded() => {
                    last.store(
                        r.header().map_or(0, |h| h.revision()),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    true
                }
                _ => false,
            }
        }
    })
    .await)
}
