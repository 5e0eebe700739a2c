//! Replication: clusters of 3 real `concord` processes on loopback.
//! Writes through any member, reads from any; the leader killed under load
//! loses no acknowledged write; a restarted member catches up (from a
//! snapshot once the log is compacted); a member cut off from the others
//! can neither commit nor serve linearizable reads, and catches up when
//! the link returns.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{etcdctl, ok};
use concord_core::client::{Client, ClientOptions, GetOptions, PutOptions};

async fn client(endpoints: &[String], timeout: Duration) -> Client {
    let opts = ClientOptions::new(endpoints.iter().cloned())
        .timeout(timeout)
        .attempt_timeout(Duration::from_millis(800));
    Client::connect(opts).await.unwrap()
}

/// Every key and value under `prefix` on one member (serializable: its own state).
async fn local_view(endpoint: &str, prefix: &str) -> BTreeMap<String, String> {
    let c = client(&[endpoint.to_string()], Duration::from_secs(5)).await;
    let r = c.get(prefix, GetOptions::new().prefix().serializable()).await.unwrap();
    r.kvs
        .into_iter()
        .map(|kv| (String::from_utf8(kv.key).unwrap(), String::from_utf8(kv.value).unwrap()))
        .collect()
}

/// Waits until every member but `down` has compacted its raft log, so a
/// member that missed those entries can only catch up from a snapshot.
fn wait_compacted(cluster: &Cluster, down: usize) {
    for (i, m) in cluster.members.iter().enumerate() {
        if i != down {
            m.wait_log("raft log compacted", Duration::from_secs(20));
        }
    }
}

