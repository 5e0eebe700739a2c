//! Watches and leases on the real binary: etcdctl 3.4 (compared with etcd
//! 3.4 where the output is deterministic), the gateway's streaming watch
//! and keep-alive read with a plain HTTP client, expiry, restart.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{b64, err, etcdctl, http, mask_ids, ok, HttpStream, Server};
use serde_json::{json, Value};

/// Runs `etcdctl watch ARGS` for `secs` seconds and returns what it printed.
fn watch_for(endpoint: &str, secs: u32, args: &[&str]) -> std::process::Child {
    Command::new("timeout")
        .arg(secs.to_string())
        .args(["etcdctl", "--endpoints", endpoint, "watch"])
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn output(child: std::process::Child) -> String {
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

fn writes(ep: &str) {
    ok(etcdctl(ep, &["put", "foo1", "a"]));
    ok(etcdctl(ep, &["put", "foo2", "b"]));
    ok(etcdctl(ep, &["put", "foo1", "c"]));
    ok(etcdctl(ep, &["put", "bar", "x"]));
    ok(etcdctl(ep, &["del", "foo1"]));
    ok(etcdctl(ep, &["del", "foo", "--prefix"]));
}

#[test]
fn etcdctl_watch_history_matches_etcd() {
    let etcd = Server::etcd();
    let concord = Server::concord();
    writes(&etcd.endpoint);
    writes(&concord.endpoint);
    for args in [
        &["foo1", "--rev", "2"][..],
        &["foo", "--prefix", "--rev", "1"],
        &["foo", "--prefix", "--rev", "4", "--prev-kv"],
        &["a", "z", "--rev", "2", "-w", "json"],
    ] {
        let want = output(watch_for(&etcd.endpoint, 2, args));
        let got = output(watch_for(&concord.endpoint, 2, args));
        if args.contains(&"json") {
            // Same events, revisions included; the member's IDs differ.
            let events = |s: &str| -> Vec<Value> {
                s.lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()["Events"].clone())
                    .collect()
            };
            assert_eq!(events(&got), events(&want), "watch {args:?}");
        } else {
            assert_eq!(got, want, "watch {args:?}");
        }
        assert!(!got.is_empty());
    }
}

#[test]
fn etcdctl_live_watch_sees_every_event_in_order() {
    let s = Server::concord();
    let ep = s.endpoint.as_str();
    let prefix = watch_for(ep, 4, &["foo", "--prefix", "--prev-kv"]);
    let key = watch_for(ep, 4, &["bar"]);
    std::thread::sleep(Duration::from_millis(1200));
    writes(ep);
    assert_eq!(
        output(prefix),
        "PUT\nfoo1\na\nPUT\nfoo2\nb\nPUT\nfoo1\na\nfoo1\nc\nDELETE\nfoo1\nc\nfoo1\n\nDELETE\nfoo2\nb\nfoo2\n\n"
    );
    assert_eq!(output(key), "PUT\nbar\nx\n");
}

#[test]
fn etcdctl_lease_lifecycle() {
    let s = Server::concord();
    let ep = s.endpoint.as_str();
    let granted = ok(etcdctl(ep, &["lease", "grant", "60"]));
    let id = granted.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(granted, format!("lease {id} granted with TTL(60s)\n"));
    ok(etcdctl(ep, &["put", "--lease", &id, "svc/a", "1"]));
    ok(etcdctl(ep, &["put", "--lease", &id, "svc/b", "2"]));
    let ttl = ok(etcdctl(ep, &["lease", "timetolive", &id, "--keys"]));
    assert!(
        ttl.contains(&format!("lease {id} granted with TTL(60s), remaining(")),
        "{ttl}"
    );
    assert!(ttl.contains("attached keys([svc/a svc/b])"), "{ttl}");
    assert_eq!(ok(etcdctl(ep, &["lease", "list"])), format!("found 1 leases\n{id}\n"));
    assert_eq!(
        ok(etcdctl(ep, &["lease", "keep-alive", "--once", &id])),
        format!("lease {id} keepalived with TTL(60)\n")
    );
    assert_eq!(
        ok(etcdctl(ep, &["lease", "revoke", &id])),
        format!("lease {id} revoked\n")
    );
    assert_eq!(
        ok(etcdctl(ep, &["get", "svc/", "--prefix"])),
        "",
        "revoke deletes the attached keys"
    );
    assert!(err(etcdctl(ep, &["lease", "revoke", &id])).contains("etcdserver: requested lease not found"));
    assert_eq!(
        ok(etcdctl(ep, &["lease", "timetolive", &id])),
        format!("lease {id} already expired\n")
    );
    assert!(err(etcdctl(ep, &["put", "--lease", &id, "k", "v"])).contains("etcdserver: requested lease not found"));
    assert_eq!(ok(etcdctl(ep, &["lease", "list"])), "found 0 leases\n");
}

#[test]
fn expiry_deletes_attached_keys_in_one_revision() {
    let s = Server::concord();
    let ep = s.endpoint.as_str();
    let (_, v) = http(ep, "POST", "/v3/lease/grant", r#"{"TTL":"2","ID":"77"}"#).unwrap();
    assert!(v.contains(r#""TTL":"2""#), "{v}");
    for k in ["e/1", "e/2"] {
        let body = json!({"key": b64(k), "value": b64("v"), "lease": "77"}).to_string();
        assert_eq!(http(ep, "POST", "/v3/kv/put", &body).unwrap().0, 200);
    }
    let (_, mut w) = HttpStream::post(
        ep,
        "/v3/watch",
        &json!({"create_request": {"key": b64("e/"), "range_end": b64("e0")}}).to_string(),
    );
    assert_eq!(w.next_json().unwrap()["result"]["created"], true);
    let started = Instant::now();
    let r = w.next_json().expect("expiry events");
    let elapsed = started.elapsed();
    let events = r["result"]["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "{r}");
    assert!(events.iter().all(|e| e["type"] == "DELETE"));
    assert_eq!(
        events[0]["kv"]["mod_revision"], events[1]["kv"]["mod_revision"],
        "one revision"
    );
    assert!(elapsed < Duration::from_secs(4), "expired after {elapsed:?}");
    let (_, v) = http(ep, "POST", "/v3/lease/timetolive", r#"{"ID":"77"}"#).unwrap();
    assert!(v.contains(r#""TTL":"-1""#), "{v}");
}

#[test]
fn keepalive_keeps_a_lease_alive() {
    let s = Server::concord();
    let ep = s.endpoint.as_str();
    http(ep, "POST", "/v3/lease/grant", r#"{"TTL":"2","ID":"5"}"#).unwrap();
    http(
        ep,
        "POST",
        "/v3/kv/put",
        &json!({"key": b64("k"), "value": "", "lease": "5"}).to_string(),
    )
    .unwrap();
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(500));
        let (st, mut ka) = HttpStream::post(ep, "/v3/lease/keepalive", r#"{"ID":"5"}"#);
        assert_eq!(st, 200);
        let r = ka.next_json().unwrap();
        assert_eq!(r["result"]["TTL"], "2", "{r}");
        assert!(ka.next_line().is_none(), "one answer, then the stream ends");
    }
    let (_, v) = http(ep, "POST", "/v3/kv/range", &json!({"key": b64("k")}).to_string()).unwrap();
    assert!(v.contains(r#""count":"1""#), "alive after 4 s of keep-alives: {v}");
}

/// Gateway watch and lease answers, request by request, against etcd 3.4.
#[test]
fn gateway_watch_and_lease_match_etcd() {
    fn masked(mut v: Value) -> Value {
        mask_ids(&mut v);
        v
    }
    let call = |ep: &str, path: &str, body: &str| {
        let (st, text) = http(ep, "POST", path, body).unwrap();
        (st, masked(serde_json::from_str::<Value>(&text).unwrap()))
    };
    let etcd = Server::etcd();
    let concord = Server::concord();
    let script: &[(&str, &str)] = &[
        ("/v3/lease/grant", r#"{"TTL":"60","ID":"1000"}"#),
        ("/v3/lease/grant", r#"{"TTL":"60","ID":"1000"}"#),
        ("/v3/lease/grant", r#"{"TTL":"9000000001","ID":"1001"}"#),
        ("/v3/lease/grant", r#"{"TTL":"1","ID":"1002"}"#),
        ("/v3/kv/put", r#"{"key":"bGs=","value":"MQ==","lease":"1000"}"#),
        ("/v3/kv/put", r#"{"key":"bGs=","value":"Mg==","ignore_lease":true}"#),
        ("/v3/kv/put", r#"{"key":"bGs=","lease":"1000","ignore_lease":true}"#),
        ("/v3/lease/timetolive", r#"{"ID":"999"}"#),
        ("/v3/kv/lease/timetolive", r#"{"ID":"999","keys":true}"#),
        ("/v3/lease/revoke", r#"{"ID":"999"}"#),
        ("/v3/kv/lease/revoke", r#"{"ID":"1002"}"#),
        ("/v3/kv/lease/revoke", r#"{"ID":"1000"}"#),
        ("/v3/kv/range", r#"{"key":"bGs="}"#),
        ("/v3/lease/leases", r#"{}"#),
        ("/v3/kv/lease/leases", r#"{}"#),
        ("/v3/kv/compaction", r#"{"revision":"3"}"#),
    ];
    for (path, body) in script {
        assert_eq!(
            call(&concord.endpoint, path, body),
            call(&etcd.endpoint, path, body),
            "POST {path} {body}"
        );
    }
    for body in [r#"{"ID":"999"}"#, r#"{"ID":"0"}"#] {
        let ka = |ep: &str| masked(HttpStream::post(ep, "/v3/lease/keepalive", body).1.next_json().unwrap());
        assert_eq!(ka(&concord.endpoint), ka(&etcd.endpoint), "keepalive {body}");
    }
    // Watches whose whole answer is known at creation: a compacted start,
    // and history from revision 2 (both servers hold revisions 1..=4).
    for body in [
        r#"{"create_request":{"key":"bGs=","start_revision":"2"}}"#,
        r#"{"create_request":{"key":"AA==","range_end":"AA==","start_revision":"3","prev_kv":true}}"#,
        r#"{"create_request":{"key":"bGs=","start_revision":"4","watch_id":"7","filters":["NODELETE"]}}"#,
        r#"{"progress_request":{}}"#,
    ] {
        let lines = |ep: &str, n: usize| {
            let (st, mut s) = HttpStream::post(ep, "/v3/watch", body);
            assert_eq!(st, 200);
            (0..n).map(|_| masked(s.next_json().unwrap())).collect::<Vec<_>>()
        };
        let n = if body.contains("progress") || body.contains("NODELETE") {
            1
        } else {
            2
        };
        assert_eq!(lines(&concord.endpoint, n), lines(&etcd.endpoint, n), "watch {body}");
    }
}

#[test]
fn leases_survive_restart_with_a_fresh_ttl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut s = Server::concord_in(&dir, &[]);
    http(&s.endpoint, "POST", "/v3/lease/grant", r#"{"TTL":"30","ID":"9"}"#).unwrap();
    http(
        &s.endpoint,
        "POST",
        "/v3/kv/put",
        &json!({"key": b64("durable"), "value": "", "lease": "9"}).to_string(),
    )
    .unwrap();
    s.kill9();
    let s = Server::concord_in(&dir, &[]);
    let (_, v) = http(&s.endpoint, "POST", "/v3/lease/timetolive", r#"{"ID":"9","keys":true}"#).unwrap();
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["grantedTTL"], "30");
    assert_eq!(v["keys"], json!([b64("durable")]));
    let ttl: i64 = v["TTL"].as_str().unwrap().parse().unwrap();
    assert!((28..=30).contains(&ttl), "a full TTL again after restart: {ttl}");
    // Still attached: revoking deletes the key.
    http(&s.endpoint, "POST", "/v3/lease/revoke", r#"{"ID":"9"}"#).unwrap();
    let (_, v) = http(
        &s.endpoint,
        "POST",
        "/v3/kv/range",
        &json!({"key": b64("durable")}).to_string(),
    )
    .unwrap();
    assert!(!v.contains("kvs"), "{v}");
}

#[test]
fn progress_notify_interval_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::concord_in(
        &tmp.path().join("d"),
        &["--experimental-watch-progress-notify-interval", "300ms"],
    );
    let (_, mut w) = HttpStream::post(
        &s.endpoint,
        "/v3/watch",
        &json!({"create_request": {"key": b64("q"), "progress_notify": true}}).to_string(),
    );
    assert_eq!(w.next_json().unwrap()["result"]["created"], true);
    let p = w.next_json().unwrap();
    assert!(
        p["result"].get("events").is_none() && p["result"].get("created").is_none(),
        "{p}"
    );
    assert_eq!(p["result"]["header"]["revision"], "1");
}

/// Leases are capped (`--max-leases`): past the cap a grant is refused
/// with ResourceExhausted, and works again once one is revoked.
#[test]
fn lease_grants_are_capped() {
    let s = Server::concord_with(&["--max-leases", "3"]);
    let grant = |id: i64| {
        common::http(
            &s.endpoint,
            "POST",
            "/v3/lease/grant",
            &format!(r#"{{"TTL":"60","ID":"{id}"}}"#),
        )
        .unwrap()
    };
    for id in 1..=3 {
        assert_eq!(grant(id).0, 200);
    }
    let (status, body) = grant(4);
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too many leases (at most 3)"), "{body}");
    let out = common::etcdctl(&s.endpoint, &["lease", "grant", "60"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too many leases"),
        "{out:?}"
    );
    assert_eq!(
        common::http(&s.endpoint, "POST", "/v3/lease/revoke", r#"{"ID":"2"}"#)
            .unwrap()
            .0,
        200
    );
    assert_eq!(grant(4).0, 200);
}
