//! The store against what etcd 3.4's v2 API answers (the same session run
//! against etcd, with indexes relative to the first write).

use super::*;
use crate::api::concordpb::v2_request::Method;
use crate::api::concordpb::V2Request;

const S: i64 = 1_000_000_000;

fn req(method: Method, path: &str) -> V2Request {
    V2Request {
        method: method as i32,
        path: path.into(),
        now: 1_000 * S,
        ..Default::default()
    }
}

fn set(path: &str, value: &str) -> V2Request {
    V2Request {
        value: value.into(),
        ..req(Method::Set, path)
    }
}

struct T {
    s: V2Store,
    disk: MemV2,
}

impl T {
    fn new() -> T {
        T {
            s: V2Store::default(),
            disk: MemV2::default(),
        }
    }

    fn ok(&mut self, r: V2Request) -> std::sync::Arc<Event> {
        match self.s.apply(&mut self.disk, &r).unwrap() {
            Outcome::Done(e) => e,
            other => panic!("{r:?}: {other:?}"),
        }
    }

    fn err(&mut self, r: V2Request) -> (u32, String) {
        let before = self.s.index();
        match self.s.apply(&mut self.disk, &r).unwrap() {
            Outcome::Refused(e) => {
                assert_eq!(self.s.index(), before, "a refused write changes nothing");
                (e.code.number(), e.cause)
            }
            other => panic!("{r:?}: {other:?}"),
        }
    }
}

#[test]
fn set_overwrite_and_directories_as_etcd() {
    let mut t = T::new();
    let e = t.ok(set("/foo", "bar"));
    assert_eq!((e.action, e.index(), e.is_created()), (Action::Set, 1, true));
    let e = t.ok(set("/foo", "baz"));
    // set replaces the node: a new createdIndex, the old one as prevNode
    assert_eq!(
        (e.node.created_index, e.node.modified_index, e.is_created()),
        (2, 2, false)
    );
    assert_eq!(e.prev_node.as_ref().unwrap().value.as_deref(), Some("bar"));
    t.ok(set("/dir/a", "1"));
    t.ok(set("/dir/_h", "h"));
    t.ok(V2Request {
        dir: true,
        ..req(Method::Set, "/dir/sub")
    });
    let g = t.s.get("/dir", false, 0).unwrap();
    assert_eq!((g.node.dir, g.node.created_index, g.node.modified_index), (true, 3, 3));
    let names: Vec<_> = g
        .node
        .nodes
        .unwrap()
        .iter()
        .map(|n| (n.key.clone(), n.dir, n.nodes.is_some()))
        .collect();
    assert_eq!(
        names,
        [("/dir/a".into(), false, false), ("/dir/sub".into(), true, false)]
    );
    let root = t.s.get("/", true, 0).unwrap().node;
    assert_eq!(root.key, "");
    assert_eq!(root.nodes.unwrap().len(), 2);
    assert_eq!(t.s.get("/dir/_h", false, 0).unwrap().node.value.as_deref(), Some("h"));
    assert_eq!(t.err(set("/dir", "3")), (102, "/dir".into()));
    assert_eq!(t.err(set("/dir/a/b", "3")), (104, "/dir/a".into()));
    assert_eq!(t.err(set("/", "3")), (107, "/".into()));
    assert_eq!(t.s.get("/nope/deeper", false, 0).unwrap_err().cause, "/nope");
    assert_eq!(t.s.get("/dir/a/b", false, 0).unwrap_err().code, Code::NotDir);
}

