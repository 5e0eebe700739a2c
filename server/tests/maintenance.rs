//! Maintenance on real 3-member clusters with etcdctl: the space quota and
//! its NOSPACE alarm, defragmentation, HashKV across members, snapshot
//! save and restore into a fresh cluster, and the corruption checks.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{err, etcdctl, http, ok};
use concord_core::client::{Client, ClientOptions, GetOptions, PutOptions};
use concord_core::mvcc::{KvRead, KvWrite, Revision};
use concord_core::storage::Storage;

async fn client(endpoints: &[String]) -> Client {
    let opts = ClientOptions::new(endpoints.iter().cloned())
        .timeout(Duration::from_secs(20))
        .attempt_timeout(Duration::from_secs(2));
    Client::connect(opts).await.unwrap()
}

fn db_size(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("db")).unwrap().len()
}

/// `(hash, compact_revision)` of member `ep` at `rev`, through the gateway.
fn hash_kv(ep: &str, rev: i64) -> (u64, String) {
    let (code, body) = http(
        ep,
        "POST",
        "/v3/maintenance/hashkv",
        &format!(r#"{{"revision":"{rev}"}}"#),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    (
        v["hash"].as_u64().unwrap_or(0),
        v["compact_revision"].as_str().unwrap_or("0").to_string(),
    )
}

/// Every key under `prefix` on member `ep` (its own state) with value
/// and revisions.
async fn dump(ep: &str, prefix: &str, rev: i64) -> BTreeMap<Vec<u8>, (Vec<u8>, i64, i64, i64)> {
    let c = client(&[ep.to_string()]).await;
    let mut opts = GetOptions::new().prefix().serializable();
    if rev > 0 {
        opts = opts.revision(rev);
    }
    let r = c.get(prefix, opts).await.unwrap();
    r.kvs
        .into_iter()
        .map(|kv| (kv.key, (kv.value, kv.create_revision, kv.mod_revision, kv.version)))
        .collect()
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_raises_nospace_everywhere_and_defrag_with_disarm_restores_writes() {
    let cluster = Cluster::start(3, &["--quota-backend-bytes", "3000000"]);
    let eps = cluster.endpoints();
    let c = client(&eps).await;
    let value = "v".repeat(60_000);
    let mut refused = None;
    for i in 0..400 {
        match c.put(format!("big/{}", i % 8), value.as_str(), PutOptions::new()).await {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    let refused = refused.expect("the quota was never reached");
    assert!(refused.contains("database space exceeded"), "{refused}");

    // The alarm is replicated: every member refuses writes, and lists it.
    for ep in &eps {
        wait_for("NOSPACE on every member", Duration::from_secs(10), || {
            ok(etcdctl(ep, &["alarm", "list"])).contains("alarm:NOSPACE")
        });
        let e = err(etcdctl(ep, &["put", "small", "x"]));
        assert!(e.contains("etcdserver: mvcc: database space exceeded"), "{e}");
    }
    // As etcd 3.4, /health turns false while an alarm is raised.
    let (code, body) = http(&eps[0], "GET", "/health", "").unwrap();
    assert_eq!((code, body.as_str()), (503, r#"{"health":"false"}"#));
    // Unless the probe excludes it; and NOSPACE is no corruption for /readyz.
    let (code, _) = http(&eps[0], "GET", "/health?exclude=NOSPACE", "").unwrap();
    assert_eq!(code, 200);
    assert_eq!(http(&eps[0], "GET", "/readyz", "").unwrap(), (200, "ok\n".to_string()));
    // Deletes still go through; compaction and defragmentation shrink
    // every member's file; disarming then lets writes in again.
    ok(etcdctl(&eps[0], &["del", "--prefix", "big/"]));
    let status = ok(etcdctl(&eps[0], &["endpoint", "status", "-w", "json"]));
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let rev = v[0]["Status"]["header"]["revision"].as_i64().unwrap();
    ok(etcdctl(&eps[0], &["compact", &rev.to_string(), "--physical"]));
    let before: Vec<u64> = cluster.members.iter().map(|m| db_size(&m.dir)).collect();
    let out = ok(etcdctl(&eps.join(","), &["defrag"]));
    assert_eq!(out.matches("Finished defragmenting").count(), 3, "{out}");
    let after: Vec<u64> = cluster.members.iter().map(|m| db_size(&m.dir)).collect();
    eprintln!("backend sizes before defrag {before:?}, after {after:?}");
    for (b, a) in before.iter().zip(&after) {
        assert!(*a < b / 4, "defragmentation shrank {b} only to {a}");
    }
    ok(etcdctl(&eps[1], &["alarm", "disarm"]));
    for ep in &eps {
        wait_for("the alarm cleared everywhere", Duration::from_secs(10), || {
            ok(etcdctl(ep, &["alarm", "list"])).trim().is_empty()
        });
        ok(etcdctl(ep, &["put", "small", "x"]));
        assert_eq!(http(ep, "GET", "/health", "").unwrap().0, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hash_kv_agrees_after_a_restart_and_a_snapshot_catch_up() {
    let mut cluster = Cluster::start(3, &["--snapshot-count", "20"]);
    let eps = cluster.endpoints();
    let c = client(&eps[..2]).await;
    for i in 0..50 {
        c.put(format!("k/{i}"), format!("{i}"), PutOptions::new())
            .await
            .unwrap();
    }
    // Member 3 misses many writes and a compaction: it catches up from a
    // snapshot; member 2 restarts after kill -9 and replays its log.
    cluster.members[2].kill9();
    cluster.wait_leader(Duration::from_secs(10));
    for i in 0..300 {
        c.put(format!("k/{}", i % 70), format!("again {i}"), PutOptions::new())
            .await
            .unwrap();
    }
    let rev = c.get("k/0", GetOptions::new()).await.unwrap().header.unwrap().revision;
    c.compact(rev - 100, true).await.unwrap();
    cluster.members[1].kill9();
    cluster.members[1].start();
    cluster.members[2].start();
    cluster.wait_healthy(Duration::from_secs(30));
    wait_for("every member at the revision", Duration::from_secs(30), || {
        eps.iter().all(|ep| {
            let (code, body) = http(ep, "POST", "/v3/kv/range", r#"{"key":"aw==","serializable":true}"#).unwrap();
            code == 200 && body.contains(&format!("\"revision\":\"{rev}\""))
        })
    });
    let hashes: Vec<(u64, String)> = eps.iter().map(|ep| hash_kv(ep, rev)).collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    assert_ne!(hashes[0].0, 0);
    // At an earlier revision too, and different from the later one.
    let earlier: Vec<(u64, String)> = eps.iter().map(|ep| hash_kv(ep, rev - 50)).collect();
    assert!(earlier.iter().all(|h| *h == earlier[0]), "{earlier:?}");
    assert_ne!(earlier[0].0, hashes[0].0);
    // etcdctl's view of it.
    let out = ok(etcdctl(
        &eps.join(","),
        &["endpoint", "hashkv", "--rev", &rev.to_string()],
    ));
    let values: Vec<&str> = out.lines().filter_map(|l| l.split(", ").nth(1)).collect();
    assert_eq!(values.len(), 3, "{out}");
    assert!(values.iter().all(|h| *h == values[0]), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_of_a_loaded_cluster_restores_into_a_fresh_cluster() {
    let cluster = Cluster::start(3, &[]);
    let eps = cluster.endpoints();
    let c = client(&eps).await;
    for i in 0..500 {
        c.put(format!("cfg/{i:04}"), format!("initial {i}"), PutOptions::new())
            .await
            .unwrap();
    }
    let lease = c.lease_grant(600, 0).await.unwrap();
    c.put("cfg/leased", "yes", PutOptions::new().lease(lease.id))
        .await
        .unwrap();
    // Writes continue while the snapshot is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, stop) = (client(&eps).await, Arc::clone(&stop));
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                c.put(format!("cfg/{:04}", n % 500), format!("update {n}"), PutOptions::new())
                    .await
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("backup.db");
    let ep = eps[1].clone();
    let f = file.clone();
    let saved = tokio::task::spawn_blocking(move || ok(etcdctl(&ep, &["snapshot", "save", f.to_str().unwrap()])))
        .await
        .unwrap();
    assert!(saved.contains("Snapshot saved"), "{saved}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let updates = writer.await.unwrap();
    assert!(updates > 0);

    let status = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["snapshot", "status", "-w", "json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let st: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let snap_rev = st["revision"].as_i64().unwrap();
    assert!(snap_rev > 501, "{st}");

    // A cut-off copy is refused, and nothing is created.
    let bytes = std::fs::read(&file).unwrap();
    let cut = tmp.path().join("cut.db");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["snapshot", "restore"])
        .arg(&cut)
        .arg("--data-dir")
        .arg(tmp.path().join("never"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("corrupt or truncated"), "{msg}");
    assert!(!tmp.path().join("never").exists());

    // Restored into a fresh cluster: every key, value and revision as the
    // old cluster had them at the snapshot's revision.
    let restored = Cluster::start_restored(3, &file, &[]);
    let new_eps = restored.endpoints();
    let expected = dump(&eps[0], "cfg/", snap_rev).await;
    assert_eq!(expected.len(), 501);
    for ep in &new_eps {
        let got = dump(ep, "cfg/", 0).await;
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "member {ep} differs from the snapshot's state");
    }
    let nc = client(&new_eps).await;
    let r = nc.get("cfg/0000", GetOptions::new()).await.unwrap();
    assert_eq!(r.header.unwrap().revision, snap_rev);
    // The lease came along; new writes continue the revisions.
    let ttl = nc.lease_time_to_live(lease.id, false).await.unwrap();
    assert!(ttl.ttl > 0, "{ttl:?}");
    let p = nc.put("after", "restore", PutOptions::new()).await.unwrap();
    assert_eq!(p.header.unwrap().revision, snap_rev + 1);
    let hashes: Vec<(u64, String)> = new_eps.iter().map(|ep| hash_kv(ep, snap_rev)).collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    assert_eq!(
        hashes[0],
        hash_kv(&eps[0], snap_rev),
        "restored hash differs from the source's"
    );
}

/// Writes k0..k19; the revision of k5's write (the one to alter later).
async fn write_keys(c: &Client) -> i64 {
    let mut target = 0;
    for i in 0..20 {
        let r = c.put(format!("k{i}"), "original", PutOptions::new()).await.unwrap();
        if i == 5 {
            target = r.header.unwrap().revision;
        }
    }
    target
}

/// Rewrites the stored value of the change at `rev` in a stopped member's
/// backend, as a bad disk or a stray tool would.
fn alter_on_disk(dir: &Path, rev: i64) {
    let storage = Storage::open(&dir.join("db"), 1 << 20).unwrap();
    storage
        .write(|view| {
            let at = Revision::new(rev, 0);
            let mut rec = view.get(at).unwrap().expect("the change is stored");
            rec.kv.value = b"altered on disk".to_vec();
            view.put(at, &rec).unwrap();
            Ok(())
        })
        .unwrap();
    storage.checkpoint().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_with_altered_data_is_flagged_corrupt() {
    let mut cluster = Cluster::start(3, &[]);
    let eps = cluster.endpoints();
    let c = client(&eps).await;
    let target = write_keys(&c).await;
    wait_for("member 3 caught up", Duration::from_secs(10), || {
        hash_kv(&eps[2], 0) == hash_kv(&eps[0], 0)
    });
    cluster.members[2].terminate();
    alter_on_disk(&cluster.members[2].dir, target);

    // With the start-up check the member sees it differs, raises CORRUPT
    // for itself and refuses to serve.
    cluster.members[2].start_with_flags(&["--experimental-initial-corrupt-check"]);
    assert!(
        cluster.members[2].wait_exit(Duration::from_secs(30)),
        "the altered member kept running"
    );
    let log = cluster.members[2].log_text();
    assert!(log.contains("found data inconsistency with peers"), "{log}");
    let list = ok(etcdctl(&eps[0], &["alarm", "list"]));
    assert!(list.contains("alarm:CORRUPT"), "{list}\n{log}");
    let e = err(etcdctl(&eps[1], &["put", "k1", "x"]));
    assert!(e.contains("etcdserver: corrupt cluster"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leaders_periodic_check_flags_a_member_that_differs() {
    let mut cluster = Cluster::start(3, &["--experimental-corrupt-check-time", "1s"]);
    let eps = cluster.endpoints();
    let c = client(&eps).await;
    let target = write_keys(&c).await;
    // Healthy members raise nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(ok(etcdctl(&eps[0], &["alarm", "list"])).trim().is_empty());

    let victim = (cluster.wait_leader(Duration::from_secs(10)) + 1) % 3;
    cluster.members[victim].terminate();
    alter_on_disk(&cluster.members[victim].dir, target);
    cluster.members[victim].start();
    let other = (victim + 1) % 3;
    wait_for("the CORRUPT alarm", Duration::from_secs(30), || {
        ok(etcdctl(&eps[other], &["alarm", "list"])).contains("alarm:CORRUPT")
    });
    let e = err(etcdctl(&eps[other], &["put", "k1", "x"]));
    assert!(e.contains("etcdserver: corrupt cluster"), "{e}");
    // Reads are still served.
    let r = dump(&eps[other], "k", 0).await;
    assert_eq!(r.len(), 20);
}
