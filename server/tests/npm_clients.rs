//! npm's `etcd3` package (gRPC, with its own election recipe) against the
//! real binary and against etcd 3.4, unchanged: its election interoperates
//! with the Election service, its maintenance calls answer.

mod common;

use std::process::Command;

use common::Server;

fn run_check(s: &Server) {
    let (host, port) = s.endpoint.split_once(':').unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/npm");
    let out = Command::new("timeout")
        .args(["90", "node", "etcd3_check.mjs", host, port])
        .current_dir(dir)
        .output()
        .expect("node runs (scripts/test installs node and the npm packages)");
    assert!(
        out.status.success(),
        "npm etcd3 check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn npm_etcd3_election_and_maintenance_on_concord() {
    run_check(&Server::concord());
}

#[test]
fn npm_etcd3_election_and_maintenance_on_etcd() {
    run_check(&Server::etcd());
}