#[test]
fn conditional_writes_and_deletes_as_etcd() {
    let mut t = T::new();
    t.ok(set("/dir/a", "1"));
    let e = t.ok(V2Request {
        value: "2".into(),
        ..req(Method::Update, "/dir/a")
    });
    assert_eq!(
        (e.action, e.node.created_index, e.node.modified_index),
        (Action::Update, 1, 2)
    );
    assert_eq!(t.err(req(Method::Create, "/dir/a")), (105, "/dir/a".into()));
    let cas = |pv: Option<&str>, pi: u64| V2Request {
        value: "3".into(),
        prev_value: pv.map(String::from),
        prev_index: pi,
        ..req(Method::CompareAndSwap, "/dir/a")
    };
    assert_eq!(t.err(cas(Some("zz"), 0)), (101, "[zz != 2]".into()));
    assert_eq!(t.err(cas(None, 1)), (101, "[1 != 2]".into()));
    assert_eq!(t.err(cas(Some("zz"), 1)), (101, "[zz != 2] [1 != 2]".into()));
    let e = t.ok(cas(Some("2"), 0));
    assert_eq!(e.action, Action::CompareAndSwap);
    assert_eq!(t.err(req(Method::Delete, "/dir")), (102, "/dir".into()));
    assert_eq!(
        t.err(V2Request {
            dir: true,
            ..req(Method::Delete, "/dir")
        }),
        (108, "/dir".into())
    );
    let cad = |pv: &str| V2Request {
        prev_value: Some(pv.into()),
        ..req(Method::CompareAndDelete, "/dir/a")
    };
    assert_eq!(t.err(cad("9")), (101, "[9 != 3]".into()));
    let e = t.ok(cad("3"));
    assert_eq!(
        (e.action, e.node.value.clone(), e.node.created_index),
        (Action::CompareAndDelete, None, 1)
    );
    let e = t.ok(V2Request {
        recursive: true,
        ..req(Method::Delete, "/dir")
    });
    assert!(e.node.dir && e.prev_node.as_ref().unwrap().dir);
    assert_eq!(t.err(req(Method::Delete, "/dir")), (100, "/dir".into()));
}

#[test]
fn in_order_keys_ttls_and_expiry() {
    let mut t = T::new();
    t.ok(set("/x", "1"));
    let a = t.ok(V2Request {
        value: "j1".into(),
        ..req(Method::CreateInOrder, "/q")
    });
    assert_eq!(a.node.key, "/q/00000000000000000002");
    assert_eq!(a.action, Action::Create);
    assert_eq!(t.err(req(Method::CreateInOrder, "/x")), (104, "/x".into()));
    let e = t.ok(V2Request {
        value: "v".into(),
        expiration: 1_005 * S - 1,
        ..req(Method::Set, "/t")
    });
    assert_eq!(e.node.ttl, 5);
    assert_eq!(t.s.next_expiration(), Some(1_005 * S - 1));
    // a refresh keeps the value and is not announced
    let mut w =
        t.s.watch(WatchSpec {
            key: "/t".into(),
            recursive: false,
            since: 0,
        })
        .unwrap();
    let e = t.ok(V2Request {
        refresh: true,
        expiration: 1_010 * S,
        ..req(Method::Update, "/t")
    });
    assert_eq!((e.node.value.as_deref(), e.node.ttl), (Some("v"), 10));
    let Watch::Waiting(rx) = &mut w else { panic!() };
    assert!(rx.try_recv().is_err());
    assert_eq!(t.s.next_expiration(), Some(1_010 * S));
    assert_eq!(t.s.expire(&mut t.disk, 1_009 * S).unwrap(), 0);
    assert_eq!(t.s.expire(&mut t.disk, 1_010 * S).unwrap(), 1);
    let Watch::Waiting(rx) = w else { panic!() };
    let e = rx.blocking_recv().unwrap();
    assert_eq!(e.action, Action::Expire);
    assert_eq!(e.prev_node.as_ref().unwrap().value.as_deref(), Some("v"));
    assert_eq!(t.s.next_expiration(), None);
    assert_eq!(t.s.stats.expire_count.load(std::sync::atomic::Ordering::Relaxed), 1);
    // a directory with a TTL takes its children with it
    t.ok(V2Request {
        dir: true,
        expiration: 1_020 * S,
        ..req(Method::Set, "/d")
    });
    t.ok(set("/d/in", "1"));
    assert_eq!(t.s.expire(&mut t.disk, 1_020 * S).unwrap(), 1);
    assert!(t.s.get("/d/in", false, 0).is_err());
    assert!(!t.disk.nodes.contains_key("/d/in"));
}

