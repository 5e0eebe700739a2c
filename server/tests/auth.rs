//! Auth end to end: etcdctl's user/role/auth commands, a permission matrix
//! run against Concord and Debian's etcd 3.4 side by side (every answer,
//! code and message must be the same), tokens that expire or go stale,
//! auth state across a restart, and the limit on failed authentications.

mod common;

use common::{b64, err, etcdctl, ok, Server};
use serde_json::{json, Value};

const ROOT: &[&str] = &["--user", "root:rootpw"];

/// root, alice (role `app`: readwrite on prefix `app/`, read on `cfg`,
/// write on `[w/a, w/m)`), bob (no roles); auth on.
fn set_up(ep: &str) {
    for args in [
        &["user", "add", "root:rootpw"][..],
        &["user", "add", "alice:alicepw"],
        &["user", "add", "bob:bobpw"],
        &["role", "add", "app"],
        &["role", "grant-permission", "app", "readwrite", "app/", "--prefix=true"],
        &["role", "grant-permission", "app", "read", "cfg"],
        &["role", "grant-permission", "app", "write", "w/a", "w/m"],
        &["user", "grant-role", "alice", "app"],
        &["auth", "enable"],
    ] {
        ok(etcdctl(ep, args));
    }
}

fn with_root<'a>(args: &[&'a str]) -> Vec<&'a str> {
    ROOT.iter().copied().chain(args.iter().copied()).collect()
}

