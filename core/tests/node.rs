//! The write path end to end in one process: concurrent writers, readers
//! at random revisions and compactions racing each other on a real `Node`
//! (log + redb); then a restart that must rebuild the same state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use concord_core::api::concordpb::log_request::Request as LogOp;
use concord_core::api::concordpb::LogRequest;
use concord_core::api::error::EtcdError;
use concord_core::api::etcdserverpb::{CompactionRequest, PutRequest, RangeRequest};
use concord_core::raft::{Node, NodeConfig};
use concord_core::state_machine::WriteResponse;

fn put(key: String, value: Vec<u8>) -> LogRequest {
    LogRequest {
        request: Some(LogOp::Put(PutRequest {
            key: key.into_bytes(),
            value,
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_reads_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::start(dir.path(), NodeConfig::default()).unwrap());
    let done = Arc::new(AtomicBool::new(false));

    let mut writers = Vec::new();
    for w in 0..8 {
        let node = Arc::clone(&node);
        writers.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..300 {
                let r = node
                    .propose(put(format!("k{}", (w * 7 + i) % 50), vec![w as u8; 32]))
                    .await
                    .unwrap();
                let WriteResponse::Put(p) = r else { panic!("{r:?}") };
                revs.push(p.header.unwrap().revision);
            }
            revs
        }));
    }
    let mut readers = Vec::new();
    for seed in 0..4u64 {
        let (node, done) = (Arc::clone(&node), Arc::clone(&done));
        readers.push(tokio::spawn(async move {
            let mut x = seed + 1;
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                let cur = node.state().current_revision();
                let rev = (x % cur as u64) as i64;
                let req = RangeRequest {
                    key: vec![0],
                    range_end: vec![0],
                    revision: rev,
                    ..Default::default()
                };
                match node.state().range(&req) {
                    Ok(r) => assert!(r.kvs.iter().all(|kv| rev == 0 || kv.mod_revision <= rev)),
                    // Racing a compaction is fine; anything else is a bug.
                    Err(EtcdError::Compacted) => {}
                    Err(e) => panic!("read at {rev} of {cur}: {e}"),
                }
                reads += 1;
                tokio::task::yield_now().await;
            }
            reads
        }));
    }
    let compactor = {
        let (node, done) = (Arc::clone(&node), Arc::clone(&done));
        tokio::spawn(async move {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                let target = node.state().current_revision() - 20;
                let req = LogRequest {
                    request: Some(LogOp::Compaction(CompactionRequest {
                        revision: target,
                        physical: true,
                    })),
                    ..Default::default()
                };
                match node.propose(req).await {
                    Ok(_) => n += 1,
                    Err(EtcdError::Compacted) | Err(EtcdError::FutureRev) => {}
                    Err(e) => panic!("compaction: {e}"),
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            n
        })
    };

    let mut all_revs = Vec::new();
    for w in writers {
        all_revs.extend(w.await.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    let reads: usize = futures_sum(readers).await;
    let compactions = compactor.await.unwrap();
    assert!(reads > 0 && compactions > 0, "reads {reads}, compactions {compactions}");

    all_revs.sort_unstable();
    let n = all_revs.len();
    all_revs.dedup();
    assert_eq!(all_revs.len(), n, "every put got its own revision");
    assert_eq!(*all_revs.last().unwrap(), 1 + n as i64, "revisions are dense");

    let before = node
        .state()
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    node.stop().await;
    drop(node);

    let node = Node::start(dir.path(), NodeConfig::default()).unwrap();
    let after = node
        .state()
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(after.kvs, before.kvs);
    assert_eq!(after.header.unwrap().revision, before.header.unwrap().revision);
    node.stop().await;
}

async fn futures_sum(handles: Vec<tokio::task::JoinHandle<usize>>) -> usize {
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    total
}

/// A range holds the state machine's lock only while it reads the key
/// index: with its plan taken, writes apply (they would wait for the lock
/// otherwise), and the values it then reads are still those of its own
/// revision, from the view opened with the plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_reads_its_values_without_holding_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), NodeConfig::default()).unwrap();
    for i in 0..100 {
        node.propose(put(format!("r{i:03}"), b"old".to_vec())).await.unwrap();
    }
    let req = RangeRequest {
        key: b"r".to_vec(),
        range_end: b"s".to_vec(),
        ..Default::default()
    };
    let (plan, view) = node.state().range_plan(&req).unwrap();
    assert_eq!(plan.len(), 100);
    // Writes go through while the plan and its view are held.
    let written = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        for i in 0..100 {
            node.propose(put(format!("r{i:03}"), b"new".to_vec())).await.unwrap();
        }
    })
    .await;
    assert!(written.is_ok(), "writes waited for a range in progress");
    let old = plan.fetch(&view, &req).unwrap();
    assert_eq!(old.kvs.len(), 100);
    assert!(
        old.kvs.iter().all(|kv| kv.value == b"old"),
        "the range saw a later write"
    );
    let now = node.state().range(&req).unwrap();
    assert!(now.kvs.iter().all(|kv| kv.value == b"new"));
    assert_eq!(now.header.unwrap().revision, old.header.unwrap().revision + 100);
}
