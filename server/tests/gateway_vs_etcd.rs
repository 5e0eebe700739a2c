//! The JSON gateway, request by request, against Debian's etcd 3.4 started
//! beside it: both start empty, so every answer (revisions included) must
//! be the same, except the member's random IDs and the raft term.

mod common;

use common::{b64, http, mask_ids, raw, Server};
use serde_json::Value;

fn call(ep: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, text) = http(ep, "POST", path, body).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text:?}"));
    mask_ids(&mut v);
    (status, v)
}

/// Requests whose answers must be identical on both servers.
const SCRIPT: &[(&str, &str)] = &[
    ("/v3/kv/put", r#"{"key":"YQ==","value":"MQ=="}"#),
    ("/v3/kv/put", r#"{"key":"YQ==","value":"Mg==","prev_kv":true}"#),
    ("/v3/kv/put", r#"{"key":"Yg==","value":"Mg==","lease":"5"}"#),
    ("/v3/kv/put", r#"{"key":"Yg==","ignore_value":true}"#),
    ("/v3/kv/put", r#"{"key":"","value":"MQ=="}"#),
    ("/v3/kv/put", r#"{"key":"Yg==","value":"Mw==","ignore_value":true}"#),
    ("/v3/kv/put", r#"{"key":"Yg==","value":""}"#),
    ("/v3/kv/put", r#"{"key":"Yw==","value":"NA=="}"#),
    ("/v3/kv/range", r#"{"key":"YQ=="}"#),
    ("/v3/kv/range", r#"{}"#),
    ("/v3/kv/range", r#"{"key":"YQ==","range_end":"AA==","count_only":true}"#),
    ("/v3/kv/range", r#"{"key":"AA==","range_end":"AA=="}"#),
    ("/v3/kv/range", r#"{"key":"YQ==","range_end":"Yw=="}"#),
    ("/v3/kv/range", r#"{"key":"YQ==","revision":"99"}"#),
    ("/v3/kv/range", r#"{"key":"YQ==","revision":"2"}"#),
    (
        "/v3/kv/range",
        r#"{"key":"YQ==","range_end":"AA==","sort_order":"DESCEND","sort_target":"MOD","keys_only":true,"limit":"1"}"#,
    ),
    ("/v3/kv/range", r#"{"key":"YQ==","range_end":"AA==","limit":"2"}"#),
    (
        "/v3/kv/range",
        r#"{"key":"YQ==","rangeEnd":"AA==","sortOrder":"ASCEND","sortTarget":"VALUE","countOnly":false}"#,
    ),
    (
        "/v3/kv/range",
        r#"{"key":"YQ==","range_end":"AA==","min_mod_revision":"3","max_create_revision":"4"}"#,
    ),
    ("/v3/kv/range", r#"{"key":"YQ==","unknown_field":{"x":[1,2]}}"#),
    ("/v3beta/kv/range", r#"{"key":"YQ=="}"#),
    (
        "/v3/kv/txn",
        r#"{"compare":[{"key":"YQ==","target":"VALUE","value":"MQ=="}],"failure":[{"request_put":{"key":"YQ==","value":"Mw=="}},{"request_put":{"key":"YQ==","value":"Mw=="}}]}"#,
    ),
    (
        "/v3/kv/txn",
        r#"{"compare":[{"key":"YQ==","target":"VERSION","result":"GREATER","version":"0"}],"success":[{"request_range":{"key":"YQ=="}},{"request_put":{"key":"eA==","value":"MQ==","prev_kv":true}},{"request_range":{"key":"eA=="}},{"request_delete_range":{"key":"bm9uZQ=="}},{"request_txn":{"success":[{"request_range":{"key":"Yw=="}}]}}]}"#,
    ),
    (
        "/v3/kv/txn",
        r#"{"compare":[{"key":"YQ==","range_end":"Yw==","target":"MOD","result":"LESS","mod_revision":"100"}],"success":[{"request_delete_range":{"key":"YQ==","range_end":"Yw==","prev_kv":true}}]}"#,
    ),
    (
        "/v3/kv/txn",
        r#"{"compare":[{"key":"bm9uZQ==","target":"VALUE","result":"NOT_EQUAL","value":"MQ=="}],"success":[{"request_put":{"key":"bg==","value":"MQ=="}}],"failure":[{"request_put":{"key":"bw==","value":"MQ=="}}]}"#,
    ),
    (
        "/v3/kv/txn",
        r#"{"compare":[],"success":[{"request_range":{"key":"YQ==","revision":"999"}},{"request_put":{"key":"cQ==","value":"MQ=="}}]}"#,
    ),
    (
        "/v3/kv/txn",
        r#"{"success":[{"request_put":{"key":"cQ==","lease":"77"}}]}"#,
    ),
    ("/v3/kv/deleterange", r#"{"key":"Yw==","prev_kv":true}"#),
    ("/v3/kv/deleterange", r#"{"key":"Yw=="}"#),
    ("/v3/kv/deleterange", r#"{"key":""}"#),
    ("/v3/kv/compaction", r#"{"revision":"3"}"#),
    ("/v3/kv/compaction", r#"{"revision":"3"}"#),
    ("/v3/kv/compaction", r#"{"revision":"300"}"#),
    ("/v3/kv/range", r#"{"key":"YQ==","revision":"2"}"#),
    ("/v3/kv/range", r#"{"key":"AA==","range_end":"AA==","revision":"3"}"#),
    ("/v3/kv/compaction", r#"{"revision":"5","physical":true}"#),
    ("/v3/kv/range", r#"{"key":"AA==","range_end":"AA=="}"#),
];

#[test]
fn gateway_answers_like_etcd() {
    let etcd = Server::etcd();
    let concord = Server::concord();
    for (path, body) in SCRIPT {
        let want = call(&etcd.endpoint, path, body);
        let got = call(&concord.endpoint, path, body);
        assert_eq!(got, want, "POST {path} {body}");
    }
    // A txn with more ops than --max-txn-ops (128).
    let ops: Vec<String> = (0..129)
        .map(|i| format!(r#"{{"request_put":{{"key":"{}","value":""}}}}"#, b64(format!("k{i}"))))
        .collect();
    let body = format!(r#"{{"success":[{}]}}"#, ops.join(","));
    assert_eq!(
        call(&concord.endpoint, "/v3/kv/txn", &body),
        call(&etcd.endpoint, "/v3/kv/txn", &body)
    );
}

/// Malformed input: etcd's messages come from Go's decoder, ours from
/// serde; the status, code and shape must match and nothing may change.
#[test]
fn malformed_requests_get_clear_400s_and_change_nothing() {
    let etcd = Server::etcd();
    let concord = Server::concord();
    for body in [
        r#"{"key":"YQ==","#,
        r#"{"key":"!!!"}"#,
        r#"{"key":5}"#,
        r#"[1,2]"#,
        r#"{"key":"YQ==","value":"MQ==","lease":"x"}"#,
    ] {
        let (ws, w) = call(&etcd.endpoint, "/v3/kv/put", body);
        let (gs, g) = call(&concord.endpoint, "/v3/kv/put", body);
        assert_eq!((gs, &g["code"]), (ws, &w["code"]), "{body}: etcd said {w}, concord {g}");
        assert_eq!(gs, 400);
        let msg = g["message"].as_str().unwrap();
        assert!(!msg.is_empty() && g["error"] == g["message"], "{g}");
    }
    let (_, st) = call(
        &concord.endpoint,
        "/v3/kv/range",
        r#"{"key":"AA==","range_end":"AA=="}"#,
    );
    assert_eq!(st["header"]["revision"], "1", "no write happened: {st}");
    assert!(st.get("kvs").is_none());
}

/// Exact shapes, written out: base64 bytes, int64 as strings, zero values
/// omitted.
#[test]
fn json_shapes() {
    let s = Server::concord();
    let ep = &s.endpoint;
    let (st, v) = call(ep, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#);
    assert_eq!(st, 200);
    assert_eq!(
        v.to_string(),
        r#"{"header":{"cluster_id":"<masked>","member_id":"<masked>","raft_term":"<masked>","revision":"2"}}"#
    );
    let (_, v) = call(ep, "/v3/kv/range", r#"{"key":"Zm9v"}"#);
    assert_eq!(
        v["kvs"].to_string(),
        r#"[{"create_revision":"2","key":"Zm9v","mod_revision":"2","value":"YmFy","version":"1"}]"#
    );
    assert_eq!(v["count"], "1");
    assert!(v.get("more").is_none());
    let (_, v) = call(ep, "/v3/kv/range", r#"{"key":"Zm9v","count_only":true}"#);
    assert_eq!(v["count"], "1");
    assert!(v.get("kvs").is_none());
    let (st, v) = call(ep, "/v3/kv/range", r#"{"key":"Zm9v","revision":"9"}"#);
    assert_eq!(st, 400);
    assert_eq!(
        v.to_string(),
        r#"{"code":11,"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision"}"#
    );
    let (status, text) = http(ep, "GET", "/version", "").unwrap();
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"etcdcluster":"3.4.0","etcdserver":"3.4.0"}"#)
    );
    let (status, text) = http(ep, "GET", "/health", "").unwrap();
    assert_eq!((status, text.as_str()), (200, r#"{"health":"true"}"#));
    let (st, v) = call(ep, "/v3/maintenance/status", "{}");
    assert_eq!(st, 200);
    assert_eq!(v["version"], "3.4.0");
    assert_eq!(v["raftIndex"], "1");
    let (_, v) = call(ep, "/v3/cluster/member/list", "{}");
    assert_eq!(v["members"][0]["clientURLs"][0], format!("http://{ep}"));
    assert!(v["header"].get("revision").is_none());
}

#[test]
fn unknown_paths_answer_404_as_etcd() {
    let concord = Server::concord();
    let etcd = Server::etcd();
    for (method, path) in [
        ("GET", "/nonexistent"),
        ("POST", "/nonexistent"),
        ("POST", "/v3/kv/nope"),
        ("POST", "/v3/nope"),
    ] {
        let ours = raw(&concord.endpoint, method, path);
        assert_eq!(ours, raw(&etcd.endpoint, method, path), "{method} {path}");
        assert_eq!(ours.0, 404);
    }
}