#[test]
fn watches_history_and_hidden_keys() {
    let mut t = T::new();
    t.ok(set("/w/a", "1"));
    t.ok(set("/w/_h", "2"));
    t.ok(set("/other", "3"));
    let spec = |key: &str, recursive, since| WatchSpec {
        key: key.into(),
        recursive,
        since,
    };
    let Watch::Ready(e) = t.s.watch(spec("/w", true, 1)).unwrap() else {
        panic!()
    };
    assert_eq!(e.node.key, "/w/a");
    let Watch::Ready(e) = t.s.watch(spec("/other", false, 1)).unwrap() else {
        panic!()
    };
    assert_eq!(e.index(), 3);
    let Watch::Waiting(mut hidden) = t.s.watch(spec("/w", true, 0)).unwrap() else {
        panic!()
    };
    let Watch::Waiting(plain) = t.s.watch(spec("/w/b", false, 0)).unwrap() else {
        panic!()
    };
    t.ok(set("/w/_x", "hidden"));
    assert!(hidden.try_recv().is_err(), "a recursive watch does not see hidden keys");
    t.ok(set("/w/b", "4"));
    assert_eq!(plain.blocking_recv().unwrap().node.key, "/w/b");
    assert_eq!(hidden.blocking_recv().unwrap().node.key, "/w/b");
    // deleting a directory answers watches on what was in it
    let Watch::Waiting(inner) = t.s.watch(spec("/w/a", false, 0)).unwrap() else {
        panic!()
    };
    t.ok(V2Request {
        recursive: true,
        ..req(Method::Delete, "/w")
    });
    assert_eq!(inner.blocking_recv().unwrap().action, Action::Delete);
    // dropped polls are forgotten
    let Watch::Waiting(gone) = t.s.watch(spec("/z", false, 0)).unwrap() else {
        panic!()
    };
    drop(gone);
    t.ok(set("/y", "1"));
    assert_eq!(t.s.waiting(), 0);
    for i in 0..history::HISTORY {
        t.ok(set("/many", &i.to_string()));
    }
    let err = t.s.watch(spec("/many", false, 1)).unwrap_err();
    assert_eq!(err.code, Code::EventIndexCleared);
    assert_eq!(
        err.cause,
        format!("the requested history has been cleared [{}/1]", t.s.index() - 999)
    );
}

#[test]
fn restore_rebuilds_the_tree_from_stored_nodes() {
    let mut t = T::new();
    t.ok(set("/a/b/c", "1"));
    t.ok(V2Request {
        value: "x".into(),
        expiration: 2_000 * S,
        ..req(Method::Set, "/a/t")
    });
    t.ok(set("/a-b", "2"));
    let again = V2Store::restore(
        t.disk.index,
        t.disk.nodes.values().cloned().rev(),
        t.disk.events.values().cloned(),
    );
    assert_eq!(again.index(), t.s.index());
    assert_eq!(again.get("/", true, 0).unwrap(), t.s.get("/", true, 0).unwrap());
    assert_eq!(again.next_expiration(), Some(2_000 * S));
    assert_eq!(again.dump(), t.s.dump());
    assert_eq!(t.s.dump().len(), t.disk.nodes.len());
    // the remembered events come back too
    let spec = WatchSpec {
        key: "/a".into(),
        recursive: true,
        since: 1,
    };
    let Watch::Ready(e) = again.watch(spec).unwrap() else {
        panic!()
    };
    assert_eq!((e.node.key.as_str(), e.action), ("/a/b/c", Action::Set));
    // and the stored history stays within its bound
    for i in 0..history::HISTORY + 10 {
        t.ok(set("/x", &i.to_string()));
    }
    assert_eq!(t.disk.events.len(), history::HISTORY);
}

#[test]
fn ttl_rounds_up_like_etcd() {
    assert_eq!(ttl_at(0, 5), 0);
    assert_eq!(ttl_at(10 * S, 5 * S), 5);
    assert_eq!(ttl_at(10 * S, 5 * S + 1), 5);
    assert_eq!(ttl_at(10 * S, 10 * S - 1), 1);
    assert_eq!(ttl_at(10 * S, 10 * S + S / 2), 0);
    assert_eq!(segments("/a//b/./c/../d/"), ["a", "b", "d"]);
}
