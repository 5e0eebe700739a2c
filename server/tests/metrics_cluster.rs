//! `/metrics` of a real 3-member cluster: the counters move with load, a
//! leader change and lost members; Prometheus' own parser (`promtool
//! check metrics`) reads a scrape; and the alerting rules in
//! `examples/prometheus` (checked and unit-tested with `promtool`) and
//! the etcd mixin's rules only use names Concord exports.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{b64, etcdctl, http, ok, scrape};

/// `promtool`, which CI installs (Debian's `prometheus` package).
fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "promtool is needed (apt-get install prometheus)"
    );
    Command::new("promtool")
}

/// Waits until `cond` holds; panics with `what` after `within`.
fn wait_for(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A member's ID in hex, as the peer metrics label it.
fn member_hex(endpoint: &str) -> String {
    let (_, body) = http(endpoint, "POST", "/v3/maintenance/status", "{}").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id: u64 = v["header"]["member_id"].as_str().unwrap().parse().unwrap();
    format!("{id:x}")
}

fn value(v: &BTreeMap<String, f64>, series: &str) -> f64 {
    v.get(series).copied().unwrap_or(0.0)
}

fn put(endpoint: &str, key: &str) -> u16 {
    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(key), b64("v"));
    http(endpoint, "POST", "/v3/kv/put", &body).map_or(0, |(s, _)| s)
}

/// The metric names an alerting expression uses (histogram series
/// names are taken back to their family).
fn names_in(expr: &str, families: &BTreeMap<String, String>) -> BTreeSet<String> {
    // Label names are not metric names: drop matchers (`{…}`) and
    // grouping clauses (`by (…)`) first.
    let mut bare = String::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth == 0 => bare.push(c),
            _ => {}
        }
    }
    for clause in ["by (", "without ("] {
        while let Some(at) = bare.find(clause) {
            let end = bare[at..].find(')').map_or(bare.len(), |e| at + e + 1);
            bare.replace_range(at..end, " ");
        }
    }
    bare.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| {
            ["etcd_", "grpc_", "concord_", "process_"]
                .iter()
                .any(|p| t.starts_with(p))
        })
        .map(|t| {
            for suffix in ["_bucket", "_count", "_sum"] {
                if let Some(base) = t.strip_suffix(suffix) {
                    if families.get(base).is_some_and(|k| k == "histogram") {
                        return base.to_string();
                    }
                }
            }
            t.to_string()
        })
        .collect()
}

/// Every alert expression in a Prometheus rules file.
fn rule_exprs(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let mut exprs = Vec::new();
    for group in docs[0]["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            exprs.push(rule["expr"].as_str().unwrap().to_string());
        }
    }
    exprs
}

/// The metrics the etcd mixin's alerts and dashboard read (the names,
/// from etcd's `contrib/mixin`; its rules are not copied here).
const ETCD_MIXIN_NAMES: &[&str] = &[
    "etcd_server_has_leader",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_failed_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total",
    "etcd_server_proposals_pending",
    "etcd_network_peer_sent_failures_total",
    "etcd_network_peer_round_trip_time_seconds",
    "etcd_network_peer_sent_bytes_total",
    "etcd_network_peer_received_bytes_total",
    "etcd_network_client_grpc_sent_bytes_total",
    "etcd_network_client_grpc_received_bytes_total",
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_debugging_mvcc_db_total_size_in_bytes",
    "etcd_server_quota_backend_bytes",
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds",
    "process_resident_memory_bytes",
];

