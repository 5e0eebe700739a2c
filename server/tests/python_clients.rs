//! Third-party clients from PyPI against the real binary, unchanged:
//! etcd3gw speaks the JSON gateway (KV, txn-based replace, lease, watch).
//! (The gRPC etcd3 client with a password runs over TLS, in tls.rs: its
//! grpcio sends call credentials only on secure channels.)

mod common;

use std::process::Command;

use common::Server;

#[test]
fn etcd3gw_works_unchanged() {
    let s = Server::concord();
    let (host, port) = s.endpoint.split_once(':').unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/etcd3gw_check.py");
    let out = Command::new("timeout")
        .args(["60", "python3", script, host, port])
        .output()
        .expect("python3 runs (scripts/test installs etcd3gw)");
    assert!(
        out.status.success(),
        "etcd3gw check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
