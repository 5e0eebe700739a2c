//! etcd's v2 keys API: the curl sessions of the classic guides, side by
//! side with etcd 3.4 (`--enable-v2`); etcdctl in v2 mode; the PyPI
//! python-etcd client; and a 3-member cluster (a write through a follower,
//! a TTL expiring once everywhere, a member catching up by snapshot).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{form, Reaped, Reply, Server};
use serde_json::Value;

/// The v2 index a fresh server starts at: etcd keeps its member list in
/// the v2 store, so its index is past 0 before the first client write;
/// Concord's v2 key space holds only client keys. Waits until etcd has
/// settled its cluster version (its last start-up write).
fn v2_base(endpoint: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = form(endpoint, "GET", "/version", "", "").json();
        if v["etcdcluster"] != "not_decided" || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = form(endpoint, "GET", "/v2/keys/", "", "");
    r.header("x-etcd-index").unwrap().parse().unwrap()
}

/// Makes an answer comparable across servers: indexes relative to the
/// server's base, times masked, listings sorted (etcd lists in map order).
fn normalize(v: &mut Value, base: u64) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match k.as_str() {
                    "modifiedIndex" | "createdIndex" | "index" => {
                        if let Some(n) = x.as_u64() {
                            *x = Value::from(n.saturating_sub(base));
                        }
                    }
                    "expiration" => *x = Value::from("<time>"),
                    "key" => {
                        if let Some(k) = x.as_str() {
                            *x = Value::from(relative_key(k, base));
                        }
                    }
                    "cause" if x.as_str().is_some_and(|c| c.starts_with('[')) => {
                        let c = x.as_str().unwrap().to_string();
                        *x = Value::from(relative_numbers(&c, base));
                    }
                    "nodes" => {
                        if let Value::Array(a) = x {
                            a.sort_by(|p, q| p["key"].as_str().cmp(&q["key"].as_str()));
                        }
                        normalize(x, base);
                    }
                    _ => normalize(x, base),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| normalize(x, base)),
        _ => {}
    }
}

/// In-order keys are named after their index.
fn relative_key(k: &str, base: u64) -> String {
    match k.rsplit_once('/') {
        Some((dir, name)) if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{dir}/{:020}", name.parse::<u64>().unwrap() - base)
        }
        _ => k.to_string(),
    }
}

fn relative_numbers(s: &str, base: u64) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for ch in s.chars().chain(std::iter::once(' ')) {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        if !digits.is_empty() {
            out.push_str(&digits.parse::<u64>().unwrap().saturating_sub(base).to_string());
            digits.clear();
        }
        out.push(ch);
    }
    out.pop();
    out
}

/// One request of a session; `{N}` in the path is the server's base + N.
fn step(endpoint: &str, base: u64, method: &str, path: &str, body: &str) -> Reply {
    let mut p = path.to_string();
    while let Some(start) = p.find('{') {
        let end = p[start..].find('}').unwrap() + start;
        let n: u64 = p[start + 1..end].parse().unwrap();
        p.replace_range(start..=end, &(base + n).to_string());
    }
    form(endpoint, method, &p, body, "")
}

