//! Durability: concurrent writers, `kill -9` of the server mid-load, a
//! restart on the same data: every acknowledged write is there, with the
//! revision it was acknowledged with.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{b64, http, Server};
use serde_json::Value;

#[test]
fn acknowledged_writes_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = Server::concord_in(&dir, &[]);
    let ep = server.endpoint.clone();
    let stop = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (ep, stop) = (ep.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (key, value) = (format!("w{w}/{n}"), format!("v{n}"));
                    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(&key), b64(&value));
                    match http(&ep, "POST", "/v3/kv/put", &body) {
                        Ok((200, text)) => {
                            let v: Value = serde_json::from_str(&text).unwrap();
                            let rev: i64 = v["header"]["revision"].as_str().unwrap().parse().unwrap();
                            acked.push((key, value, rev));
                        }
                        // The server died under us: this write was not acknowledged.
                        _ => break,
                    }
                    n += 1;
                }
                acked
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(String, String, i64)> = writers.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert!(acked.len() > 100, "the load ran: {} acknowledged writes", acked.len());

    let mut revs: Vec<i64> = acked.iter().map(|a| a.2).collect();
    revs.sort_unstable();
    revs.dedup();
    assert_eq!(revs.len(), acked.len(), "each acknowledged put has its own revision");

    let server = Server::concord_in(&dir, &[]);
    for (key, value, rev) in &acked {
        let (st, text) = http(
            &server.endpoint,
            "POST",
            "/v3/kv/range",
            &format!(r#"{{"key":"{}"}}"#, b64(key)),
        )
        .unwrap();
        assert_eq!(st, 200);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["kvs"][0]["value"], b64(value), "{key} lost after kill -9");
        assert_eq!(
            v["kvs"][0]["mod_revision"],
            rev.to_string(),
            "{key} has another revision"
        );
    }
    // The store continues from where it was: the next revision is new.
    let (_, text) = http(
        &server.endpoint,
        "POST",
        "/v3/kv/put",
        r#"{"key":"YWZ0ZXI=","value":""}"#,
    )
    .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let next: i64 = v["header"]["revision"].as_str().unwrap().parse().unwrap();
    assert!(next > *revs.last().unwrap());
    eprintln!("{} acknowledged writes checked after kill -9", acked.len());
}

#[test]
fn sigterm_stops_cleanly_and_keeps_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = Server::concord_in(&dir, &[]);
    let (st, _) = http(
        &server.endpoint,
        "POST",
        "/v3/kv/put",
        r#"{"key":"YQ==","value":"Yg=="}"#,
    )
    .unwrap();
    assert_eq!(st, 200);
    assert!(server.terminate().success());
    let server = Server::concord_in(&dir, &[]);
    let (_, text) = http(&server.endpoint, "POST", "/v3/kv/range", r#"{"key":"YQ=="}"#).unwrap();
    assert!(text.contains(r#""value":"Yg==""#), "{text}");
}

/// Every directory and file a first start creates (the data directory and
/// its missing parents, the log directory, the database, the first log
/// segment) has its entry made durable: the directory holding it is
/// fsynced after it is made. Checked on the system calls themselves.
#[test]
fn new_directories_and_files_are_fsynced_into_their_parents() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("a/b/data");
    let trace = tmp.path().join("trace");
    let (c, p) = (common::free_port(), common::free_port());
    let child = common::Reaped(
        std::process::Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=mkdir,mkdirat,openat,fsync", "-o"])
            .arg(&trace)
            .arg(env!("CARGO_BIN_EXE_concord"))
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &format!("http://127.0.0.1:{c}")])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{p}")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("strace runs (scripts/test installs it)"),
    );
    let endpoint = format!("127.0.0.1:{c}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !matches!(common::http(&endpoint, "GET", "/health", ""), Ok((200, _))) {
        assert!(std::time::Instant::now() < deadline, "not healthy");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Stop the server itself (killing strace would leave it running,
    // detached): its PID is the first traced thread.
    let mut child = child;
    let first = std::fs::read_to_string(&trace).unwrap();
    let pid = first.split_whitespace().next().unwrap().to_string();
    std::process::Command::new("kill").args(["-9", &pid]).status().unwrap();
    child.0.wait().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    // (thread, call, first quoted path, flags text, result)
    let calls: Vec<(String, String, String, String, String)> = text
        .lines()
        .filter_map(|l| {
            // strace pads the thread ID to a width of 5.
            let (tid, rest) = l.trim_start().split_once(' ')?;
            let rest = rest.trim_start();
            let (call, rest) = rest.split_once('(')?;
            let (args, ret) = rest.rsplit_once(" = ")?;
            let args = args.trim_end();
            let args = args.strip_suffix(')').unwrap_or(args);
            let ret = ret.split_whitespace().next().unwrap_or("");
            let path = args.split('"').nth(1).unwrap_or("").to_string();
            Some((tid.into(), call.into(), path, args.into(), ret.trim().into()))
        })
        .collect();
    let root = tmp.path().to_str().unwrap();
    let created: Vec<(usize, String)> = calls
        .iter()
        .enumerate()
        .filter(|(_, (_, call, path, args, ret))| {
            path.starts_with(root)
                && !path.ends_with("trace")
                && ((call.starts_with("mkdir") && ret == "0") || (call == "openat" && args.contains("O_CREAT")))
        })
        .map(|(i, (_, _, path, _, _))| (i, path.clone()))
        .collect();
    assert!(created.len() >= 6, "{created:?}\n{text}");
    for (i, path) in &created {
        let parent = std::path::Path::new(path)
            .parent()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let tid = &calls[*i].0;
        let synced = calls[*i..].iter().enumerate().any(|(j, (t, call, p, _, ret))| {
            call == "openat"
                && t == tid
                && *p == parent
                && calls[*i + j..]
                    .iter()
                    .any(|(t2, c2, _, a2, r2)| t2 == tid && c2 == "fsync" && a2 == ret && r2 == "0")
        });
        assert!(synced, "{path} was created but {parent} was not fsynced after:\n{text}");
    }
}
