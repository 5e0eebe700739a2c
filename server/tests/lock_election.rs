//! Locks and elections: the server's Lock and Election services over gRPC
//! and the gateway (through the shared client), mixed with etcd's own
//! client-side recipes (etcdctl `lock` and `elect`), and a contention test
//! that checks mutual exclusion through the fencing revision.

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use concord_core::api::v3electionpb::LeaderRequest;
use concord_core::api::v3lockpb::{LockRequest, UnlockRequest};
use concord_core::client::{Client, ClientOptions, Compare, GetOptions, Op, PutOptions, Txn};
use concord_server::pb::v3electionpb::election_client::ElectionClient;
use concord_server::pb::v3lockpb::lock_client::LockClient;

async fn client(s: &Server) -> Client {
    Client::connect(ClientOptions::new([s.endpoint.as_str()]).timeout(Duration::from_secs(20)))
        .await
        .unwrap()
}

/// Eight clients take one lock in turn, 5 times each. Each holder writes
/// only through a transaction guarded by its fencing token; any overlap
/// would show as a failed guard or a lost increment.
#[tokio::test(flavor = "multi_thread")]
async fn contention_keeps_mutual_exclusion() {
    let s = Server::concord();
    let c = client(&s).await;
    c.put("counter", "0", PutOptions::new()).await.unwrap();
    let inside = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, inside) = (client(&s).await, Arc::clone(&inside));
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            for _ in 0..5 {
                let lease = c.lease_grant(10, 0).await.unwrap().id;
                let held = c.lock("counter-lock", lease, None).await.unwrap();
                let token = c.get(held.key.clone(), GetOptions::new()).await.unwrap().kvs[0].create_revision;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                let now = c.get("counter", GetOptions::new()).await.unwrap().kvs[0].value.clone();
                let n: i64 = String::from_utf8(now).unwrap().parse().unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                let guarded = Txn::new()
                    .when([Compare::create_revision(held.key.clone()).eq(token)])
                    .and_then([Op::put("counter", (n + 1).to_string(), PutOptions::new())]);
                assert!(
                    c.txn(guarded).await.unwrap().succeeded,
                    "the fencing token holds while locked"
                );
                inside.fetch_sub(1, Ordering::SeqCst);
                c.unlock(held.key.clone()).await.unwrap();
                // Once released, the token no longer fences.
                let late = Txn::new()
                    .when([Compare::create_revision(held.key).eq(token)])
                    .and_then([Op::put("counter", "corrupt", PutOptions::new())]);
                assert!(!c.txn(late).await.unwrap().succeeded);
                c.lease_revoke(lease).await.unwrap();
                tokens.push(token);
            }
            tokens
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let counter = c.get("counter", GetOptions::new()).await.unwrap().kvs[0].value.clone();
    assert_eq!(counter, b"40");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40, "every holding has its own fencing revision");
}

/// The Lock service and etcdctl's client-side recipe wait in one queue.
#[tokio::test(flavor = "multi_thread")]
async fn service_and_recipe_share_the_queue() {
    let s = Server::concord();
    let c = client(&s).await;
    // etcdctl (recipe) holds the lock for a while.
    let mut holder = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &s.endpoint, "lock", "shared", "--", "sleep", "1.5"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.get("shared/", GetOptions::new().prefix()).await.unwrap().count == 0 {
        assert!(Instant::now() < deadline, "etcdctl took the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = Instant::now();
    let lease = c.lease_grant(10, 0).await.unwrap().id;
    let held = c.lock("shared", lease, None).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "waited for etcdctl: {:?}",
        t.elapsed()
    );
    assert!(holder.wait().unwrap().success());
    assert_eq!(held.key, format!("shared/{lease:x}").into_bytes());
    // Now the recipe waits for the service's holder.
    let start = Instant::now();
    let waiter = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &s.endpoint, "lock", "shared", "--", "true"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.unlock(held.key).await.unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(start.elapsed() >= Duration::from_millis(800));

    // gRPC: the same service.
    let mut grpc = LockClient::connect(format!("http://{}", s.endpoint)).await.unwrap();
    let lease = c.lease_grant(10, 0).await.unwrap().id;
    let r = grpc
        .lock(LockRequest {
            name: b"g".to_vec(),
            lease,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.key, format!("g/{lease:x}").into_bytes());
    grpc.unlock(UnlockRequest { key: r.key }).await.unwrap();
    // A lease that does not exist: etcd's error.
    let e = c.lock("g", 0x1234, None).await.unwrap_err();
    assert_eq!(e.to_string(), "etcdserver: requested lease not found");
}

/// Campaign, leader, proclaim, observe and resign; a leader whose lease
/// ends gives way; etcdctl's `elect` (recipe) sees the service's leader.
#[tokio::test(flavor = "multi_thread")]
async fn election_follows_its_leaders() {
    let s = Server::concord();
    let c = client(&s).await;
    let e = c.leader("e").await.unwrap_err();
    assert_eq!(e.to_string(), "election: no leader");
    let observer = c.observe("e").unwrap();

    let l1 = c.lease_grant(3, 0).await.unwrap().id;
    let one = c.campaign("e", l1, "one", None).await.unwrap().leader.unwrap();
    assert_eq!(one.key, format!("e/{l1:x}").into_bytes());
    let seen = observer
        .next_timeout(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen.kv.unwrap().value, b"one");
    c.proclaim(&one, "uno").await.unwrap();
    let seen = observer
        .next_timeout(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen.kv.unwrap().value, b"uno");
    assert_eq!(c.leader("e").await.unwrap().kv.unwrap().value, b"uno");

    // A second candidate waits; etcdctl's observer agrees on the leader.
    let listen = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &s.endpoint, "elect", "-l", "e"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let c2 = client(&s).await;
    let l2 = c2.lease_grant(10, 0).await.unwrap().id;
    let second = tokio::spawn(async move { c2.campaign("e", l2, "two", None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second waits while the first leads");
    // The first leader's lease runs out: the second leads, observers see it.
    let t = Instant::now();
    let two = second.await.unwrap().unwrap().leader.unwrap();
    assert!(t.elapsed() < Duration::from_secs(6));
    let seen = observer
        .next_timeout(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen.kv.unwrap().value, b"two");
    let e = c.proclaim(&one, "stale").await.unwrap_err();
    assert_eq!(e.to_string(), "election: not leader");
    let mut listen = listen;
    tokio::time::sleep(Duration::from_millis(300)).await;
    listen.kill().unwrap();
    let out = String::from_utf8(listen.wait_with_output().unwrap().stdout).unwrap();
    assert!(out.contains("uno") && out.contains("two"), "{out}");

    // Resign: no leader left; gRPC Leader says so too.
    c.resign(&two).await.unwrap();
    assert_eq!(c.leader("e").await.unwrap_err().to_string(), "election: no leader");
    let mut grpc = ElectionClient::connect(format!("http://{}", s.endpoint)).await.unwrap();
    let e = grpc.leader(LeaderRequest { name: b"e".to_vec() }).await.unwrap_err();
    assert_eq!(e.message(), "election: no leader");
    observer.cancel();

    // etcdctl's recipe campaigns; the service reports it as the leader.
    let mut elect = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &s.endpoint, "elect", "e", "from-etcdctl"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(r) = c.leader("e").await {
            assert_eq!(r.kv.unwrap().value, b"from-etcdctl");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    elect.kill().unwrap();
    let _ = elect.wait();
}
