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