#[test]
fn cluster_metrics_follow_load_leader_changes_and_lost_members() {
    let mut c = Cluster::start(3, &["--metrics", "extensive"]);
    let leader = c.wait_leader(Duration::from_secs(10));
    let eps = c.endpoints();
    let ids: Vec<String> = eps.iter().map(|e| member_hex(e)).collect();

    let before: Vec<_> = eps.iter().map(|e| scrape(e).0).collect();
    let leaders: f64 = before.iter().map(|v| value(v, "etcd_server_is_leader")).sum();
    assert_eq!(leaders, 1.0, "exactly one member leads");
    assert!(before.iter().all(|v| value(v, "etcd_server_has_leader") == 1.0));

    // Load: 20 puts through the leader's gateway, one through a
    // follower's gRPC, one lease.
    for i in 0..20 {
        assert_eq!(put(&eps[leader], &format!("k{i}")), 200);
    }
    let follower = (leader + 1) % 3;
    ok(etcdctl(&eps[follower], &["put", "grpc", "v"]));
    let (status, _) = http(&eps[leader], "POST", "/v3/lease/grant", r#"{"TTL":"60"}"#).unwrap();
    assert_eq!(status, 200);

    for (i, ep) in eps.iter().enumerate() {
        let was = &before[i];
        // The leader talks to every follower; a follower only to the leader.
        let peers: Vec<&String> = if i == leader {
            ids.iter().filter(|id| **id != ids[i]).collect()
        } else {
            vec![&ids[leader]]
        };
        wait_for(
            Duration::from_secs(10),
            &format!("member {i}'s metrics follow the load"),
            || {
                let v = scrape(ep).0;
                let applied = value(&v, "etcd_server_proposals_applied_total");
                value(&v, "etcd_server_proposals_committed_total") >= applied
                    && applied >= value(was, "etcd_server_proposals_applied_total") + 22.0
                    && value(&v, "etcd_mvcc_put_total") >= 21.0
                    && value(&v, "etcd_debugging_lease_granted_total") == 1.0
                    && peers.iter().all(|p| {
                        value(&v, &format!(r#"etcd_network_peer_sent_bytes_total{{To="{p}"}}"#)) > 0.0
                            && value(&v, &format!(r#"etcd_network_peer_received_bytes_total{{From="{p}"}}"#)) > 0.0
                    })
                    && ids.iter().filter(|id| **id != ids[i]).all(|p| {
                        value(
                            &v,
                            &format!(r#"etcd_network_peer_round_trip_time_seconds_count{{To="{p}"}}"#),
                        ) > 0.0
                    })
            },
        );
    }
    let v = scrape(&eps[leader]).0;
    assert!(value(&v, "concord_write_batch_size_count") > 0.0);
    assert_eq!(value(&v, "etcd_server_proposals_pending"), 0.0);
    let f = scrape(&eps[follower]).0;
    let put_latency =
        r#"grpc_server_handling_seconds_count{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}"#;
    assert_eq!(value(&f, put_latency), 1.0, "--metrics extensive times each call");
    assert!(value(&f, "etcd_network_client_grpc_received_bytes_total") > 0.0);
    assert!(value(&f, "etcd_network_client_grpc_sent_bytes_total") > 0.0);

    // Prometheus' own parser reads a scrape. Its only complaints may be
    // about etcd's own names (etcd breaks the naming lints too).
    let (_, text) = http(&eps[leader], "GET", "/metrics", "").unwrap();
    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(matches!(out.status.code(), Some(0 | 3)), "promtool: {said}");
    for line in said.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.starts_with("etcd_"), "promtool: {line}");
    }

    // The leader dies: the others see a new leader, and count their
    // failed sends to it.
    let changes: Vec<f64> = eps
        .iter()
        .map(|e| value(&scrape(e).0, "etcd_server_leader_changes_seen_total"))
        .collect();
    c.members[leader].kill9();
    let new_leader = c.wait_leader(Duration::from_secs(15));
    let dead = &ids[leader];
    for i in (0..3).filter(|&i| i != leader) {
        wait_for(Duration::from_secs(10), "a leader change is counted", || {
            let v = scrape(&eps[i]).0;
            value(&v, "etcd_server_leader_changes_seen_total") > changes[i]
                && value(&v, "etcd_server_has_leader") == 1.0
        });
    }
    wait_for(Duration::from_secs(10), "sends to the dead member fail", || {
        value(
            &scrape(&eps[new_leader]).0,
            &format!(r#"etcd_network_peer_sent_failures_total{{To="{dead}"}}"#),
        ) > 0.0
    });

    // With a second member gone there is no quorum: a write fails, and
    // is counted as a failed proposal.
    let last = (0..3).find(|&i| i != leader && i != new_leader).unwrap();
    c.members[new_leader].kill9();
    let failed = value(&scrape(&eps[last]).0, "etcd_server_proposals_failed_total");
    assert_ne!(put(&eps[last], "lost"), 200);
    let v = scrape(&eps[last]).0;
    assert!(value(&v, "etcd_server_proposals_failed_total") > failed, "{v:?}");
    assert_eq!(value(&v, "etcd_server_proposals_pending"), 0.0);
    assert_eq!(value(&v, "etcd_server_has_leader"), 0.0);
}

#[test]
fn alerting_rules_use_only_exported_names() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/prometheus");
    let check = promtool()
        .args(["check", "rules", "alerts.yml"])
        .current_dir(&examples)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let test = promtool()
        .args(["test", "rules", "alerts.test.yml"])
        .current_dir(&examples)
        .output()
        .unwrap();
    assert!(test.status.success(), "{}", String::from_utf8_lossy(&test.stdout));

    // A member with every family populated: extensive metrics, a gRPC
    // call, a gateway call, a watcher, a peer.
    let c = Cluster::start(2, &["--metrics", "extensive"]);
    let ep = &c.endpoints()[0];
    ok(etcdctl(ep, &["put", "k", "v"]));
    assert_eq!(put(ep, "k2"), 200);
    let mut families = BTreeMap::new();
    wait_for(Duration::from_secs(10), "peer round trips are measured", || {
        families = scrape(ep).1;
        families.contains_key("etcd_network_peer_round_trip_time_seconds")
    });
    let mut used = BTreeSet::new();
    for expr in rule_exprs(&examples.join("alerts.yml")) {
        used.extend(names_in(&expr, &families));
    }
    assert!(used.len() >= 12, "{used:?}");
    used.extend(ETCD_MIXIN_NAMES.iter().map(|s| s.to_string()));
    // A family with no series is left out of a scrape: send failures
    // appear with the first failed send (the test above makes one).
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !families.contains_key(*n) && *n != "etcd_network_peer_sent_failures_total")
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
}
