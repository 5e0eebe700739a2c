//! `GET /metrics` with etcd's names and types (checked against etcd 3.4's
//! own /metrics), values that follow what the member does.

mod common;

use common::{b64, err, etcdctl, http, ok, scrape, HttpStream, Server};

#[test]
fn values_follow_the_member() {
    let s = Server::concord();
    let ep = &s.endpoint;
    for k in ["a", "b", "c"] {
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(k), b64("v"));
        assert_eq!(http(ep, "POST", "/v3/kv/put", &body).unwrap().0, 200);
    }
    let del = format!(r#"{{"key":"{}"}}"#, b64("a"));
    assert_eq!(http(ep, "POST", "/v3/kv/deleterange", &del).unwrap().0, 200);
    let (_, _watch) = HttpStream::post(
        ep,
        "/v3/watch",
        &format!(r#"{{"create_request":{{"key":"{}"}}}}"#, b64("w")),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (v, types) = loop {
        let (v, types) = scrape(ep);
        if v["etcd_debugging_mvcc_watcher_total"] == 1.0 || std::time::Instant::now() > deadline {
            break (v, types);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(v["etcd_server_has_leader"], 1.0);
    assert_eq!(v["etcd_server_is_leader"], 1.0);
    assert_eq!(v["etcd_server_leader_changes_seen_total"], 1.0);
    assert_eq!(v["etcd_mvcc_put_total"], 3.0);
    assert_eq!(v["etcd_mvcc_delete_total"], 1.0);
    assert_eq!(v["etcd_debugging_mvcc_watcher_total"], 1.0);
    assert!(v["etcd_debugging_mvcc_keys_total"] >= 2.0);
    assert!(v["etcd_server_proposals_applied_total"] >= 4.0);
    assert!(v["etcd_mvcc_db_total_size_in_bytes"] > 0.0);
    assert_eq!(v["etcd_server_quota_backend_bytes"], 2147483648.0);
    assert_eq!(v[r#"etcd_server_version{server_version="3.4.0"}"#], 1.0);
    assert!(v["process_resident_memory_bytes"] > 1e6);
    assert!(v["process_open_fds"] > 0.0);
    // Every put waited for an fdatasync of the log.
    assert!(v["etcd_disk_wal_fsync_duration_seconds_count"] >= 4.0, "{v:?}");
    assert_eq!(
        v[r#"etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"}"#],
        v["etcd_disk_wal_fsync_duration_seconds_count"]
    );
    assert!(v.contains_key(r#"etcd_disk_backend_commit_duration_seconds_bucket{le="0.008"}"#));
    assert_eq!(types["etcd_disk_wal_fsync_duration_seconds"], "histogram");
    assert_eq!(types["etcd_mvcc_put_total"], "counter");
    // The gateway's requests, by route pattern and status.
    assert_eq!(
        v[r#"concord_gateway_requests_total{path="/v3/kv/put",status="200"}"#], 3.0,
        "{v:?}"
    );
    assert_eq!(
        v[r#"concord_gateway_requests_total{path="/v3/kv/deleterange",status="200"}"#],
        1.0
    );
}

#[test]
fn grpc_calls_are_counted_by_method_and_code() {
    let s = Server::concord();
    let ep = &s.endpoint;
    ok(etcdctl(ep, &["put", "k", "v"]));
    ok(etcdctl(ep, &["put", "k", "w"]));
    let e = err(etcdctl(ep, &["get", "k", "--rev", "1000"]));
    assert!(e.contains("future revision"), "{e}");
    let (v, types) = scrape(ep);
    let put = r#"grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary""#;
    assert_eq!(v[&format!("grpc_server_started_total{{{put}}}")], 2.0, "{v:?}");
    assert_eq!(v[&format!(r#"grpc_server_handled_total{{grpc_code="OK",{put}}}"#)], 2.0);
    let range = r#"grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary""#;
    assert_eq!(
        v[&format!(r#"grpc_server_handled_total{{grpc_code="OutOfRange",{range}}}"#)],
        1.0
    );
    assert_eq!(types["grpc_server_handled_total"], "counter");
    assert_eq!(types["etcd_server_has_leader"], "gauge");
}

#[test]
fn names_and_types_are_etcds() {
    let concord = Server::concord();
    let etcd = Server::etcd();
    // One gRPC call each, so the gRPC counters have series on both.
    ok(etcdctl(&concord.endpoint, &["put", "k", "v"]));
    ok(etcdctl(&etcd.endpoint, &["put", "k", "v"]));
    let (_, ours) = scrape(&concord.endpoint);
    let (_, theirs) = scrape(&etcd.endpoint);
    let mut checked = 0;
    for (name, kind) in &ours {
        // Concord's own, and the one process metric Go's collector lacks.
        if name.starts_with("concord_") || name == "process_threads" {
            continue;
        }
        assert_eq!(
            theirs.get(name),
            Some(kind),
            "{name} ({kind}) is not in etcd 3.4's /metrics as such"
        );
        checked += 1;
    }
    assert!(checked >= 15, "{checked}");
}
