//! The shared client (`concord_core::client`) against the real `concord`
//! binary and, to prove it speaks etcd's protocol and no dialect of ours,
//! against Debian's etcd 3.4 with the very same tests.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{etcdctl, ok, Server};
use concord_core::api::etcdserverpb::{response_op, ResponseHeader, WatchResponse};
use concord_core::api::mvccpb::{event::EventType, Event};
use concord_core::client::{
    Client, ClientOptions, Compare, DeleteOptions, Error, ErrorKind, GetOptions, LeaseState, Op, PutOptions, SortOrder,
    SortTarget, Txn, WatchOptions, Watcher,
};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Concord,
    Etcd,
}

const BOTH: [Kind; 2] = [Kind::Concord, Kind::Etcd];

fn start(kind: Kind) -> Server {
    match kind {
        Kind::Concord => Server::concord(),
        Kind::Etcd => Server::etcd(),
    }
}

async fn client(endpoints: &[&str]) -> Client {
    let opts = ClientOptions::new(endpoints.iter().copied())
        .timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_millis(700));
    Client::connect(opts).await.unwrap()
}

fn rev(h: &Option<ResponseHeader>) -> i64 {
    h.as_ref().unwrap().revision
}

/// A port nothing listens on.
fn dead_endpoint() -> String {
    format!("127.0.0.1:{}", common::free_port())
}