/// The classic guides' curl session (etcd's v2 API guide and the
/// tutorials built on it), in order.
const SESSION: &[(&str, &str, &str)] = &[
    ("GET", "/v2/keys/", ""),
    ("PUT", "/v2/keys/message", "value=Hello%20world"),
    ("GET", "/v2/keys/message", ""),
    ("PUT", "/v2/keys/message", "value=Hello%20etcd"),
    ("DELETE", "/v2/keys/message", ""),
    ("GET", "/v2/keys/message", ""),
    ("PUT", "/v2/keys/foo?ttl=100", "value=bar"),
    ("PUT", "/v2/keys/foo?prevExist=true&ttl=", "value=bar"),
    ("PUT", "/v2/keys/foo?prevExist=false", "value=again"),
    ("PUT", "/v2/keys/foo?prevValue=one", "value=two"),
    ("PUT", "/v2/keys/foo?prevValue=bar", "value=baz"),
    ("PUT", "/v2/keys/foo?prevIndex={1}", "value=qux"),
    ("PUT", "/v2/keys/foo?prevIndex={10}&prevValue=bar", "value=qux"),
    ("DELETE", "/v2/keys/foo?prevValue=nope", ""),
    ("DELETE", "/v2/keys/foo?prevIndex={11}", ""),
    ("DELETE", "/v2/keys/foo?prevValue=baz", ""),
    ("PUT", "/v2/keys/dir?dir=true", ""),
    ("PUT", "/v2/keys/dir/a", "value=1"),
    ("PUT", "/v2/keys/dir/_hidden", "value=h"),
    ("PUT", "/v2/keys/dir/sub/x", "value=2"),
    ("GET", "/v2/keys/dir", ""),
    ("GET", "/v2/keys/dir?recursive=true&sorted=true", ""),
    ("GET", "/v2/keys/?recursive=true", ""),
    ("GET", "/v2/keys/dir/_hidden", ""),
    ("PUT", "/v2/keys/dir", "value=x"),
    ("PUT", "/v2/keys/dir/a/b", "value=x"),
    ("PUT", "/v2/keys/", "value=x"),
    ("DELETE", "/v2/keys/dir", ""),
    ("DELETE", "/v2/keys/dir?dir=true", ""),
    ("DELETE", "/v2/keys/dir/sub/x?dir=true", ""),
    ("DELETE", "/v2/keys/dir/sub?dir=true", ""),
    ("PUT", "/v2/keys/dir?dir=true&prevExist=true&ttl=100", ""),
    ("DELETE", "/v2/keys/dir?recursive=true", ""),
    ("GET", "/v2/keys/dir/a", ""),
    ("POST", "/v2/keys/queue", "value=Job1"),
    ("POST", "/v2/keys/queue", "value=Job2"),
    ("GET", "/v2/keys/queue?recursive=true&sorted=true", ""),
    ("GET", "/v2/keys/queue?wait=true&recursive=true&waitIndex={1}", ""),
    ("PUT", "/v2/keys/r?ttl=100", "value=v"),
    ("PUT", "/v2/keys/r?ttl=200&refresh=true&prevExist=true", ""),
    ("PUT", "/v2/keys/r?ttl=200&refresh=true", ""),
    ("PUT", "/v2/keys/empty", ""),
    ("PUT", "/v2/keys/nested/deep/key", "value=v"),
    ("GET", "/v2/keys/nested/deep/key/below", ""),
    ("GET", "/v2/keys/%2Fmessy//path/./x", ""),
    ("GET", "/v2/keys/q?recursive=maybe", ""),
    ("GET", "/v2/keys/q?wait=true&waitIndex=x", ""),
    ("PUT", "/v2/keys/t?ttl=abc", "value=1"),
    ("PUT", "/v2/keys/t?prevExist=maybe", "value=1"),
    ("PUT", "/v2/keys/t?prevValue=", "value=1"),
    ("PUT", "/v2/keys/t?refresh=true&ttl=5", "value=1"),
    ("PUT", "/v2/keys/t?refresh=true", ""),
    ("PUT", "/v2/keys/missing?refresh=true&ttl=5", ""),
    ("PATCH", "/v2/keys/t", ""),
    ("PUT", "/v2/keys/t", "value=%zz"),
    ("PUT", "/v2/keys/t?value=%4", ""),
    ("PUT", "/v2/keys/t?wait=true", "value=1"),
    ("POST", "/v2/keys/jobs?dir=true", ""),
    ("GET", "/v2/keys/jobs?recursive=true", ""),
    ("PUT", "/v2/keys/e?ttl=1", "value=gone%20soon"),
    ("GET", "/v2/keys/e?wait=true", ""),
    ("GET", "/v2/keys/e", ""),
];

