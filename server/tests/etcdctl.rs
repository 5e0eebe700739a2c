//! Debian's etcdctl 3.4 against the real `concord` binary.

mod common;

use common::{err, etcdctl, etcdctl_stdin, ok, Server};

#[test]
fn put_get_with_options() {
    let s = Server::concord();
    let ep = s.endpoint.as_str();
    assert_eq!(ok(etcdctl(ep, &["put", "foo", "bar"])), "OK\n");
    for (k, v) in [("foo/a", "3"), ("foo/b", "1"), ("foo/c", "2"), ("zzz", "x")] {
        ok(etcdctl(ep, &["put", k, v]));
    }
    assert_eq!(ok(etcdctl(ep, &["get", "foo"])), "foo\nbar\n");
    assert_eq!(
        ok(etcdctl(ep, &["get", "foo/", "--prefix", "--keys-only"])),
        "foo/a\n\nfoo/b\n\nfoo/c\n\n"
    );
    assert_eq!(
        ok(etcdctl(ep, &["get", "foo/", "--prefix", "--limit", "2"])),
        "foo/a\n3\nfoo/b\n1\n"
    );
    assert_eq!(
        ok(etcdctl(
            ep,
            &["get", "foo/", "--prefix", "--sort-by", "VALUE", "--order", "DESCEND"]
        )),
        "foo/a\n3\nfoo/c\n2\nfoo/b\n1\n"
    );
    assert_eq!(
        ok(etcdctl(
            ep,
            &[
                "get",
                "foo/",
                "--prefix",
                "--sort-by",
                "MODIFY",
                "--order",
                "DESCEND",
                "--limit",
                "1"
            ]
        )),
        "foo/c\n2\n"
    );
    assert_eq!(
        ok(etcdctl(ep, &["get", "", "--from-key", "--keys-only"]))
            .lines()
            .filter(|l| !l.is_empty())
            .count(),
        5
    );
    // JSON output carries the header and the revisions.
    let json = ok(etcdctl(ep, &["get", "foo", "-w", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kvs"][0]["create_revision"], 2);
    assert_eq!(v["kvs"][0]["version"], 1);
    assert_eq!(v["header"]["revision"], 6);
    assert_eq!(v["count"], 1);
}

#[test]
fn revisions_delete_and_compaction() {
    let s = Server::concord();
    let ep = s.endpoint.as_str();
    ok(etcdctl(ep, &["put", "k", "v1"])); // rev 2
    ok(etcdctl(ep, &["put", "k", "v2"])); // rev 3
    ok(etcdctl(ep, &["put", "k", "v3"])); // rev 4
    assert_eq!(ok(etcdctl(ep, &["get", "k", "--rev", "2"])), "k\nv1\n");
    assert_eq!(ok(etcdctl(ep, &["get", "k", "--rev", "3"])), "k\nv2\n");
    assert!(err(etcdctl(ep, &["get", "k", "--rev", "99"])).contains("required revision is a future revision"));

    assert_eq!(ok(etcdctl(ep, &["del", "k", "--prev-kv"])), "1\nk\nv3\n"); // rev 5
    assert_eq!(ok(etcdctl(ep, &["get", "k"])), "");
    assert_eq!(ok(etcdctl(ep, &["get", "k", "--rev", "4"])), "k\nv3\n");
    assert_eq!(ok(etcdctl(ep, &["del", "nothing"])), "0\n");

    assert_eq!(ok(etcdctl(ep, &["compaction", "3"])), "compacted revision 3\n");
    let e = err(etcdctl(ep, &["get", "k", "--rev", "2"]));
    assert!(
        e.contains("etcdserver: mvcc: required revision has been compacted"),
        "{e}"
    );
    assert_eq!(ok(etcdctl(ep, &["get", "k", "--rev", "3"])), "k\nv2\n");
    let e = err(etcdctl(ep, &["compaction", "3"]));
    assert!(e.contains("required revision has been compacted"), "{e}");
    let e = err(etcdctl(ep, &["compaction", "100"]));
    assert!(e.contains("required revision is a future revision"), "{e}");
    // --physical waits for the compaction to be applied.
    assert_eq!(
        ok(etcdctl(ep, &["compaction", "--physical", "5"])),
        "compacted revision 5\n"
    );
}

#[test]
fn txn_from_stdin() {
    let s = Server::concord();
    let ep = s.endpoint.as_str();
    ok(etcdctl(ep, &["put", "user", "alice"]));
    let script = "value(\"user\") = \"alice\"\n\nput user bob\nget user\n\nput failed yes\n\n";
    assert_eq!(ok(etcdctl_stdin(ep, &["txn"], script)), "SUCCESS\n\nOK\n\nuser\nbob\n");
    assert_eq!(ok(etcdctl_stdin(ep, &["txn"], script)), "FAILURE\n\nOK\n");
    assert_eq!(ok(etcdctl(ep, &["get", "failed"])), "failed\nyes\n");
    let script = "mod(\"user\") > \"0\"\n\nput a 1\nput a 2\n\n\n";
    let e = err(etcdctl_stdin(ep, &["txn"], script));
    assert!(e.contains("etcdserver: duplicate key given in txn request"), "{e}");
}

#[test]
fn status_and_member_list() {
    let s = Server::concord();
    let ep = s.endpoint.as_str();
    let out = ok(etcdctl(ep, &["endpoint", "status", "-w", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let st = &v[0]["Status"];
    assert_eq!(st["version"], "3.4.0");
    assert_eq!(st["leader"], st["header"]["member_id"]);
    let members = ok(etcdctl(ep, &["member", "list"]));
    assert!(
        members.contains(&format!("started, default, http://localhost:2380, http://{ep}, false")),
        "{members}"
    );
    let health = etcdctl(ep, &["endpoint", "health"]);
    assert!(health.status.success());
    assert!(String::from_utf8_lossy(&health.stderr).contains("is healthy"));
}

#[test]
fn errors_keep_etcds_messages() {
    let s = Server::concord();
    let ep = s.endpoint.as_str();
    let e = err(etcdctl(ep, &["put", "k", "v", "--lease", "1234"]));
    assert!(e.contains("etcdserver: requested lease not found"), "{e}");
    let e = err(etcdctl(ep, &["put", "k", "--ignore-value"]));
    assert!(e.contains("etcdserver: key not found"), "{e}");
    let big = "x".repeat(1_700_000);
    let e = err(etcdctl_stdin(ep, &["put", "big"], &big));
    assert!(e.contains("etcdserver: request is too large"), "{e}");
    assert_eq!(ok(etcdctl(ep, &["get", "big"])), "", "a refused write changes nothing");
}

/// etcdctl's JSON output (the gRPC answers, decoded by etcd's own client)
/// for the same commands against etcd 3.4 and Concord, IDs masked.
#[test]
fn json_output_matches_etcd() {
    fn masked(out: std::process::Output) -> serde_json::Value {
        let text = ok(out);
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        common::mask_ids(&mut v);
        v
    }
    let etcd = Server::etcd();
    let concord = Server::concord();
    let steps: &[(&[&str], &str)] = &[
        (&["put", "a", "1", "-w", "json"], ""),
        (&["put", "a", "2", "--prev-kv", "-w", "json"], ""),
        (&["put", "b", "3", "-w", "json"], ""),
        (&["get", "a", "-w", "json"], ""),
        (
            &[
                "get",
                "",
                "--from-key",
                "--sort-by",
                "VERSION",
                "--order",
                "DESCEND",
                "-w",
                "json",
            ],
            "",
        ),
        (
            &["get", "a", "--prefix", "--keys-only", "--limit", "1", "-w", "json"],
            "",
        ),
        (&["get", "a", "--rev", "2", "-w", "json"], ""),
        (
            &["txn", "-w", "json"],
            "version(\"a\") = \"2\"\n\nput c 4\nget a\ndel b\n\nget z\n\n",
        ),
        (&["del", "a", "--prev-kv", "-w", "json"], ""),
    ];
    for (args, stdin) in steps {
        let want = masked(etcdctl_stdin(&etcd.endpoint, args, stdin));
        let got = masked(etcdctl_stdin(&concord.endpoint, args, stdin));
        assert_eq!(got, want, "etcdctl {args:?}");
    }
    assert_eq!(
        ok(etcdctl(&concord.endpoint, &["compaction", "3"])),
        ok(etcdctl(&etcd.endpoint, &["compaction", "3"]))
    );
    let all = ["get", "", "--from-key", "-w", "json"];
    assert_eq!(
        masked(etcdctl(&concord.endpoint, &all)),
        masked(etcdctl(&etcd.endpoint, &all))
    );
    let want = err(etcdctl(&etcd.endpoint, &["get", "a", "--rev", "2"]));
    let got = err(etcdctl(&concord.endpoint, &["get", "a", "--rev", "2"]));
    assert_eq!(got.lines().last(), want.lines().last());
}