async fn kv_surface(kind: Kind) {
    let s = start(kind);
    let c = client(&[&s.endpoint]).await;
    let r1 = rev(&c.put("a/1", "one", PutOptions::new()).await.unwrap().header);
    c.put("a/2", "two", PutOptions::new()).await.unwrap();
    let p = c.put("a/1", "uno", PutOptions::new().prev_kv()).await.unwrap();
    assert_eq!(p.prev_kv.unwrap().value, b"one");
    c.put("b", "bee", PutOptions::new()).await.unwrap();

    let g = c.get("a/", GetOptions::new().prefix()).await.unwrap();
    assert_eq!((g.count, g.kvs.len()), (2, 2), "{kind:?}");
    assert_eq!(g.kvs[0].value, b"uno");
    let g = c
        .get(
            "a/",
            GetOptions::new()
                .prefix()
                .sort(SortTarget::Key, SortOrder::Descend)
                .limit(1),
        )
        .await
        .unwrap();
    assert_eq!((g.kvs[0].key.as_slice(), g.more, g.count), (&b"a/2"[..], true, 2));
    let g = c
        .get("a/1", GetOptions::new().revision(r1).serializable())
        .await
        .unwrap();
    assert_eq!(g.kvs[0].value, b"one");
    let g = c.get("", GetOptions::new().from_key().count_only()).await.unwrap();
    assert_eq!((g.count, g.kvs.len()), (3, 0));
    let g = c.get("a/", GetOptions::new().prefix().keys_only()).await.unwrap();
    assert!(g.kvs.iter().all(|kv| kv.value.is_empty()));

    // A nested transaction with a compare on the mod revision.
    let m = c.get("a/1", GetOptions::new()).await.unwrap().kvs[0].mod_revision;
    let inner = Txn::new()
        .when([Compare::value("b").eq("bee")])
        .and_then([Op::put("c", "sea", PutOptions::new())]);
    let t = c
        .txn(
            Txn::new()
                .when([Compare::mod_revision("a/1").eq(m), Compare::version("nope").eq(0)])
                .and_then([Op::txn(inner), Op::get("a/", GetOptions::new().prefix().count_only())])
                .or_else([Op::delete("a/", DeleteOptions::new().prefix())]),
        )
        .await
        .unwrap();
    assert!(t.succeeded);
    match &t.responses[0].response {
        Some(response_op::Response::ResponseTxn(n)) => assert!(n.succeeded),
        other => panic!("{other:?}"),
    }
    match &t.responses[1].response {
        Some(response_op::Response::ResponseRange(r)) => assert_eq!(r.count, 2),
        other => panic!("{other:?}"),
    }
    let t = c
        .txn(
            Txn::new()
                .when([Compare::mod_revision("a/1").eq(m)])
                .or_else([Op::get("c", GetOptions::new())]),
        )
        .await
        .unwrap();
    assert!(t.succeeded, "a/1 unchanged");
    let t = c
        .txn(
            Txn::new()
                .when([Compare::value("c").ne("sea")])
                .or_else([Op::get("c", GetOptions::new())]),
        )
        .await
        .unwrap();
    assert!(!t.succeeded);

    let d = c.delete("a/", DeleteOptions::new().prefix().prev_kv()).await.unwrap();
    assert_eq!((d.deleted, d.prev_kvs.len()), (2, 2));

    // etcd's errors keep their code and message.
    let e = c.put("", "x", PutOptions::new()).await.unwrap_err();
    assert_eq!(e.to_string(), "etcdserver: key is not provided");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let now = rev(&c.get("b", GetOptions::new()).await.unwrap().header);
    let e = c.get("b", GetOptions::new().revision(now + 100)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FutureRevision, "{e}");
    c.compact(now, true).await.unwrap();
    let e = c.get("b", GetOptions::new().revision(r1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Compacted, "{e}");
    assert_eq!(e.to_string(), "etcdserver: mvcc: required revision has been compacted");

    // Leases.
    let l = c.lease_grant(30, 0).await.unwrap();
    c.put("leased", "v", PutOptions::new().lease(l.id)).await.unwrap();
    let ttl = c.lease_time_to_live(l.id, true).await.unwrap();
    assert_eq!((ttl.granted_ttl, ttl.keys.clone()), (30, vec![b"leased".to_vec()]));
    assert!(ttl.ttl > 25 && ttl.ttl <= 30, "{}", ttl.ttl);
    assert!(c.leases().await.unwrap().leases.iter().any(|x| x.id == l.id));
    assert_eq!(c.lease_keep_alive_once(l.id).await.unwrap().ttl, 30);
    c.lease_revoke(l.id).await.unwrap();
    assert_eq!(c.get("leased", GetOptions::new()).await.unwrap().count, 0);
    assert_eq!(c.lease_time_to_live(l.id, false).await.unwrap().ttl, -1);
    assert_eq!(c.lease_keep_alive_once(l.id).await.unwrap().ttl, 0);
    let e = c.lease_revoke(l.id).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string().as_str()),
        (ErrorKind::LeaseNotFound, "etcdserver: requested lease not found")
    );
    assert!(matches!(c.lease_keep_alive(l.id).await, Err(e) if e.kind() == ErrorKind::LeaseNotFound));

    // Cluster and maintenance.
    let members = c.member_list().await.unwrap().members;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].client_ur_ls, vec![format!("http://{}", s.endpoint)]);
    let st = c.status().await.unwrap();
    assert_eq!(st.leader, members[0].id);
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_lease_cluster_surface() {
    for kind in BOTH {
        kv_surface(kind).await;
    }
}

