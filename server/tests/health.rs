//! `/health` as etcd 3.4 (side by side), and `/livez`, `/readyz` as etcd
//! 3.6 defines them, on a lone member and on a cluster that lost quorum.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{http, raw, Server};

#[test]
fn health_answers_as_etcd_3_4() {
    let concord = Server::concord();
    let etcd = Server::etcd();
    for (method, path) in [
        ("GET", "/health"),
        ("GET", "/health?serializable=true"),
        ("POST", "/health"),
    ] {
        let ours = raw(&concord.endpoint, method, path);
        let theirs = raw(&etcd.endpoint, method, path);
        assert_eq!(ours, theirs, "{method} {path}");
    }
}

#[test]
fn livez_and_readyz_list_their_checks() {
    let s = Server::concord();
    let ep = &s.endpoint;
    assert_eq!(http(ep, "GET", "/livez", "").unwrap(), (200, "ok\n".into()));
    assert_eq!(
        http(ep, "GET", "/livez?verbose", "").unwrap(),
        (200, "[+]serializable_read ok\nok\n".into())
    );
    assert_eq!(
        http(ep, "GET", "/readyz?verbose", "").unwrap(),
        (
            200,
            "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n".into()
        )
    );
    assert_eq!(
        http(
            ep,
            "GET",
            "/readyz?verbose&exclude=linearizable_read&exclude=no_such_check",
            ""
        )
        .unwrap(),
        (200, "[+]data_corruption ok\n[+]serializable_read ok\nok\n".into())
    );
    assert_eq!(
        http(ep, "GET", "/readyz/linearizable_read?verbose", "").unwrap(),
        (200, "[+]linearizable_read ok\nok\n".into())
    );
    let (status, ctype, body) = raw(ep, "POST", "/readyz");
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (405, "text/plain; charset=utf-8", "Method Not Allowed\n")
    );
}

#[test]
fn a_member_without_quorum_is_alive_not_ready() {
    let mut cluster = Cluster::start(3, &[]);
    cluster.wait_healthy(Duration::from_secs(30));
    let eps = cluster.endpoints();
    let survivor = 0;
    cluster.members[1].kill9();
    cluster.members[2].kill9();
    let ep = &eps[survivor];
    // Without quorum the member loses its leader (or cannot read linearizably).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http(ep, "GET", "/readyz?verbose", "").unwrap();
        if status == 503 {
            assert!(body.contains("[+]serializable_read ok\n"), "{body}");
            assert!(body.contains("[-]linearizable_read failed: "), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "still ready: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        http(ep, "GET", "/livez", "").unwrap(),
        (200, "ok\n".into()),
        "alive: no restart needed"
    );
    assert_eq!(
        http(ep, "GET", "/health?serializable=true", "").unwrap(),
        (200, r#"{"health":"true"}"#.into())
    );
    let (status, body) = http(ep, "GET", "/health", "").unwrap();
    assert_eq!((status, body.as_str()), (503, r#"{"health":"false"}"#));
}
