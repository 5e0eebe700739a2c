//! Flags and their `CONCORD_*` environment twins, on the real binary.

mod common;

use std::time::{Duration, Instant};

use common::{http, Server};
use serde_json::Value;

fn put_body(key: &str, value_len: usize) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::STANDARD;
    format!(
        r#"{{"key":"{}","value":"{}"}}"#,
        e.encode(key),
        e.encode(vec![b'x'; value_len])
    )
}

fn txn_of_puts(n: usize) -> String {
    let ops: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"request_put":{{"key":"{}"}}}}"#, ["YQ==", "Yg==", "Yw=="][i]))
        .collect();
    format!(r#"{{"success":[{}]}}"#, ops.join(","))
}

#[test]
fn max_txn_ops_from_flag_and_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::concord_env(&tmp.path().join("a"), &[], &[("CONCORD_MAX_TXN_OPS", "2")]);
    let (st, body) = http(&s.endpoint, "POST", "/v3/kv/txn", &txn_of_puts(3)).unwrap();
    assert_eq!(st, 400);
    assert!(
        body.contains("etcdserver: too many operations in txn request"),
        "{body}"
    );
    assert_eq!(http(&s.endpoint, "POST", "/v3/kv/txn", &txn_of_puts(2)).unwrap().0, 200);

    let s = Server::concord_in(&tmp.path().join("b"), &["--max-txn-ops", "3"]);
    assert_eq!(http(&s.endpoint, "POST", "/v3/kv/txn", &txn_of_puts(3)).unwrap().0, 200);
}

#[test]
fn max_request_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::concord_in(&tmp.path().join("a"), &["--max-request-bytes", "4096"]);
    let (st, body) = http(&s.endpoint, "POST", "/v3/kv/put", &put_body("big", 5000)).unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("etcdserver: request is too large"), "{body}");
    assert_eq!(
        http(&s.endpoint, "POST", "/v3/kv/put", &put_body("small", 3000))
            .unwrap()
            .0,
        200
    );
}

#[test]
fn quota_refuses_writes_but_not_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::concord_in(&tmp.path().join("a"), &["--quota-backend-bytes", "3000000"]);
    let mut refused = None;
    for i in 0..200 {
        let (st, body) = http(
            &s.endpoint,
            "POST",
            "/v3/kv/put",
            &put_body(&format!("k{i}"), 64 * 1024),
        )
        .unwrap();
        if st != 200 {
            refused = Some((i, st, body));
            break;
        }
    }
    let (i, st, body) = refused.expect("the quota is reached");
    assert!(i > 0, "some writes fit");
    assert_eq!(st, 429);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "etcdserver: mvcc: database space exceeded");
    assert_eq!(v["code"], 8);
    let (st, _) = http(
        &s.endpoint,
        "POST",
        "/v3/kv/deleterange",
        r#"{"key":"aw==","range_end":"bA=="}"#,
    )
    .unwrap();
    assert_eq!(st, 200, "deletes are allowed over quota");
}

#[test]
fn periodic_auto_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::concord_in(
        &tmp.path().join("a"),
        &[
            "--auto-compaction-mode",
            "periodic",
            "--auto-compaction-retention",
            "1s",
        ],
    );
    for i in 0..3 {
        assert_eq!(
            http(&s.endpoint, "POST", "/v3/kv/put", &put_body("k", i)).unwrap().0,
            200
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (st, body) = http(&s.endpoint, "POST", "/v3/kv/range", r#"{"key":"aw==","revision":"2"}"#).unwrap();
        if st == 400 {
            assert!(body.contains("required revision has been compacted"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "no auto-compaction within 15 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The latest value is still there.
    let (st, body) = http(&s.endpoint, "POST", "/v3/kv/range", r#"{"key":"aw=="}"#).unwrap();
    assert_eq!(st, 200);
    assert!(body.contains(r#""version":"3""#), "{body}");
}

#[test]
fn default_data_dir_comes_from_the_name() {
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .current_dir(tmp.path())
        .args(["--name", "infra1", "--listen-client-urls", &url, "--log-level", "warn"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(&format!("127.0.0.1:{port}"), "GET", "/health", "").is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(tmp.path().join("infra1.concord").is_dir());
}

/// The raw answer (status line and headers, lowercased) to a request with `headers`.
fn raw_head(endpoint: &str, method: &str, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(endpoint).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {endpoint}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    text.split("\r\n\r\n").next().unwrap_or_default().to_string()
}

#[test]
fn cors_lets_a_page_send_its_token() {
    // A page on another origin asks first; Authorization must be allowed by
    // name (browsers do not let `*` cover it).
    let s = Server::concord();
    let preflight = "Origin: http://dashboard.example\r\nAccess-Control-Request-Method: POST\r\n\
                     Access-Control-Request-Headers: authorization,content-type\r\n";
    let head = raw_head(&s.endpoint, "OPTIONS", "/v3/kv/range", preflight);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    let allowed = head
        .lines()
        .find(|l| l.starts_with("access-control-allow-headers:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{head}"
    );
    // A configured list answers only its origins.
    let s = Server::concord_with(&["--cors", "http://ok.example"]);
    let ok = raw_head(
        &s.endpoint,
        "OPTIONS",
        "/v3/kv/range",
        &preflight.replace("dashboard", "ok"),
    );
    assert!(ok.contains("access-control-allow-origin: http://ok.example"), "{ok}");
    let other = raw_head(&s.endpoint, "OPTIONS", "/v3/kv/range", preflight);
    assert!(!other.contains("access-control-allow-origin"), "{other}");
}

/// The soft limit on open files is raised to the hard one at start (as Go
/// does for etcd), so idle connections cannot exhaust a small default.
#[cfg(target_os = "linux")]
#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let data = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn 256 && exec {} --data-dir {} --listen-client-urls {url} --advertise-client-urls {url}",
            env!("CARGO_BIN_EXE_concord"),
            data.path().display()
        ))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let limits = |pid: u32| -> (String, String) {
        let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap_or("")
            .to_string();
        let cols: Vec<&str> = line.split_whitespace().collect();
        (
            cols.get(3).unwrap_or(&"").to_string(),
            cols.get(4).unwrap_or(&"").to_string(),
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !matches!(
        common::http(&format!("127.0.0.1:{port}"), "GET", "/health", ""),
        Ok((200, _))
    ) {
        assert!(std::time::Instant::now() < deadline, "concord did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (soft, hard) = limits(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert_ne!(soft, "256", "the soft limit stayed at 256");
    assert_eq!(soft, hard);
}