async fn failover(kind: Kind) {
    let mut a = start(kind);
    let b = start(kind);
    let dead = dead_endpoint();
    let id_of = |s: &Server| {
        let e = s.endpoint.clone();
        async move { client(&[&e]).await.status().await.unwrap().header.unwrap().member_id }
    };
    let (id_a, id_b) = (id_of(&a).await, id_of(&b).await);
    let c = client(&[&dead, &a.endpoint, &b.endpoint]).await;

    // The unreachable first member is skipped, for reads and for writes
    // (refused connections prove the write never left).
    let t = Instant::now();
    assert_eq!(c.status().await.unwrap().header.unwrap().member_id, id_a);
    c.put("k", "1", PutOptions::new()).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(c.get("k", GetOptions::new()).await.unwrap().kvs[0].value, b"1");

    // The member in use goes down: the next member serves.
    a.kill9();
    let t = Instant::now();
    assert_eq!(c.status().await.unwrap().header.unwrap().member_id, id_b);
    c.put("k", "2", PutOptions::new()).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(c.get("k", GetOptions::new()).await.unwrap().kvs[0].value, b"2");

    // A member that accepts connections but never answers (hung) is passed
    // over for reads after the attempt timeout.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_ep = hung.local_addr().unwrap().to_string();
    let c = client(&[&hung_ep, &b.endpoint]).await;
    let t = Instant::now();
    assert_eq!(c.get("k", GetOptions::new()).await.unwrap().kvs[0].value, b"2");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // With every member down, a call fails at the caller's deadline.
    let c = client(&[&dead]).await.with_timeout(Duration::from_millis(800));
    let t = Instant::now();
    let e = c.get("k", GetOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(hung);
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_to_another_member() {
    for kind in BOTH {
        failover(kind).await;
    }
}

/// What a test compares of an event.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    delete: bool,
    key: String,
    value: String,
    mod_revision: i64,
    create_revision: i64,
    version: i64,
    prev_value: Option<String>,
}

fn seen(e: &Event) -> Seen {
    let kv = e.kv.clone().unwrap();
    Seen {
        delete: e.r#type == EventType::Delete as i32,
        key: String::from_utf8(kv.key).unwrap(),
        value: String::from_utf8(kv.value).unwrap(),
        mod_revision: kv.mod_revision,
        create_revision: kv.create_revision,
        version: kv.version,
        prev_value: e.prev_kv.as_ref().map(|p| String::from_utf8(p.value.clone()).unwrap()),
    }
}

fn put_seen(key: &str, value: &str, rev: i64, create: i64, version: i64, prev: Option<&str>) -> Seen {
    Seen {
        delete: false,
        key: key.into(),
        value: value.into(),
        mod_revision: rev,
        create_revision: create,
        version,
        prev_value: prev.map(Into::into),
    }
}

fn del_seen(key: &str, rev: i64, prev: &str) -> Seen {
    Seen {
        delete: true,
        key: key.into(),
        value: String::new(),
        mod_revision: rev,
        create_revision: 0,
        version: 0,
        prev_value: Some(prev.into()),
    }
}

/// Reads answers until `n` events came, within 30 s.
async fn collect(w: &mut Watcher, n: usize) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    let mut count = 0;
    while count < n {
        let resp = tokio::time::timeout(Duration::from_secs(30), w.next())
            .await
            .unwrap_or_else(|_| panic!("no event within 30 s after {count} of {n}"))
            .expect("the watch goes on")
            .unwrap();
        count += resp.events.len();
        out.push(resp);
    }
    assert_eq!(count, n, "more events than expected");
    out
}