#[test]
fn the_guides_curl_session_answers_as_etcd_does() {
    let concord = Server::concord();
    let etcd = Server::etcd_with(&["--enable-v2=true"]);
    let (cb, eb) = (v2_base(&concord.endpoint), v2_base(&etcd.endpoint));
    let mut differences = Vec::new();
    for (method, path, body) in SESSION {
        let c = step(&concord.endpoint, cb, method, path, body);
        let e = step(&etcd.endpoint, eb, method, path, body);
        let what = format!("{method} {path} {body}");
        if c.status != e.status {
            differences.push(format!("{what}: status {} (etcd {})", c.status, e.status));
        }
        for h in [
            "content-type",
            "x-etcd-cluster-id",
            "x-raft-index",
            "x-raft-term",
            "allow",
        ] {
            if c.header(h).is_some() != e.header(h).is_some() {
                differences.push(format!("{what}: header {h} {:?} (etcd {:?})", c.header(h), e.header(h)));
            }
        }
        if c.header("content-type") != e.header("content-type") {
            differences.push(format!(
                "{what}: {:?} (etcd {:?})",
                c.header("content-type"),
                e.header("content-type")
            ));
        }
        let index = |r: &Reply, base: u64| {
            r.header("x-etcd-index")
                .map(|i| i.parse::<u64>().unwrap().saturating_sub(base))
        };
        if index(&c, cb) != index(&e, eb) {
            differences.push(format!(
                "{what}: X-Etcd-Index {:?} (etcd {:?})",
                index(&c, cb),
                index(&e, eb)
            ));
        }
        match (
            serde_json::from_str::<Value>(&c.body),
            serde_json::from_str::<Value>(&e.body),
        ) {
            (Ok(mut cv), Ok(mut ev)) => {
                normalize(&mut cv, cb);
                normalize(&mut ev, eb);
                if cv != ev {
                    differences.push(format!("{what}:\n  concord {cv}\n  etcd    {ev}"));
                }
                assert!(c.body.ends_with('\n'), "{what}: a JSON answer ends with a newline");
            }
            _ if c.body.trim() == e.body.trim() => {}
            _ => differences.push(format!("{what}: body {:?} (etcd {:?})", c.body, e.body)),
        }
    }
    assert!(
        differences.is_empty(),
        "differences from etcd:\n{}",
        differences.join("\n")
    );
}

#[test]
fn stats_members_and_machines_have_etcds_shape() {
    let concord = Server::concord();
    let etcd = Server::etcd_with(&["--enable-v2=true"]);
    form(&concord.endpoint, "PUT", "/v2/keys/a", "value=1", "");
    for path in [
        "/v2/stats/self",
        "/v2/stats/store",
        "/v2/stats/leader",
        "/v2/members",
        "/v2/members/leader",
    ] {
        let c = form(&concord.endpoint, "GET", path, "", "");
        let e = form(&etcd.endpoint, "GET", path, "", "");
        assert_eq!(c.status, e.status, "{path}");
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            k.sort();
            k
        };
        assert_eq!(keys(&c.json()), keys(&e.json()), "{path}: {} vs {}", c.body, e.body);
    }
    let store = form(&concord.endpoint, "GET", "/v2/stats/store", "", "").json();
    assert_eq!(store["setsSuccess"], 1, "{store}");
    let me = form(&concord.endpoint, "GET", "/v2/stats/self", "", "").json();
    assert_eq!(me["state"], "StateLeader");
    assert_eq!(me["leaderInfo"]["leader"], me["id"]);
    let members = form(&concord.endpoint, "GET", "/v2/members", "", "").json();
    assert_eq!(
        members["members"][0]["clientURLs"][0],
        format!("http://{}", concord.endpoint)
    );
    let machines = form(&concord.endpoint, "GET", "/v2/machines", "", "");
    assert_eq!(machines.body, format!("http://{}", concord.endpoint));
}

#[test]
fn v2_can_be_switched_off_and_is_separate_from_v3() {
    let off = Server::concord_with(&["--enable-v2=false"]);
    assert_eq!(form(&off.endpoint, "GET", "/v2/keys/", "", "").status, 404);
    assert_eq!(form(&off.endpoint, "GET", "/v2/members", "", "").status, 200);
    let s = Server::concord();
    form(&s.endpoint, "PUT", "/v2/keys/shared", "value=v2", "");
    let out = common::etcdctl(&s.endpoint, &["get", "/shared"]);
    assert_eq!(common::ok(out), "", "the v3 key space does not see v2 keys");
}