fn token(ep: &str, user: &str, pw: &str) -> String {
    let body = json!({"name": user, "password": pw}).to_string();
    let (status, body) = common::http(ep, "POST", "/v3/auth/authenticate", &body).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// A gateway call as `token`: (status, error message or "ok").
fn call(ep: &str, token: &str, path: &str, body: Value) -> (u16, String) {
    let (status, text) = common::http_auth(ep, path, &body.to_string(), token);
    let v: Value = serde_json::from_str(text.lines().next().unwrap_or("{}")).unwrap_or(Value::Null);
    let outcome = if status == 200 {
        // A watch answers 200 with its own verdict inside.
        match v.get("result") {
            Some(r) if r["canceled"] == json!(true) => {
                format!("canceled: {}", r["cancel_reason"].as_str().unwrap_or(""))
            }
            _ => "ok".to_string(),
        }
    } else {
        v["message"].as_str().unwrap_or(&text).to_string()
    };
    (status, outcome)
}

/// The matrix: a name, a path and a body for alice.
fn matrix(lease: i64) -> Vec<(&'static str, &'static str, Value)> {
    let r = |k: &str, end: &str| json!({"key": b64(k), "range_end": b64(end)});
    vec![
        ("get allowed key", "/v3/kv/range", json!({"key": b64("app/x")})),
        ("get allowed prefix", "/v3/kv/range", r("app/", "app0")),
        ("get inside prefix", "/v3/kv/range", r("app/a", "app/z")),
        ("get overlapping prefix", "/v3/kv/range", r("app", "app0")),
        ("get beyond prefix", "/v3/kv/range", r("app/", "app1")),
        ("get from key", "/v3/kv/range", r("app/", "\0")),
        ("get forbidden", "/v3/kv/range", json!({"key": b64("other")})),
        ("get read-only key", "/v3/kv/range", json!({"key": b64("cfg")})),
        ("get write-only", "/v3/kv/range", json!({"key": b64("w/b")})),
        (
            "put allowed",
            "/v3/kv/put",
            json!({"key": b64("app/x"), "value": b64("1")}),
        ),
        (
            "put read-only",
            "/v3/kv/put",
            json!({"key": b64("cfg"), "value": b64("1")}),
        ),
        (
            "put write-only",
            "/v3/kv/put",
            json!({"key": b64("w/b"), "value": b64("1")}),
        ),
        (
            "put write-only prev_kv",
            "/v3/kv/put",
            json!({"key": b64("w/b"), "value": b64("1"), "prev_kv": true}),
        ),
        (
            "put forbidden",
            "/v3/kv/put",
            json!({"key": b64("other"), "value": b64("1")}),
        ),
        ("delete inside", "/v3/kv/deleterange", r("w/b", "w/c")),
        ("delete overlapping", "/v3/kv/deleterange", r("w/", "w/c")),
        (
            "delete prev_kv write-only",
            "/v3/kv/deleterange",
            json!({"key": b64("w/b"), "prev_kv": true}),
        ),
        (
            "txn allowed",
            "/v3/kv/txn",
            json!({"compare": [{"key": b64("app/x"), "target": "VERSION", "version": "0"}],
                   "success": [{"request_put": {"key": b64("app/y"), "value": b64("2")}}],
                   "failure": [{"request_range": {"key": b64("cfg")}}]}),
        ),
        (
            "txn compare forbidden",
            "/v3/kv/txn",
            json!({"compare": [{"key": b64("other"), "target": "VERSION", "version": "0"}],
                   "success": [{"request_put": {"key": b64("app/y"), "value": b64("2")}}]}),
        ),
        (
            "txn forbidden in failure branch",
            "/v3/kv/txn",
            json!({"compare": [],
                   "success": [{"request_put": {"key": b64("app/y"), "value": b64("2")}}],
                   "failure": [{"request_put": {"key": b64("cfg"), "value": b64("2")}}]}),
        ),
        (
            "txn nested forbidden",
            "/v3/kv/txn",
            json!({"success": [{"request_txn": {"success": [{"request_delete_range": {"key": b64("other")}}]}}]}),
        ),
        (
            "watch allowed",
            "/v3/watch",
            json!({"create_request": {"key": b64("app/"), "range_end": b64("app0")}}),
        ),
        (
            "watch forbidden prefix",
            "/v3/watch",
            json!({"create_request": {"key": b64("o"), "range_end": b64("p")}}),
        ),
        ("compaction", "/v3/kv/compaction", json!({"revision": "1"})),
        (
            "lease revoke with forbidden key",
            "/v3/lease/revoke",
            json!({"ID": lease.to_string()}),
        ),
        (
            "lease ttl with keys",
            "/v3/lease/timetolive",
            json!({"ID": lease.to_string(), "keys": true}),
        ),
        (
            "lease ttl without keys",
            "/v3/lease/timetolive",
            json!({"ID": lease.to_string()}),
        ),
        ("user list", "/v3/auth/user/list", json!({})),
        ("auth disable", "/v3/auth/disable", json!({})),
        ("role add", "/v3/auth/role/add", json!({"name": "x"})),
    ]
}

/// Runs the matrix on a freshly set-up server; returns each outcome.
fn run_matrix(s: &Server) -> Vec<(String, u16, String)> {
    let ep = s.endpoint.as_str();
    set_up(ep);
    let root = token(ep, "root", "rootpw");
    // A lease with a key alice may not write.
    let (_, g) = common::http_auth(ep, "/v3/lease/grant", r#"{"TTL":"60","ID":"4242"}"#, &root);
    assert!(g.contains("4242"), "{g}");
    let put = json!({"key": b64("other"), "value": b64("v"), "lease": "4242"});
    assert_eq!(common::http_auth(ep, "/v3/kv/put", &put.to_string(), &root).0, 200);
    let alice = token(ep, "alice", "alicepw");
    let mut out = Vec::new();
    for (name, path, body) in matrix(4242) {
        let (status, outcome) = if path == "/v3/watch" {
            watch_verdict(ep, &alice, &body)
        } else {
            call(ep, &alice, path, body)
        };
        out.push((name.to_string(), status, outcome));
    }
    // No token at all; a token that was never issued.
    out.push((
        "no token".into(),
        0,
        call(ep, "", "/v3/kv/range", json!({"key": b64("app/x")})).1,
    ));
    out.push((
        "bad token".into(),
        0,
        call(ep, "nonsense.1", "/v3/kv/range", json!({"key": b64("app/x")})).1,
    ));
    // bob has no roles at all.
    let bob = token(ep, "bob", "bobpw");
    out.push((
        "bob".into(),
        0,
        call(ep, &bob, "/v3/kv/range", json!({"key": b64("app/x")})).1,
    ));
    out
}

/// The first answer of a gateway watch.
fn watch_verdict(ep: &str, token: &str, body: &Value) -> (u16, String) {
    let (status, mut stream) = common::HttpStream::post_auth(ep, "/v3/watch", &body.to_string(), token);
    let first = stream.next_json().unwrap_or(Value::Null);
    let r = &first["result"];
    let outcome = if r["canceled"] == json!(true) {
        format!("canceled: {}", r["cancel_reason"].as_str().unwrap_or(""))
    } else if r["created"] == json!(true) {
        "created".into()
    } else {
        first.to_string()
    };
    (status, outcome)
}

/// Where Concord is deliberately stricter than Debian's etcd 3.4.23, as
/// later etcd releases are (security fixes) and our issue asks: nested txns
/// are checked too, compaction is root's, and revoking a lease or listing
/// its keys needs write permission on each key.
const STRICTER_THAN_ETCD_34: [&str; 4] = [
    "txn nested forbidden",
    "compaction",
    "lease revoke with forbidden key",
    "lease ttl with keys",
];

#[test]
fn permission_matrix_matches_etcd() {
    let concord = run_matrix(&Server::concord_with(&["--bcrypt-cost", "4"]));
    let etcd = run_matrix(&Server::etcd());
    let mut diffs = Vec::new();
    for (c, e) in concord.iter().zip(&etcd) {
        if STRICTER_THAN_ETCD_34.contains(&c.0.as_str()) {
            assert_eq!((c.1, c.2.as_str()), (403, "etcdserver: permission denied"), "{}", c.0);
            assert_eq!(e.2, "ok", "{}: etcd 3.4 allows it", e.0);
            continue;
        }
        if c != e {
            diffs.push(format!("{}: concord {:?} / etcd {:?}", c.0, (c.1, &c.2), (e.1, &e.2)));
        }
    }
    assert!(diffs.is_empty(), "differences from etcd:\n{}", diffs.join("\n"));
    // And the matrix is not vacuous: both outcomes occur.
    assert!(concord.iter().any(|c| c.2 == "ok") && concord.iter().any(|c| c.2 == "etcdserver: permission denied"));
    eprintln!("{} cases, same answers as etcd 3.4", concord.len());
}

/// etcdctl's view of the same commands, errors included.
fn etcdctl_transcript(ep: &str) -> Vec<String> {
    let run = |args: &[&str]| {
        let out = etcdctl(ep, args);
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let error = stderr
            .lines()
            .filter(|l| l.starts_with("Error:"))
            .collect::<Vec<_>>()
            .join(" ");
        format!("{} => {stdout} {error}", args.join(" "))
    };
    let cmds: Vec<Vec<&str>> = vec![
        ["auth", "enable"].to_vec(),
        ["user", "add", "root:rootpw"].to_vec(),
        ["user", "add", "root:again"].to_vec(),
        ["user", "add", "carol:pw"].to_vec(),
        ["role", "add", "ops"].to_vec(),
        ["role", "add", "ops"].to_vec(),
        ["user", "grant-role", "carol", "nope"].to_vec(),
        ["user", "grant-role", "nobody", "ops"].to_vec(),
        ["user", "revoke-role", "carol", "ops"].to_vec(),
        ["role", "grant-permission", "ops", "read", "a", "b"].to_vec(),
        ["role", "grant-permission", "ops", "write", "c", "--from-key"].to_vec(),
        ["role", "revoke-permission", "ops", "x"].to_vec(),
        ["user", "grant-role", "carol", "ops"].to_vec(),
        ["user", "get", "carol"].to_vec(),
        ["user", "get", "nobody"].to_vec(),
        ["role", "get", "ops"].to_vec(),
        ["role", "list"].to_vec(),
        ["user", "list"].to_vec(),
        ["auth", "enable"].to_vec(),
        with_root(&["user", "delete", "root"]),
        with_root(&["user", "revoke-role", "root", "root"]),
        with_root(&["role", "delete", "root"]),
        ["--user", "carol:pw", "get", "a"].to_vec(),
        ["--user", "carol:pw", "put", "a", "1"].to_vec(),
        ["--user", "carol:pw", "put", "zzz", "1"].to_vec(),
        ["--user", "carol:pw", "user", "list"].to_vec(),
        ["--user", "carol:bad", "get", "a"].to_vec(),
        with_root(&["role", "revoke-permission", "ops", "a", "b"]),
        with_root(&["role", "get", "ops"]),
        with_root(&["user", "passwd", "carol", "--interactive=false"]),
        with_root(&["user", "delete", "carol"]),
        with_root(&["role", "delete", "ops"]),
        with_root(&["auth", "disable"]),
        ["user", "list"].to_vec(),
    ];
    cmds.iter().map(|c| run(c)).collect()
}

#[test]
fn etcdctl_auth_commands_match_etcd() {
    let c = Server::concord();
    let e = Server::etcd();
    let (tc, te) = (etcdctl_transcript(&c.endpoint), etcdctl_transcript(&e.endpoint));
    for (a, b) in tc.iter().zip(&te) {
        assert_eq!(a, b, "concord vs etcd");
    }
    assert_eq!(tc.len(), te.len());
}

#[test]
fn tokens_expire_and_go_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::concord_in(&dir.path().join("d"), &["--auth-token-ttl", "2", "--bcrypt-cost", "4"]);
    let ep = s.endpoint.clone();
    let ep = ep.as_str();
    set_up(ep);
    let key = json!({"key": b64("app/x")});

    // Unused for longer than the TTL: gone.
    let t = token(ep, "alice", "alicepw");
    assert_eq!(call(ep, &t, "/v3/kv/range", key.clone()).1, "ok");
    std::thread::sleep(std::time::Duration::from_millis(2600));
    assert_eq!(
        call(ep, &t, "/v3/kv/range", key.clone()),
        (401, "etcdserver: invalid auth token".into())
    );

    // Any change to users or roles makes outstanding tokens stale.
    let t = token(ep, "alice", "alicepw");
    ok(etcdctl(ep, &with_root(&["role", "add", "other"])));
    assert_eq!(
        call(ep, &t, "/v3/kv/range", key.clone()),
        (400, "etcdserver: revision of auth store is old".into())
    );
    let t = token(ep, "alice", "alicepw");
    ok(etcdctl_stdin_root(
        ep,
        &["user", "passwd", "alice", "--interactive=false"],
        "newpw\n",
    ));
    assert_eq!(call(ep, &t, "/v3/kv/range", key.clone()).0, 400);
    let e = err(etcdctl(ep, &["--user", "alice:alicepw", "get", "app/x"]));
    assert!(e.contains("authentication failed"), "{e}");
    let t = token(ep, "alice", "newpw");
    assert_eq!(call(ep, &t, "/v3/kv/range", key.clone()).1, "ok");

    // Revoking the role takes effect at once (the token is stale too).
    ok(etcdctl(ep, &with_root(&["user", "revoke-role", "alice", "app"])));
    let t = token(ep, "alice", "newpw");
    assert_eq!(
        call(ep, &t, "/v3/kv/range", key.clone()).1,
        "etcdserver: permission denied"
    );

    // Everything survives kill -9 and restart.
    s.restart();
    let out = ok(etcdctl(ep, &with_root(&["user", "get", "alice"])));
    assert!(out.contains("User: alice") && !out.contains("app"), "{out}");
    let out = ok(etcdctl(ep, &with_root(&["role", "get", "app"])));
    assert!(out.contains("[app/, app0)") && out.contains("[w/a, w/m)"), "{out}");
    assert_eq!(
        call(ep, "", "/v3/kv/range", key.clone()).1,
        "etcdserver: user name is empty"
    );
    let e = err(etcdctl(ep, &["--user", "alice:alicepw", "get", "app/x"]));
    assert!(e.contains("authentication failed"), "{e}");
    let e = err(etcdctl(ep, &["--user", "alice:newpw", "get", "app/x"]));
    assert!(e.contains("permission denied"), "{e}");
}

fn etcdctl_stdin_root(ep: &str, args: &[&str], stdin: &str) -> std::process::Output {
    common::etcdctl_stdin(ep, &with_root(args), stdin)
}

/// A POST to `endpoint` from the loopback address `source`.
fn http_from(source: &str, endpoint: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&src.into()).unwrap();
    let dst: std::net::SocketAddr = endpoint.parse().unwrap();
    socket.connect(&dst.into()).unwrap();
    let mut s: std::net::TcpStream = socket.into();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, out)
}