async fn watch_resume(kind: Kind) {
    let mut s = start(kind);
    let c = client(&[&s.endpoint]).await;
    let w1 = rev(&c.put("w/1", "a", PutOptions::new()).await.unwrap().header);
    let w2 = rev(&c.put("w/2", "b", PutOptions::new()).await.unwrap().header);
    let mut watcher = c
        .watch("w/", WatchOptions::new().prefix().prev_kv().start_revision(w1))
        .await
        .unwrap();
    let mut expected = vec![
        put_seen("w/1", "a", w1, w1, 1, None),
        put_seen("w/2", "b", w2, w2, 1, None),
    ];
    let mut got: Vec<Seen> = collect(&mut watcher, 2)
        .await
        .iter()
        .flat_map(|r| r.events.iter().map(seen))
        .collect();

    // One revision with three events, then a crash of the server while the
    // watcher is not reading, and writes made before it resumes.
    let t = c
        .txn(Txn::new().and_then([
            Op::put("w/3", "c", PutOptions::new()),
            Op::put("w/4", "d", PutOptions::new()),
            Op::delete("w/1", DeleteOptions::new()),
        ]))
        .await
        .unwrap();
    let t = rev(&t.header);
    expected.extend([
        put_seen("w/3", "c", t, t, 1, None),
        put_seen("w/4", "d", t, t, 1, None),
        del_seen("w/1", t, "a"),
    ]);
    s.restart();
    let p5 = rev(&c.put("w/5", "e", PutOptions::new()).await.unwrap().header);
    let d2 = rev(&c.delete("w/2", DeleteOptions::new()).await.unwrap().header);
    c.put("other", "x", PutOptions::new()).await.unwrap();
    let p3 = rev(&c.put("w/3", "c2", PutOptions::new()).await.unwrap().header);
    expected.extend([
        put_seen("w/5", "e", p5, p5, 1, None),
        del_seen("w/2", d2, "b"),
        put_seen("w/3", "c2", p3, t, 2, Some("c")),
    ]);

    let answers = collect(&mut watcher, expected.len() - got.len()).await;
    for a in &answers {
        let revs: Vec<i64> = a.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision).collect();
        if revs.contains(&t) {
            // (A resumed watch may get later revisions in the same answer.)
            let of_t = revs.iter().filter(|r| **r == t).count();
            assert_eq!(of_t, 3, "{kind:?}: a revision's events arrive together: {revs:?}");
        }
    }
    got.extend(answers.iter().flat_map(|r| r.events.iter().map(seen)));
    assert_eq!(got, expected, "{kind:?}");
    assert!(watcher.reopened() >= 1, "{kind:?}: the stream was reopened");
    assert_eq!(watcher.next_revision(), p3 + 1);

    // Nothing more (no duplicates) until the next write.
    assert!(tokio::time::timeout(Duration::from_millis(500), watcher.next())
        .await
        .is_err());
    let p6 = rev(&c.put("w/6", "f", PutOptions::new()).await.unwrap().header);
    let next = collect(&mut watcher, 1).await;
    assert_eq!(seen(&next[0].events[0]), put_seen("w/6", "f", p6, p6, 1, None));
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_resumes_across_restart_exactly() {
    for kind in BOTH {
        watch_resume(kind).await;
    }
}