/// A long poll whose client goes away is dropped, and its wait released.
#[test]
fn a_long_poll_is_released_when_its_client_leaves() {
    use std::io::Write;
    let s = Server::concord();
    let watchers = || {
        form(&s.endpoint, "GET", "/v2/stats/store", "", "").json()["watchers"]
            .as_u64()
            .unwrap()
    };
    let mut polls = Vec::new();
    for _ in 0..20 {
        let mut c = std::net::TcpStream::connect(&s.endpoint).unwrap();
        write!(c, "GET /v2/keys/never?wait=true HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        polls.push(c);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while watchers() < 20 {
        assert!(Instant::now() < deadline, "polls not registered: {}", watchers());
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(polls);
    while watchers() > 0 {
        assert!(
            Instant::now() < deadline,
            "polls of gone clients still held: {}",
            watchers()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn v2_writes_need_root_when_v3_auth_is_on() {
    let s = Server::concord_with(&["--bcrypt-cost", "4"]);
    for args in common::ALICE_SETUP {
        common::ok(common::etcdctl(&s.endpoint, args));
    }
    let anon = form(&s.endpoint, "PUT", "/v2/keys/k", "value=1", "");
    assert_eq!(anon.status, 401, "{}", anon.body);
    assert_eq!(anon.json()["errorCode"], 110);
    assert_eq!(anon.header("www-authenticate"), Some("Basic realm=\"etcd\""));
    assert_eq!(form(&s.endpoint, "GET", "/v2/keys/", "", "").status, 401);
    let basic = |user_pw: &str| {
        use base64::Engine;
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(user_pw)
        )
    };
    assert_eq!(
        form(&s.endpoint, "PUT", "/v2/keys/k", "value=1", &basic("alice:alicepw")).status,
        401
    );
    assert_eq!(
        form(&s.endpoint, "PUT", "/v2/keys/k", "value=1", &basic("root:wrong")).status,
        401
    );
    let ok = form(&s.endpoint, "PUT", "/v2/keys/k", "value=1", &basic("root:rootpw"));
    assert_eq!(ok.status, 201, "{}", ok.body);
    // a v3 token of root works too, as the JSON gateway takes it
    let token = common::http(
        &s.endpoint,
        "POST",
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"rootpw"}"#,
    )
    .unwrap()
    .1;
    let token: Value = serde_json::from_str(&token).unwrap();
    let t = format!("Authorization: {}\r\n", token["token"].as_str().unwrap());
    assert_eq!(
        form(&s.endpoint, "GET", "/v2/keys/k", "", &t).json()["node"]["value"],
        "1"
    );
}

#[test]
fn v2_keys_survive_kill_9() {
    let mut s = Server::concord();
    form(&s.endpoint, "PUT", "/v2/keys/d/a", "value=1", "");
    form(&s.endpoint, "PUT", "/v2/keys/d/b?ttl=600", "value=2", "");
    let q = form(&s.endpoint, "POST", "/v2/keys/q", "value=j", "").json();
    let before = form(&s.endpoint, "GET", "/v2/keys/?recursive=true", "", "");
    s.restart();
    let after = form(&s.endpoint, "GET", "/v2/keys/?recursive=true", "", "");
    let strip_ttl = |r: &Reply| {
        let mut v = r.json();
        v["node"]["nodes"].as_array_mut().unwrap().iter_mut().for_each(|d| {
            if let Some(ns) = d["nodes"].as_array_mut() {
                ns.iter_mut().for_each(|n| {
                    n.as_object_mut().unwrap().remove("ttl");
                });
            }
        });
        v
    };
    assert_eq!(strip_ttl(&after), strip_ttl(&before));
    assert_eq!(after.header("x-etcd-index"), before.header("x-etcd-index"));
    // the history is kept: a wait from the first index still gets it
    let first = form(
        &s.endpoint,
        "GET",
        "/v2/keys/d?wait=true&recursive=true&waitIndex=1",
        "",
        "",
    )
    .json();
    assert_eq!(
        (first["action"].as_str(), first["node"]["key"].as_str()),
        (Some("set"), Some("/d/a")),
        "{first}"
    );
    // the index goes on from where it was
    let next = form(&s.endpoint, "PUT", "/v2/keys/n", "value=1", "").json();
    assert_eq!(
        next["node"]["modifiedIndex"].as_u64(),
        Some(q["node"]["modifiedIndex"].as_u64().unwrap() + 1)
    );
}

fn etcdctl2(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "2")
        .args(["--endpoints", &format!("http://{endpoint}")])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn etcdctl_in_v2_mode_works_unchanged() {
    let s = Server::concord();
    let e = &s.endpoint;
    let run = |args: &[&str]| {
        let (ok, out, err) = etcdctl2(e, args);
        assert!(ok, "etcdctl {args:?}: {out} {err}");
        out
    };
    assert_eq!(run(&["set", "/dir/k", "v1"]), "v1");
    assert_eq!(run(&["get", "/dir/k"]), "v1");
    assert_eq!(run(&["update", "/dir/k", "v2"]), "v2");
    assert_eq!(run(&["mk", "/dir/new", "n"]), "n");
    let (ok, _, err) = etcdctl2(e, &["mk", "/dir/new", "again"]);
    assert!(!ok && err.contains("Key already exists"), "{err}");
    run(&["mkdir", "/empty"]);
    assert_eq!(run(&["ls", "--recursive", "/"]), "/dir\n/dir/k\n/dir/new\n/empty");
    assert_eq!(run(&["set", "--swap-with-value", "v2", "/dir/k", "v3"]), "v3");
    run(&["rm", "/dir/new"]);
    run(&["rmdir", "/empty"]);
    let (ok, _, err) = etcdctl2(e, &["get", "/empty"]);
    assert!(!ok && err.contains("Key not found"), "{err}");
    assert!(run(&["member", "list"]).contains("isLeader=true"));
    assert!(run(&["cluster-health"]).contains("cluster is healthy"));

    // watch: one change, then exits
    let mut watch = Reaped(
        Command::new("etcdctl")
            .env("ETCDCTL_API", "2")
            .args(["--endpoints", &format!("http://{e}"), "watch", "/dir/k"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_watchers(e, 1);
    run(&["set", "/dir/k", "watched"]);
    let out = watch.0.wait_with_output_ref();
    assert_eq!(out, "watched");

    // exec-watch: runs the command for every change, with ETCD_WATCH_*
    let mut exec = Reaped(
        Command::new("etcdctl")
            .env("ETCDCTL_API", "2")
            .args([
                "--endpoints",
                &format!("http://{e}"),
                "exec-watch",
                "--recursive",
                "/dir",
                "--",
            ])
            .args([
                "sh",
                "-c",
                "echo \"$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE\"",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_watchers(e, 1);
    let mut lines = BufReader::new(exec.0.stdout.take().unwrap()).lines();
    for i in 0..3 {
        run(&["set", &format!("/dir/e{i}"), &format!("x{i}")]);
        assert_eq!(lines.next().unwrap().unwrap(), format!("set /dir/e{i} x{i}"));
    }
}

/// Waits until `n` long polls wait on `endpoint`.
fn wait_watchers(endpoint: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while form(endpoint, "GET", "/v2/stats/store", "", "").json()["watchers"].as_u64() < Some(n) {
        assert!(Instant::now() < deadline, "no watcher came");
        std::thread::sleep(Duration::from_millis(20));
    }
}

trait WaitOutput {
    fn wait_with_output_ref(&mut self) -> String;
}

impl WaitOutput for std::process::Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        self.stdout.take().unwrap().read_to_string(&mut s).unwrap();
        self.wait().unwrap();
        s.trim().to_string()
    }
}

#[test]
fn python_etcd_works_unchanged_against_concord_and_etcd() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/python_etcd_check.py");
    let concord = Server::concord();
    let etcd = Server::etcd_with(&["--enable-v2=true"]);
    for (who, s) in [("concord", &concord), ("etcd 3.4", &etcd)] {
        let (host, port) = s.endpoint.split_once(':').unwrap();
        let out = Command::new("timeout")
            .args(["120", "python3", script, host, port])
            .output()
            .expect("python3 runs (scripts/test installs python-etcd)");
        assert!(
            out.status.success(),
            "python-etcd against {who} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_cluster_replicates_v2_writes_expiry_and_catches_up_by_snapshot() {
    let mut cluster = Cluster::start(3, &["--snapshot-count", "20"]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    let lagging = (leader + 2) % 3;
    let (le, fe) = (
        cluster.members[leader].endpoint.clone(),
        cluster.members[follower].endpoint.clone(),
    );

    // a write through a follower is visible on the leader
    let w = form(&fe, "PUT", "/v2/keys/via/follower", "value=1", "");
    assert_eq!(w.status, 201, "{}", w.body);
    let r = form(&le, "GET", "/v2/keys/via/follower?quorum=true", "", "");
    assert_eq!(r.json()["node"]["value"], "1", "{}", r.body);

    // a TTL expires once, and every member sees the same expire event
    let set = form(&le, "PUT", "/v2/keys/short?ttl=1", "value=x", "").json();
    let index = set["node"]["modifiedIndex"].as_u64().unwrap();
    let waits: Vec<_> = cluster
        .members
        .iter()
        .map(|m| {
            let e = m.endpoint.clone();
            std::thread::spawn(move || {
                form(
                    &e,
                    "GET",
                    &format!("/v2/keys/short?wait=true&waitIndex={}", index + 1),
                    "",
                    "",
                )
            })
        })
        .collect();
    let events: Vec<Value> = waits.into_iter().map(|t| t.join().unwrap().json()).collect();
    for e in &events {
        assert_eq!(e["action"], "expire", "{e}");
        assert_eq!(e["node"]["modifiedIndex"], events[0]["node"]["modifiedIndex"]);
    }
    for m in &cluster.members {
        let stats = form(&m.endpoint, "GET", "/v2/stats/store", "", "").json();
        assert_eq!(stats["expireCount"], 1, "{}: {stats}", m.name);
    }

    // a member that missed many writes catches up (by snapshot: the log
    // before them is compacted every 20 entries)
    cluster.members[lagging].kill9();
    for i in 0..60 {
        let r = form(&le, "PUT", &format!("/v2/keys/bulk/k{i:02}"), &format!("value={i}"), "");
        assert_eq!(r.status, 201, "{}", r.body);
    }
    cluster.members[lagging].start();
    let want = form(&le, "GET", "/v2/keys/bulk?recursive=true&sorted=true", "", "");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = common::try_form(
            &cluster.members[lagging].endpoint,
            "GET",
            "/v2/keys/bulk?recursive=true&sorted=true",
            "",
            "",
        );
        if let Ok(got) = &got {
            if got.body == want.body && got.header("x-etcd-index") == want.header("x-etcd-index") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no catch-up: {got:?} vs {}", want.body);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        cluster.members[lagging]
            .log_text()
            .contains("applying a snapshot from the leader"),
        "the lagging member was expected to catch up from a snapshot"
    );
}

/// `stream=true`: one event after another on one response, none missed.
#[test]
fn a_streamed_watch_sends_every_event() {
    use std::io::Write;
    let s = Server::concord();
    let mut c = std::net::TcpStream::connect(&s.endpoint).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET /v2/keys/s?wait=true&stream=true&recursive=true HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    wait_watchers(&s.endpoint, 1);
    for i in 0..5 {
        form(
            &s.endpoint,
            "PUT",
            &format!("/v2/keys/s/k{i}"),
            &format!("value={i}"),
            "",
        );
    }
    let mut seen = Vec::new();
    for line in BufReader::new(c).lines() {
        let line = line.unwrap();
        if let Some(json) = line.strip_prefix('{').map(|rest| format!("{{{rest}")) {
            let v: Value = serde_json::from_str(&json).unwrap();
            seen.push(v["node"]["value"].as_str().unwrap().to_string());
            if seen.len() == 5 {
                break;
            }
        }
    }
    assert_eq!(seen, ["0", "1", "2", "3", "4"]);
}

/// v2 keys live in the backend too: past the quota, writes that grow it
/// are refused (deletes still free space).
#[test]
fn v2_writes_count_against_the_backend_quota() {
    let mut s = Server::concord();
    form(&s.endpoint, "PUT", "/v2/keys/before", "value=1", "");
    s.kill9();
    let small = Server::concord_in(&s.data_dir, &["--quota-backend-bytes", "1"]);
    let r = form(&small.endpoint, "PUT", "/v2/keys/k", "value=1", "");
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.json()["errorCode"], 300);
    assert!(
        r.json()["cause"].as_str().unwrap().contains("database space exceeded"),
        "{}",
        r.body
    );
    let d = form(&small.endpoint, "DELETE", "/v2/keys/before", "", "");
    assert_eq!(d.status, 200, "{}", d.body);
}