#[test]
fn failed_authentications_are_limited() {
    let s = Server::concord_with(&["--bcrypt-cost", "4"]);
    let ep = s.endpoint.as_str();
    set_up(ep);
    let auth = |user: &str, pw: &str| {
        let body = json!({"name": user, "password": pw}).to_string();
        let (status, body) = common::http(ep, "POST", "/v3/auth/authenticate", &body).unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        (status, v["message"].as_str().unwrap_or("ok").to_string())
    };
    for _ in 0..5 {
        assert_eq!(
            auth("alice", "guess").1,
            "etcdserver: authentication failed, invalid user ID or password"
        );
    }
    // Refused before the password is looked at, even the right one.
    assert_eq!(auth("alice", "alicepw"), (429, "etcdserver: too many requests".into()));
    assert_eq!(auth("bob", "bobpw").1, "ok", "other users are not affected");
    // From another address alice still gets in: failures from one place
    // do not lock her out everywhere.
    let body = json!({"name": "alice", "password": "alicepw"}).to_string();
    let (status, answer) = http_from("127.0.0.2", ep, "/v3/auth/authenticate", &body);
    assert_eq!(status, 200, "{answer}");
    // One failure is forgiven every 2 s.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(auth("alice", "alicepw").1, "ok");

    // Per source address: 20 failures over any users.
    for i in 0..25 {
        auth(&format!("nobody{i}"), "x");
    }
    assert_eq!(auth("bob", "bobpw"), (429, "etcdserver: too many requests".into()));
}