async fn watch_compacted(kind: Kind) {
    let mut s = start(kind);
    let c = client(&[&s.endpoint]).await;
    for i in 0..5 {
        c.put("k", i.to_string(), PutOptions::new()).await.unwrap();
    }
    let now = rev(&c.get("k", GetOptions::new()).await.unwrap().header);
    c.compact(now, true).await.unwrap();

    // Starting at a compacted revision.
    let e = match c.watch("k", WatchOptions::new().start_revision(2)).await {
        Err(e) => e,
        Ok(mut w) => w.next().await.unwrap().unwrap_err(),
    };
    assert_eq!(
        e,
        Error::WatchCompacted {
            revision: 2,
            compact_revision: now
        },
        "{kind:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Compacted);

    // Resuming at a revision compacted while the stream was down.
    let mut w = c.watch("k", WatchOptions::new()).await.unwrap();
    let p = rev(&c.put("k", "x", PutOptions::new()).await.unwrap().header);
    assert_eq!(
        collect(&mut w, 1).await[0].events[0].kv.as_ref().unwrap().mod_revision,
        p
    );
    s.restart();
    for i in 0..3 {
        c.put("k", format!("y{i}"), PutOptions::new()).await.unwrap();
    }
    c.compact(p + 3, true).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e,
        Error::WatchCompacted {
            revision: p + 1,
            compact_revision: p + 3
        },
        "{kind:?}"
    );
    assert!(w.next().await.is_none(), "the watch ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reports_compaction_as_its_own_error() {
    for kind in BOTH {
        watch_compacted(kind).await;
    }
}

async fn keep_alive_restart(kind: Kind) {
    let mut s = start(kind);
    let c = client(&[&s.endpoint]).await;
    let ttl = 6;
    let l = c.lease_grant(ttl, 0).await.unwrap().id;
    c.put("alive", "1", PutOptions::new().lease(l)).await.unwrap();
    let mut ka = c.lease_keep_alive(l).await.unwrap();
    assert_eq!(ka.state(), LeaseState::Alive { ttl });

    // Down for less than the TTL.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.kill9();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.start();
    // Longer than the TTL after the restart: only refreshes keep it.
    tokio::time::sleep(Duration::from_secs(ttl as u64 + 2)).await;
    assert_eq!(ka.state(), LeaseState::Alive { ttl }, "{kind:?}");
    let left = c.lease_time_to_live(l, false).await.unwrap().ttl;
    assert!(left > 0, "{kind:?}: lease alive ({left})");
    assert_eq!(c.get("alive", GetOptions::new()).await.unwrap().count, 1);

    // Dropping the handle stops the refreshes: the lease expires.
    drop(ka);
    tokio::time::sleep(Duration::from_secs(ttl as u64 + 2)).await;
    assert_eq!(c.lease_time_to_live(l, false).await.unwrap().ttl, -1, "{kind:?}");
    assert_eq!(c.get("alive", GetOptions::new()).await.unwrap().count, 0);
    ka = c
        .lease_keep_alive(c.lease_grant(ttl, 0).await.unwrap().id)
        .await
        .unwrap();
    ka.close();
    assert_eq!(ka.lost().await, None, "closed, not lost");
    assert_eq!(ka.state(), LeaseState::Closed);
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_survives_a_short_restart() {
    for kind in BOTH {
        keep_alive_restart(kind).await;
    }
}

async fn keep_alive_loss(kind: Kind) {
    let mut s = start(kind);
    let c = client(&[&s.endpoint]).await;
    let ttl = 3;
    let l = c.lease_grant(ttl, 0).await.unwrap().id;
    let ka = c.lease_keep_alive(l).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill9();
    let t = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(10), ka.lost())
        .await
        .expect("loss reported")
        .expect("lost, not closed");
    // The last refresh was at most ttl/3 before the kill.
    assert!(
        t.elapsed() <= Duration::from_millis(3300),
        "{kind:?}: {:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{kind:?}: {:?}",
        t.elapsed()
    );
    assert!(matches!(e, Error::LeaseLost { id, .. } if id == l), "{e}");
    assert!(matches!(ka.state(), LeaseState::Lost(_)));

    // A lease revoked elsewhere is reported lost at the next refresh.
    s.start();
    let l = c.lease_grant(ttl, 0).await.unwrap().id;
    let ka = c.lease_keep_alive(l).await.unwrap();
    c.lease_revoke(l).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), ka.lost())
        .await
        .expect("loss reported")
        .expect("lost, not closed");
    assert_eq!(e.kind(), ErrorKind::LeaseNotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_reports_loss() {
    for kind in BOTH {
        keep_alive_loss(kind).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_token_is_renewed_transparently() {
    for kind in BOTH {
        auth_token_renewal(kind).await;
    }
}

/// Auth and token renewal: tokens that expire, go stale, or are forgotten
/// by a restarted server are replaced without the caller noticing.
async fn auth_token_renewal(kind: Kind) {
    let mut s = match kind {
        Kind::Etcd => Server::etcd_with(&["--auth-token", "simple", "--auth-token-ttl", "2"]),
        Kind::Concord => Server::concord_with(&["--auth-token-ttl", "2", "--bcrypt-cost", "4"]),
    };
    let ep = s.endpoint.clone();
    let ep = ep.as_str();
    for a in common::ALICE_SETUP {
        ok(etcdctl(ep, a));
    }
    let opts = |pw: &str| {
        ClientOptions::new([ep])
            .user("alice", pw)
            .timeout(Duration::from_secs(5))
    };

    let e = Client::connect(opts("wrong")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    assert_eq!(
        e.to_string(),
        "etcdserver: authentication failed, invalid user ID or password"
    );
    let anonymous = client(&[ep]).await;
    assert!(anonymous.get("app/x", GetOptions::new()).await.is_err());

    let c = Client::connect(opts("alicepw")).await.unwrap();
    c.put("app/x", "1", PutOptions::new()).await.unwrap();
    let e = c.get("other", GetOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    // The token expires after 2 s idle; the client gets a new one.
    let old = c.authenticate("alice", "alicepw").await.unwrap().token;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, body) = common::http_auth(ep, "/v3/kv/range", r#"{"key":"YXBwL3g="}"#, &old);
    assert_eq!(status, 401, "the old token is expired: {body}");
    assert!(body.contains("etcdserver: invalid auth token"), "{body}");
    assert_eq!(c.get("app/x", GetOptions::new()).await.unwrap().kvs[0].value, b"1");

    // A change to users or roles makes outstanding tokens stale.
    ok(etcdctl(ep, &["--user", "root:rootpw", "role", "add", "other"]));
    ok(etcdctl(
        ep,
        &["--user", "root:rootpw", "user", "grant-role", "alice", "other"],
    ));
    c.put("app/y", "2", PutOptions::new()).await.unwrap();

    // A watch resumes after a restart of the server, which forgets every
    // simple token: the watcher's reopening is refused, it authenticates
    // again and resumes.
    let mut w = c.watch("app/", WatchOptions::new().prefix()).await.unwrap();
    s.restart();
    let p = rev(&c.put("app/z", "3", PutOptions::new()).await.unwrap().header);
    let got = collect(&mut w, 1).await;
    let kv = got[0].events[0].kv.as_ref().unwrap();
    assert_eq!((kv.key.as_slice(), kv.mod_revision), (&b"app/z"[..], p));
}

/// The handles every binding builds on, through the blocking facade: a
/// watch read from several threads with a timeout and canceled from
/// another thread; a keep-alive closed from `&self`.
fn blocking_handles(kind: Kind) {
    use concord_core::client::BlockingClient;
    let s = start(kind);
    let c = BlockingClient::connect(ClientOptions::new([s.endpoint.as_str()])).unwrap();
    let w = std::sync::Arc::new(
        c.block_on(c.client().watch_handle("h/", WatchOptions::new().prefix()))
            .unwrap(),
    );
    assert!(
        c.block_on(w.next_timeout(Duration::from_millis(200))).is_err(),
        "nothing yet"
    );
    for i in 0..20 {
        c.block_on(c.client().put(format!("h/{i}"), "v", PutOptions::new()))
            .unwrap();
    }
    // Two threads share the handle; together they see every event once, each in order.
    let seen: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (w, c) = (w.clone(), c.clone());
                scope.spawn(move || {
                    let mut revs = Vec::new();
                    while let Ok(Some(answer)) = c.block_on(w.next_timeout(Duration::from_millis(500))) {
                        revs.extend(
                            answer
                                .unwrap()
                                .events
                                .iter()
                                .map(|e| e.kv.as_ref().unwrap().mod_revision),
                        );
                    }
                    revs
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = seen.iter().flatten().copied().collect();
    assert!(seen.iter().all(|r| r.windows(2).all(|p| p[0] < p[1])), "{seen:?}");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 20, "{kind:?}: {seen:?}");

    // A reader blocked in next() is released by a cancel from another thread.
    let blocked = {
        let (w, c) = (w.clone(), c.clone());
        std::thread::spawn(move || c.block_on(w.next()))
    };
    std::thread::sleep(Duration::from_millis(100));
    w.cancel();
    assert!(blocked.join().unwrap().is_none());
    c.block_on(c.client().put("h/after", "v", PutOptions::new())).unwrap();
    assert!(c.block_on(w.next()).is_none(), "nothing after cancel");

    let lease = c.block_on(c.client().lease_grant(5, 0)).unwrap().id;
    let ka = c.block_on(c.client().lease_keep_alive(lease)).unwrap();
    assert_eq!(ka.state(), LeaseState::Alive { ttl: 5 });
    ka.close();
    assert_eq!(c.block_on(ka.lost()), None);
    assert_eq!(ka.state(), LeaseState::Closed);
}

#[test]
fn blocking_facade_and_shared_handles() {
    for kind in BOTH {
        blocking_handles(kind);
    }
}