/// Waits until every listed member holds exactly `expected` under `prefix`.
async fn wait_converged(endpoints: &[String], prefix: &str, expected: &BTreeMap<String, String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for ep in endpoints {
        loop {
            let view = local_view(ep, prefix).await;
            if &view == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{ep} did not converge: {} keys, expected {}",
                view.len(),
                expected.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_anywhere_reads_anywhere() {
    let cluster = Cluster::start(3, &[]);
    let eps = cluster.endpoints();
    for (i, ep) in eps.iter().enumerate() {
        let c = client(std::slice::from_ref(ep), Duration::from_secs(5)).await;
        c.put(format!("k/{i}"), format!("v{i}"), PutOptions::new())
            .await
            .unwrap();
        // Linearizable reads on every member see the write at once.
        for other in &eps {
            let o = client(std::slice::from_ref(other), Duration::from_secs(5)).await;
            let r = o.get(format!("k/{i}"), GetOptions::new()).await.unwrap();
            assert_eq!(
                r.kvs[0].value,
                format!("v{i}").as_bytes(),
                "read on {other} after a write on {ep}"
            );
        }
    }
    // Revisions agree.
    let revs: Vec<i64> = futures_revs(&eps).await;
    assert!(
        revs.windows(2).all(|w| w[0] == w[1]),
        "{revs:?}\n{}",
        cluster
            .members
            .iter()
            .map(|m| m.log_text())
            .collect::<Vec<_>>()
            .join("\n")
    );

    // etcdctl sees one cluster: 3 members by name, one leader, one term.
    // (Each member publishes its name and client URLs through the log once
    // it runs: poll until all three have.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let list = loop {
        let list = ok(etcdctl(&eps[1], &["member", "list"]));
        if cluster.members.iter().all(|m| list.contains(&m.endpoint)) || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for m in &cluster.members {
        assert!(
            list.contains(&format!(", {}, ", m.name)) && list.contains(&m.endpoint),
            "{list}"
        );
    }
    let status = ok(etcdctl(&eps.join(","), &["endpoint", "status", "-w", "json"]));
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let leaders: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Status"]["leader"].as_u64().unwrap())
        .collect();
    assert!(leaders.iter().all(|l| *l == leaders[0] && *l != 0), "{status}");
    let cluster_ids: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Status"]["header"]["cluster_id"].as_u64().unwrap())
        .collect();
    assert!(cluster_ids.iter().all(|c| *c == cluster_ids[0]), "{status}");
    // --cluster dials the member list's client URLs (grpc-go then sends the
    // whole URL as :authority, which the server must tolerate).
    let table = ok(etcdctl(&eps[0], &["endpoint", "status", "--cluster", "-w", "table"]));
    for m in &cluster.members {
        assert!(table.contains(&format!("http://{}", m.endpoint)), "{table}");
    }
    let out = etcdctl(&eps[0], &["endpoint", "health", "--cluster"]);
    let health = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{health}");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    assert_eq!(table.matches(" true |").count(), 1, "one leader:\n{table}");
}

async fn futures_revs(eps: &[String]) -> Vec<i64> {
    let mut out = Vec::new();
    for ep in eps {
        let c = client(std::slice::from_ref(ep), Duration::from_secs(5)).await;
        out.push(
            c.get("k/", GetOptions::new().prefix())
                .await
                .unwrap()
                .header
                .unwrap()
                .revision,
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_killed_under_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3, &[]);
    let eps = cluster.endpoints();
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (acked, stop, failures, eps) = (
            Arc::clone(&acked),
            Arc::clone(&stop),
            Arc::clone(&failures),
            eps.clone(),
        );
        writers.push(tokio::spawn(async move {
            let c = client(&eps, Duration::from_secs(10)).await;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (k, v) = (format!("load/{w}/{i:05}"), format!("{i}"));
                match c.put(k.clone(), v.clone(), PutOptions::new()).await {
                    Ok(_) => {
                        acked.lock().unwrap().insert(k, v);
                    }
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old = cluster.wait_leader(Duration::from_secs(5));
    let before = acked.lock().unwrap().len();
    let killed_at = Instant::now();
    cluster.members[old].kill9();
    let new = cluster.wait_leader(Duration::from_secs(10));
    let elected_in = killed_at.elapsed();
    assert_ne!(new, old);
    // Writes forwarded to the dead leader wait out the request timeout
    // (7 s, as etcd's 5 s + 2 elections) before their writers go on.
    tokio::time::sleep(Duration::from_secs(9)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > before,
        "writes went on after the kill ({before} -> {})",
        acked.len()
    );

    cluster.members[old].start();
    cluster.wait_healthy(Duration::from_secs(30));
    // Every acknowledged write is on every member; nothing else is (a
    // failed write may have been applied; those are allowed extras).
    let deadline = Instant::now() + Duration::from_secs(30);
    for ep in &eps {
        loop {
            let view = local_view(ep, "load/").await;
            let missing = acked.iter().filter(|(k, v)| view.get(*k) != Some(v)).count();
            if missing == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{ep} misses {missing} acknowledged writes");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!(
        "leader killed: new leader in {elected_in:?}; {} writes acknowledged, {} failed (unacknowledged)",
        acked.len(),
        failures.load(Ordering::Relaxed)
    );
    assert!(elected_in < Duration::from_secs(5), "election took {elected_in:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restarted_member_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::start(3, &["--snapshot-count", "20"]);
    let eps = cluster.endpoints();
    let lagging = (cluster.wait_leader(Duration::from_secs(5)) + 1) % 3;
    cluster.members[lagging].kill9();
    let live: Vec<String> = eps
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != lagging)
        .map(|(_, e)| e.clone())
        .collect();
    let c = client(&live, Duration::from_secs(10)).await;
    let mut expected = BTreeMap::new();
    for i in 0..300 {
        let (k, v) = (format!("snap/{i:04}"), format!("v{i}"));
        c.put(k.clone(), v.clone(), PutOptions::new()).await.unwrap();
        expected.insert(k, v);
    }
    // The others save their state and compact the log it missed.
    wait_compacted(&cluster, lagging);
    cluster.members[lagging].start();
    cluster.wait_healthy(Duration::from_secs(30));
    wait_converged(&eps, "snap/", &expected).await;
    let log = cluster.members[lagging].log_text();
    assert!(
        log.contains("applying a snapshot from the leader"),
        "caught up from a snapshot:\n{log}"
    );
    // And it keeps up afterwards, from the log.
    c.put("snap/after", "x", PutOptions::new()).await.unwrap();
    expected.insert("snap/after".into(), "x".into());
    wait_converged(&eps, "snap/", &expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn member_cut_off_cannot_commit_or_read_linearizably() {
    let cluster = Cluster::start(3, &["--pre-vote"]);
    let eps = cluster.endpoints();
    let leader = cluster.wait_leader(Duration::from_secs(5));
    // Cut off the leader itself: the harder case.
    let cut = leader;
    cluster.members[cut].relay.cut();
    let isolated = client(&[eps[cut].clone()], Duration::from_secs(3)).await;
    let t = Instant::now();
    let e = isolated.put("lost/x", "1", PutOptions::new()).await.unwrap_err();
    eprintln!("write on the cut-off member: {e} after {:?}", t.elapsed());
    let e = isolated.get("lost/x", GetOptions::new()).await.unwrap_err();
    eprintln!("linearizable read on the cut-off member: {e}");
    // Serializable reads still answer from its own (stale) state.
    isolated.get("lost/x", GetOptions::new().serializable()).await.unwrap();

    // The other two elect a leader and go on.
    let others: Vec<String> = eps
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != cut)
        .map(|(_, e)| e.clone())
        .collect();
    let c = client(&others, Duration::from_secs(10)).await;
    let mut expected = BTreeMap::new();
    for i in 0..20 {
        c.put(format!("iso/{i:02}"), "v", PutOptions::new()).await.unwrap();
        expected.insert(format!("iso/{i:02}"), "v".to_string());
    }
    assert!(
        local_view(&eps[cut], "iso/").await.is_empty(),
        "nothing reached the cut-off member"
    );

    cluster.members[cut].relay.heal();
    wait_converged(&eps, "iso/", &expected).await;
    let back = client(&[eps[cut].clone()], Duration::from_secs(10)).await;
    assert_eq!(back.get("iso/", GetOptions::new().prefix()).await.unwrap().count, 20);
    back.put("iso/back", "1", PutOptions::new()).await.unwrap();
}

/// A tiny deterministic random source (no extra crate needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn histories_stay_linearizable_under_kills_and_cuts() {
    use concord_checker::{check, Kind, Op, Outcome};
    use concord_core::api::error::EtcdError;
    use concord_core::client::{Compare, Error, Op as TxnOp, Txn};

    let mut cluster = Cluster::start(3, &["--pre-vote"]);
    let eps = cluster.endpoints();
    let t0 = Instant::now();
    let history: Arc<Mutex<Vec<Op>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for id in 0..5u64 {
        let (history, stop) = (Arc::clone(&history), Arc::clone(&stop));
        let mut order = eps.clone();
        order.rotate_left(id as usize % 3);
        clients.push(tokio::spawn(async move {
            let c = client(&order, Duration::from_secs(10)).await;
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1));
            let mut seq = 0;
            let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
            while !stop.load(Ordering::Relaxed) {
                let key = ["a", "b", "c"][rng.below(3) as usize].to_string();
                seq += 1;
                let value = format!("c{id}-{seq}");
                let call = t0.elapsed().as_nanos();
                // Only "no leader" proves a write was never proposed; any
                // other failure may or may not have taken effect.
                let unknown = |e: &Error| !matches!(e, Error::Etcd(EtcdError::NoLeader));
                let (kind, outcome) = match rng.below(100) {
                    0..=39 => match c.get(key.clone(), GetOptions::new()).await {
                        Ok(r) => {
                            let v = r.kvs.first().map(|kv| String::from_utf8(kv.value.clone()).unwrap());
                            seen.insert(key.clone(), v.clone());
                            (Kind::Get, Some(Outcome::Value(v)))
                        }
                        Err(_) => (Kind::Get, None),
                    },
                    40..=74 => match c.put(key.clone(), value.clone(), PutOptions::new()).await {
                        Ok(_) => (Kind::Put(value), Some(Outcome::Ok)),
                        Err(e) if unknown(&e) => (Kind::Put(value), Some(Outcome::Unknown)),
                        Err(_) => (Kind::Put(value), None),
                    },
                    _ => {
                        let expected = seen.get(&key).cloned().flatten();
                        let cmp = match &expected {
                            Some(v) => Compare::value(key.clone()).eq(v.clone()),
                            None => Compare::version(key.clone()).eq(0),
                        };
                        let txn = Txn::new().when([cmp]).and_then([TxnOp::put(
                            key.clone(),
                            value.clone(),
                            PutOptions::new(),
                        )]);
                        let kind = Kind::Cas {
                            expected,
                            new: value.clone(),
                        };
                        match c.txn(txn).await {
                            Ok(r) => (kind, Some(Outcome::Swapped(r.succeeded))),
                            Err(e) if unknown(&e) => (kind, Some(Outcome::Unknown)),
                            Err(_) => (kind, None),
                        }
                    }
                };
                let Some(outcome) = outcome else { continue };
                let ret = (outcome != Outcome::Unknown).then(|| t0.elapsed().as_nanos());
                history.lock().unwrap().push(Op {
                    key,
                    kind,
                    call,
                    ret,
                    outcome,
                });
            }
        }));
    }

    // Faults: kill -9 a member and bring it back; cut a member off and heal.
    let mut rng = Rng(42);
    let mut faults = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let k = rng.below(3) as usize;
        cluster.members[k].kill9();
        faults.push(format!("kill -9 {}", cluster.members[k].name));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cluster.members[k].start();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let c = rng.below(3) as usize;
        cluster.members[c].relay.cut();
        faults.push(format!("cut {}", cluster.members[c].name));
        tokio::time::sleep(Duration::from_millis(2000)).await;
        cluster.members[c].relay.heal();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let history = history.lock().unwrap().clone();
    let unknown = history.iter().filter(|o| o.outcome == Outcome::Unknown).count();
    let start = Instant::now();
    let result = check(&history);
    eprintln!(
        "linearizability: {} operations on {} keys ({} with unknown outcome), faults: {}; checked in {:?}",
        history.len(),
        3,
        unknown,
        faults.join(", "),
        start.elapsed()
    );
    if let Err(v) = result {
        panic!("{v}");
    }
    assert!(
        history.len() > 500,
        "enough operations to mean something: {}",
        history.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn members_join_as_learners_get_promoted_and_leave_under_load() {
    let mut cluster = Cluster::start(3, &[]);
    let eps = cluster.endpoints();
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, eps) = (Arc::clone(&acked), Arc::clone(&stop), eps.clone());
        tokio::spawn(async move {
            let c = client(&eps[1..], Duration::from_secs(10)).await;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let k = format!("m/{i:05}");
                if c.put(k.clone(), "v", PutOptions::new()).await.is_ok() {
                    acked.lock().unwrap().insert(k, "v".to_string());
                }
                i += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Add a learner; it joins from a snapshot and catches up.
    let (new, id) = add_learner(&mut cluster, &eps[0], "m4");
    let list = ok(etcdctl(&eps[0], &["member", "list"]));
    assert!(
        list.contains(&format!("{id}, unstarted")) || list.contains(&format!("{id}, started, m4")),
        "{list}"
    );
    assert!(list.contains(", true"), "a learner: {list}");
    // Promote once it has caught up (the leader refuses before).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = etcdctl(&eps[0], &["member", "promote", &id]);
        if out.status.success() {
            break;
        }
        let e = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(e.contains("in sync with leader"), "{e}");
        assert!(Instant::now() < deadline, "learner never caught up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = ok(etcdctl(&eps[0], &["member", "list"]));
    assert!(!list.contains(", true"), "no learner left: {list}");
    assert_eq!(list.lines().count(), 4, "{list}");

    // Move m4 to another peer address (a second relay to it), then close
    // the old one: the others follow MemberUpdate at once.
    let moved = common::cluster::Relay::start(cluster.members[new].peer_port);
    let moved_url = format!("http://127.0.0.1:{}", moved.port);
    ok(etcdctl(
        &eps[0],
        &["member", "update", &id, &format!("--peer-urls={moved_url}")],
    ));
    cluster.members[new].relay.cut();
    let before = acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = local_view(&cluster.members[new].endpoint, "m/").await;
        if view.len() > before {
            break;
        }
        assert!(Instant::now() < deadline, "m4 gets nothing after moving");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok(etcdctl(&eps[0], &["member", "list"])).contains(&moved_url));

    // Remove an original member (not the one we send writes through): it
    // stops, the other three go on.
    let victim_id = member_id_hex(&eps[0]);
    // The strict reconfiguration check (on by default, as in etcd) wants
    // the others connected for 5 s first: a young cluster is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = etcdctl(&eps[1], &["member", "remove", &victim_id]);
        if out.status.success() {
            break;
        }
        let e = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(e.contains("etcdserver: unhealthy cluster"), "{e}");
        assert!(Instant::now() < deadline, "the member was never removed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        cluster.members[0].wait_exit(Duration::from_secs(10)),
        "a removed member stops"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "{}", acked.len());
    let remaining: Vec<String> = cluster.members[1..].iter().map(|m| m.endpoint.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for ep in &remaining {
        loop {
            let view = local_view(ep, "m/").await;
            let missing = acked.keys().filter(|k| !view.contains_key(*k)).count();
            if missing == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{ep} misses {missing} acknowledged writes");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let list = ok(etcdctl(&remaining[0], &["member", "list"]));
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(list.contains(", m4,"), "{list}");

    // The added member restarts from its data: it talks to the others as
    // the member (and cluster) it was made, not what its flags suggest.
    cluster.members[new].terminate();
    cluster.members[new].start();
    // If m4 led, the others elect a leader first: retry as a client would.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = etcdctl(&remaining[0], &["put", "m/after-restart", "v"]);
        if out.status.success() {
            break;
        }
        let e = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(Instant::now() < deadline, "no write after m4 restarted: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !local_view(&cluster.members[new].endpoint, "m/after-restart")
        .await
        .contains_key("m/after-restart")
    {
        assert!(Instant::now() < deadline, "the restarted m4 gets nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for m in &cluster.members[1..] {
        assert!(!m.log_text().contains("from another cluster"), "{}", m.log_text());
    }
    drop(moved);
}

#[tokio::test(flavor = "multi_thread")]
async fn leadership_moves_and_leases_follow_the_leader() {
    use concord_core::client::{LeaseState, WatchOptions};
    let cluster = Cluster::start(3, &[]);
    let eps = cluster.endpoints();
    let leader = cluster.wait_leader(Duration::from_secs(5));
    let f = (leader + 1) % 3;
    let on_f = client(std::slice::from_ref(&eps[f]), Duration::from_secs(10)).await;
    let mut watcher = on_f.watch("w/", WatchOptions::new().prefix()).await.unwrap();

    // A lease granted and kept alive through a follower.
    let lease = on_f.lease_grant(3, 0).await.unwrap().id;
    on_f.put("w/lease", "x", PutOptions::new().lease(lease)).await.unwrap();
    let keeper = on_f.lease_keep_alive(lease).await.unwrap();

    // Hand leadership to that follower (etcdctl finds the leader itself).
    let f_id = member_id_hex(&eps[f]);
    let out = ok(etcdctl(&eps.join(","), &["move-leader", &f_id]));
    assert!(out.contains("Leadership transferred"), "{out}");
    assert_eq!(cluster.wait_leader(Duration::from_secs(5)), f);

    // Longer than the TTL: the keep-alives (first forwarded, now local) hold it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(matches!(keeper.state(), LeaseState::Alive { .. }));
    let other = client(std::slice::from_ref(&eps[leader]), Duration::from_secs(10)).await;
    assert!(other.lease_time_to_live(lease, false).await.unwrap().ttl > 0);
    // Without them, the leader expires it: the key goes, on every member.
    drop(keeper);
    let deadline = Instant::now() + Duration::from_secs(10);
    while other.get("w/lease", GetOptions::new()).await.unwrap().count != 0 {
        assert!(Instant::now() < deadline, "the lease did not expire");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The follower's watcher saw the put and the expiry's delete, in order.
    let mut kinds = Vec::new();
    let mut term = 0;
    while kinds.len() < 2 {
        let r = tokio::time::timeout(Duration::from_secs(10), watcher.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        kinds.extend(r.events.iter().map(|e| e.r#type));
        term = r.header.unwrap().raft_term;
    }
    assert_eq!(kinds, vec![0, 1], "put then delete");
    // Watch headers carry the term now in force (the move started a new one).
    let status = on_f.status().await.unwrap();
    assert_eq!(term, status.raft_term);
    assert!(term >= 2, "{term}");
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_state_reaches_a_member_through_a_snapshot() {
    let mut cluster = Cluster::start(3, &["--snapshot-count", "20", "--bcrypt-cost", "4"]);
    let eps = cluster.endpoints();
    let lagging = (cluster.wait_leader(Duration::from_secs(5)) + 1) % 3;
    cluster.members[lagging].kill9();
    let live = if lagging == 0 { &eps[1] } else { &eps[0] };
    // Users and roles are made while the member is down, then enough
    // writes that the log it missed is compacted away.
    for a in common::ALICE_SETUP {
        ok(etcdctl(live, a));
    }
    for i in 0..100 {
        ok(etcdctl(
            live,
            &["--user", "root:rootpw", "put", &format!("app/{i:03}"), "v"],
        ));
    }
    wait_compacted(&cluster, lagging);
    cluster.members[lagging].start();
    cluster.wait_healthy(Duration::from_secs(30));
    // Healthy comes with the first heartbeat; the snapshot follows it.
    cluster.members[lagging].wait_log("applying a snapshot from the leader", Duration::from_secs(20));
    // On the member that caught up: alice's password and permissions hold.
    let ep = &eps[lagging];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = etcdctl(ep, &["--user", "alice:alicepw", "put", "app/x", "1"]);
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", String::from_utf8_lossy(&out.stderr));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let e = common::err(etcdctl(ep, &["--user", "alice:alicepw", "put", "other", "1"]));
    assert!(e.contains("permission denied"), "{e}");
    let e = common::err(etcdctl(ep, &["--user", "alice:wrong", "get", "app/x"]));
    assert!(e.contains("authentication failed"), "{e}");
}

/// A member's ID in hex, as etcdctl takes it.
fn member_id_hex(endpoint: &str) -> String {
    let status = ok(etcdctl(endpoint, &["endpoint", "status", "-w", "json"]));
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    format!("{:x}", v[0]["Status"]["header"]["member_id"].as_u64().unwrap())
}

#[test]
fn a_member_that_missed_its_removal_is_told_and_stops() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let victim = (leader + 1) % 3;
    let eps = cluster.endpoints();
    let victim_id = member_id_hex(&eps[victim]);
    // Nothing reaches the victim any more: it cannot learn of its removal
    // from the log.
    cluster.members[victim].relay.cut();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = etcdctl(&eps[leader], &["member", "remove", &victim_id]);
        if out.status.success() {
            break;
        }
        let e = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(e.contains("unhealthy cluster"), "{e}");
        assert!(Instant::now() < deadline, "never removed: {e}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Its own probes of the others are answered 410: it stops.
    assert!(
        cluster.members[victim].wait_exit(Duration::from_secs(15)),
        "the removed member still runs:\n{}",
        cluster.members[victim].log_text()
    );
    let log = cluster.members[victim].log_text();
    assert!(log.contains("permanently removed from the cluster"), "{log}");
    let list = ok(etcdctl(&eps[leader], &["member", "list"]));
    assert_eq!(list.lines().count(), 2, "{list}");
    // The two left go on.
    ok(etcdctl(&eps[leader], &["put", "after", "removal"]));
}

/// A member's ID (decimal in the status JSON) and raft term.
fn id_and_term(endpoint: &str) -> (u64, u64) {
    let (_, body) = common::http(endpoint, "POST", "/v3/maintenance/status", "{}").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["header"]["member_id"].as_str().unwrap().parse().unwrap();
    let term = v["raftTerm"]
        .as_str()
        .or(v["raft_term"].as_str())
        .unwrap_or("0")
        .parse()
        .unwrap();
    (id, term)
}

/// Forged raft messages on the peer port: a heartbeat claiming a commit
/// index far beyond the log (raft-rs panics on it), one from an ID that
/// is no member, one addressed to someone else. The member drops them
/// and says so; the cluster goes on.
#[test]
fn forged_raft_messages_on_the_peer_port_are_dropped() {
    use protobuf::Message as _;
    use raft::prelude::{Message, MessageType};
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let target = (leader + 1) % 3;
    let eps = cluster.endpoints();
    let (leader_id, term) = id_and_term(&eps[leader]);
    let (target_id, _) = id_and_term(&eps[target]);
    let forge = |from: u64, to: u64, commit: u64| {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgHeartbeat);
        m.from = from;
        m.to = to;
        m.term = term + 100;
        m.commit = commit;
        let bytes = m.write_to_bytes().unwrap();
        let mut frame = (bytes.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&bytes);
        let peer = format!("127.0.0.1:{}", cluster.members[target].peer_port);
        let mut s = std::net::TcpStream::connect(&peer).unwrap();
        use std::io::{Read, Write};
        write!(
            s,
            "POST /raft/message HTTP/1.1\r\nHost: {peer}\r\nX-Server-From: {from:x}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            frame.len()
        )
        .unwrap();
        s.write_all(&frame).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
    };
    forge(leader_id, target_id, 1_000_000_000);
    forge(0xdead_beef, target_id, 1);
    forge(leader_id, leader_id ^ 1, 1);
    cluster.members[target].wait_log("a commit index beyond this member's log", Duration::from_secs(5));
    cluster.members[target].wait_log("the sender is not a member", Duration::from_secs(5));
    cluster.members[target].wait_log("addressed to another member", Duration::from_secs(5));
    // A request stamped with another cluster's ID is refused, as etcd
    // refuses it.
    let peer = format!("127.0.0.1:{}", cluster.members[target].peer_port);
    let other = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&peer).unwrap();
        write!(
            s,
            "POST /raft/message HTTP/1.1\r\nHost: {peer}\r\nX-Etcd-Cluster-ID: deadbeef\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(other.starts_with("HTTP/1.1 412"), "{other}");
    assert!(other.ends_with("cluster ID mismatch"), "{other}");
    // Joining as a member that has started (its peer URL is public, from
    // the member list) gets no data.
    let list = ok(etcdctl(&eps[leader], &["member", "list", "-w", "json"]));
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let url = v["members"][0]["peerURLs"][0].as_str().unwrap().to_string();
    let (status, body) = common::http(&peer, "POST", "/raft/join", &format!("[\"{url}\"]")).unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("already started"), "{body}");
    // What members ask of each other on a client's behalf is theirs only:
    // without a member's X-Server-From, keep-alives, lease lookups and
    // HashKV get 403 (they carry no client credentials).
    let leader_peer = format!("127.0.0.1:{}", cluster.members[leader].peer_port);
    for (path, body) in [
        ("/raft/keepalive", r#"{"ID":"1"}"#),
        ("/raft/timetolive", r#"{"ID":"1","keys":true}"#),
        ("/members/hashkv", r#"{"revision":"0"}"#),
    ] {
        let (status, text) = common::http(&leader_peer, "POST", path, body).unwrap();
        assert_eq!(status, 403, "{path}: {text}");
    }
    // Still there, still following the same leader, still taking writes.
    assert!(cluster.members[target].healthy());
    assert_eq!(cluster.leader(), Some(leader));
    ok(etcdctl(&eps[target], &["put", "after", "forgery"]));
    assert_eq!(id_and_term(&eps[target]).1, term, "the forged term was not taken");
}

/// A member that stops in the middle of installing a leader's snapshot
/// (its data stored, raft's log not yet told) starts again: the install is
/// completed from what was stored, and the member catches up.
#[test]
fn a_crash_during_snapshot_install_leaves_a_member_that_starts() {
    let mut cluster = Cluster::start(3, &["--snapshot-count", "20"]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let lagging = (leader + 1) % 3;
    let eps = cluster.endpoints();
    cluster.members[lagging].kill9();
    let writer = (leader + 2) % 3;
    for i in 0..60 {
        // The two left are a quorum; a write may meet an election.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !etcdctl(&eps[writer], &["put", &format!("k{i:02}"), &i.to_string()])
            .status
            .success()
        {
            assert!(std::time::Instant::now() < deadline, "no write with two members up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let m = &mut cluster.members[lagging];
    m.envs.push(("CONCORD_CRASH_AT".into(), "snapshot-installed".into()));
    m.start();
    assert!(
        m.wait_exit(Duration::from_secs(30)),
        "the member did not reach the install"
    );
    assert!(m.log_text().contains("stopping here on purpose"), "{}", m.log_text());
    m.envs.clear();
    m.start();
    m.wait_log(
        "completing a snapshot install that a stop interrupted",
        Duration::from_secs(20),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = etcdctl(&eps[lagging], &["get", "k59", "--consistency=s", "--print-value-only"]);
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "59" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the member did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // And it takes part again: a write through it commits (once it has
    // heard from the leader).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !etcdctl(&eps[lagging], &["put", "after", "crash"]).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            cluster.members[lagging].log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Adds a learner named `name` with `etcdctl member add` through
/// `endpoint` and starts it; its index in the cluster and its ID (hex).
fn add_learner(cluster: &mut Cluster, endpoint: &str, name: &str) -> (usize, String) {
    let new = cluster.prepare_member(name, &[]);
    let out = ok(etcdctl(
        endpoint,
        &[
            "member",
            "add",
            name,
            "--learner",
            &format!("--peer-urls={}", cluster.peer_url(new)),
        ],
    ));
    assert!(out.contains("added to cluster"), "{out}");
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    cluster.members[new].start();
    (new, id)
}

/// The size of the stores the snapshot tests build, in MiB
/// (`CONCORD_TEST_SNAPSHOT_MIB`, default 100).
fn snapshot_test_mib() -> usize {
    std::env::var("CONCORD_TEST_SNAPSHOT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// Puts `mib` values of 1 MiB (keys `big0000`…) through `endpoint`.
fn fill_mib(endpoint: &str, mib: usize) {
    use base64::Engine;
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'v'; 1 << 20]);
    for i in 0..mib {
        let key = base64::engine::general_purpose::STANDARD.encode(format!("big{i:04}"));
        let body = format!(r#"{{"key":"{key}","value":"{value}"}}"#);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !matches!(common::http(endpoint, "POST", "/v3/kv/put", &body), Ok((200, _))) {
            assert!(std::time::Instant::now() < deadline, "no write through {endpoint}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Waits until `endpoint` serves the last key [`fill_mib`] wrote.
fn wait_for_last(endpoint: &str, mib: usize, why: impl Fn() -> String) {
    use base64::Engine;
    let last = base64::engine::general_purpose::STANDARD.encode(format!("big{:04}", mib - 1));
    let probe = format!(r#"{{"key":"{last}","serializable":true,"keys_only":true}}"#);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok((200, body)) = common::http(endpoint, "POST", "/v3/kv/range", &probe) {
            if body.contains(&last) {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no catch-up:\n{}", why());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A member added to a cluster holding a large store starts from it
/// without holding it in memory: the member it asks streams the state
/// after the `JoinInfo`, and it is spooled to disk and installed record by
/// record.
#[test]
fn a_new_member_joins_a_large_store_without_holding_it_in_memory() {
    let mib = snapshot_test_mib();
    let mut cluster = Cluster::start(3, &[]);
    let eps = cluster.endpoints();
    fill_mib(&eps[0], mib);
    let (new, _) = add_learner(&mut cluster, &eps[0], "m4");
    let endpoint = cluster.members[new].endpoint.clone();
    wait_for_last(&endpoint, mib, || cluster.members[new].log_text());
    assert!(cluster.members[new]
        .log_text()
        .contains("joined a running cluster from a member's snapshot"));
    let snapshot_kib = (mib as u64) << 10;
    let peak = cluster.members[new].peak_rss_kib().unwrap_or(0);
    eprintln!("store {mib} MiB: the new member peaked at {peak} KiB");
    assert!(
        peak < snapshot_kib * 3 / 4,
        "the new member peaked at {peak} KiB for a {snapshot_kib} KiB store"
    );
}

/// A member that fell behind a store larger than the peer stream's 64 MiB
/// frame limit still catches up by snapshot, and neither side holds the
/// snapshot in memory: its state is streamed from the leader's database to
/// the member's disk, then installed record by record. About 100 MiB here
/// (`CONCORD_TEST_SNAPSHOT_MIB` sets another size, e.g. 300).
#[test]
fn a_member_catches_up_from_a_snapshot_larger_than_64_mib() {
    let mib = snapshot_test_mib();
    let mut cluster = Cluster::start(3, &["--snapshot-count", "20"]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let lagging = (leader + 1) % 3;
    let writer = (leader + 2) % 3;
    let eps = cluster.endpoints();
    cluster.members[lagging].kill9();
    fill_mib(&eps[writer], mib);
    cluster.members[lagging].start();
    wait_for_last(&eps[lagging], mib, || {
        format!(
            "{}\n--- the others:\n{}\n{}",
            cluster.members[lagging].log_text(),
            cluster.members[leader].log_text(),
            cluster.members[writer].log_text()
        )
    });
    assert!(cluster.members[lagging]
        .log_text()
        .contains("applying a snapshot from the leader"));
    // Before streaming, the member held the whole message, then decoded
    // it (over twice the snapshot), and the leader built it in memory.
    let snapshot_kib = (mib as u64) << 10;
    let (sender, receiver) = (
        cluster.members[leader].peak_rss_kib().unwrap_or(0),
        cluster.members[lagging].peak_rss_kib().unwrap_or(0),
    );
    eprintln!("snapshot {mib} MiB: peak RSS leader {sender} KiB, catching-up member {receiver} KiB");
    assert!(
        receiver < snapshot_kib * 3 / 4,
        "the catching-up member peaked at {receiver} KiB for a {snapshot_kib} KiB snapshot"
    );
}