#[test]
fn jwt_tokens() {
    let keys = tempfile::tempdir().unwrap();
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (private, public) = (keys.path().join("jwt.key"), keys.path().join("jwt.pub"));
    std::fs::write(&private, kp.serialize_pem()).unwrap();
    std::fs::write(&public, kp.public_key_pem()).unwrap();
    let spec = format!(
        "jwt,pub-key={},priv-key={},sign-method=ES256,ttl=1m",
        public.display(),
        private.display()
    );
    let s = Server::concord_with(&["--auth-token", &spec, "--bcrypt-cost", "4"]);
    let ep = s.endpoint.as_str();
    set_up(ep);

    let t = token(ep, "alice", "alicepw");
    let parts: Vec<&str> = t.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {t}");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["username"], "alice");
    assert!(
        claims["revision"].as_u64().unwrap() > 0 && claims["exp"].as_u64().unwrap() > 0,
        "{claims}"
    );
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");

    assert_eq!(
        call(ep, &t, "/v3/kv/put", json!({"key": b64("app/j"), "value": b64("1")})).1,
        "ok"
    );
    assert_eq!(
        call(ep, &t, "/v3/kv/put", json!({"key": b64("other"), "value": b64("1")})).1,
        "etcdserver: permission denied"
    );
    // A forged token (alice's claims with root's name) does not verify.
    let forged_claims =
        serde_json::to_vec(&json!({"username": "root", "revision": claims["revision"], "exp": claims["exp"]})).unwrap();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged_claims),
        parts[2]
    );
    assert_eq!(
        call(ep, &forged, "/v3/kv/range", json!({"key": b64("other")})),
        (401, "etcdserver: invalid auth token".into())
    );
    // etcdctl works with JWT tokens too.
    ok(etcdctl(ep, &["--user", "alice:alicepw", "put", "app/k", "v"]));
}

/// With auth on, a watch stream needs an identity: an anonymous one is
/// refused at once (etcd opens it and refuses each watch in it), while a
/// user's stream opens and its watches are judged one by one.
#[test]
fn an_anonymous_watch_stream_is_refused_while_auth_is_on() {
    let s = Server::concord_with(&["--bcrypt-cost", "4"]);
    let ep = &s.endpoint;
    set_up(ep);
    let body = json!({"create_request": {"key": b64("app/x")}});
    let (status, err) = common::http(ep, "POST", "/v3/watch", &body.to_string()).unwrap();
    assert_eq!(status, 400, "{err}");
    assert!(err.contains("user name is empty"), "{err}");
    let out = common::etcdctl(ep, &["watch", "app/x"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("user name is empty"),
        "{out:?}"
    );
    let alice = token(ep, "alice", "alicepw");
    assert_eq!(watch_verdict(ep, &alice, &body), (200, "created".into()));
}
