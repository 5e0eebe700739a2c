//! Property test: random sequences of put / delete / txn / compact / range
//! against a model that keeps a full copy of the key space at every
//! revision. Every answer must match, and an index rebuilt from the stored
//! changes (as at a restart) must answer like the live one.

use std::collections::BTreeMap;

use concord_core::api::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use concord_core::api::etcdserverpb::request_op::Request as Op;
use concord_core::api::etcdserverpb::response_op::Response as OpResp;
use concord_core::api::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use concord_core::api::mvccpb::KeyValue;
use concord_core::mvcc::{Error, MemBackend, Mvcc, NoLeases};
use proptest::prelude::*;

type Snapshot = BTreeMap<Vec<u8>, KeyValue>;

/// The key space as a list of snapshots: `history[r]` is the state at revision `r`.
struct Model {
    history: Vec<Snapshot>,
    compact: i64,
}

impl Model {
    fn new() -> Self {
        // Revisions 0 and 1 are both the empty store.
        Model {
            history: vec![Snapshot::new(), Snapshot::new()],
            compact: 0,
        }
    }

    fn rev(&self) -> i64 {
        self.history.len() as i64 - 1
    }

    fn in_range(key: &[u8], end: &[u8], k: &[u8]) -> bool {
        if end.is_empty() {
            k == key
        } else if end == [0] {
            k >= key
        } else {
            k >= key && k < end
        }
    }

    fn put_into(state: &mut Snapshot, rev: i64, key: &[u8], value: &[u8]) -> Option<KeyValue> {
        let prev = state.get(key).cloned();
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: value.to_vec(),
            lease: 0,
        };
        state.insert(key.to_vec(), kv);
        prev
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> (i64, Option<KeyValue>) {
        let mut s = self.history.last().unwrap().clone();
        let rev = self.rev() + 1;
        let prev = Self::put_into(&mut s, rev, key, value);
        self.history.push(s);
        (rev, prev)
    }

    fn delete(&mut self, key: &[u8], end: &[u8]) -> (i64, Vec<KeyValue>) {
        let mut s = self.history.last().unwrap().clone();
        let gone: Vec<Vec<u8>> = s.keys().filter(|k| Self::in_range(key, end, k)).cloned().collect();
        if gone.is_empty() {
            return (self.rev(), vec![]);
        }
        let prev = gone.iter().map(|k| s.remove(k).unwrap()).collect();
        self.history.push(s);
        (self.rev(), prev)
    }

    fn range(&self, key: &[u8], end: &[u8], at: i64, limit: i64) -> Result<(Vec<KeyValue>, i64, bool), &'static str> {
        if at > self.rev() {
            return Err("future");
        }
        let at = if at <= 0 { self.rev() } else { at };
        if at < self.compact {
            return Err("compacted");
        }
        let all: Vec<KeyValue> = self.history[at as usize]
            .values()
            .filter(|kv| Self::in_range(key, end, &kv.key))
            .cloned()
            .collect();
        let count = all.len() as i64;
        let more = limit > 0 && all.len() > limit as usize;
        let kvs = if limit > 0 {
            all.into_iter().take(limit as usize).collect()
        } else {
            all
        };
        Ok((kvs, count, more))
    }
}

#[derive(Clone, Debug)]
enum Step {
    Put(u8, u8),
    Delete(u8, Option<u8>),
    /// If `key`'s version equals `version`, put `then_key`, else delete `else_key`.
    Txn {
        key: u8,
        version: i64,
        then_key: u8,
        else_key: u8,
        value: u8,
    },
    Compact(i64),
    Range {
        key: u8,
        end: Option<u8>,
        back: i64,
        limit: i64,
    },
}

const KEYS: [&[u8]; 5] = [b"a", b"ab", b"b", b"c", b"d"];

fn key(i: u8) -> Vec<u8> {
    KEYS[i as usize % KEYS.len()].to_vec()
}

fn end(i: Option<u8>) -> Vec<u8> {
    match i {
        None => vec![],
        Some(0) => vec![0],
        Some(i) => KEYS[i as usize % KEYS.len()].to_vec(),
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..5u8, any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        2 => (0..5u8, proptest::option::of(0..5u8)).prop_map(|(k, e)| Step::Delete(k, e)),
        2 => (0..5u8, 0..3i64, 0..5u8, 0..5u8, any::<u8>()).prop_map(|(key, version, then_key, else_key, value)| {
            Step::Txn { key, version, then_key, else_key, value }
        }),
        1 => (0..6i64).prop_map(Step::Compact),
        3 => (0..5u8, proptest::option::of(0..5u8), 0..8i64, 0..3i64)
            .prop_map(|(key, end, back, limit)| Step::Range { key, end, back, limit }),
    ]
}

fn range_req(key: &[u8], end: &[u8], revision: i64, limit: i64) -> RangeRequest {
    RangeRequest {
        key: key.to_vec(),
        range_end: end.to_vec(),
        revision,
        limit,
        ..Default::default()
    }
}

fn check_range(mvcc: &Mvcc, b: &MemBackend, model: &Model, key: &[u8], end: &[u8], rev: i64, limit: i64) {
    let got = mvcc.range(b, &range_req(key, end, rev, limit));
    match (got, model.range(key, end, rev, limit)) {
        (Ok(r), Ok((kvs, count, more))) => {
            assert_eq!(r.kvs, kvs, "range {key:?}..{end:?} at {rev}");
            assert_eq!(r.count, count);
            assert_eq!(r.more, more);
            assert_eq!(r.header.unwrap().revision, model.rev());
        }
        (Err(Error::FutureRev), Err("future")) | (Err(Error::Compacted), Err("compacted")) => {}
        (got, want) => panic!("range {key:?}..{end:?} at {rev}: got {got:?}, want {want:?}"),
    }
}

fn run(steps: Vec<Step>) {
    let mut mvcc = Mvcc::new();
    let mut b = MemBackend::default();
    let mut model = Model::new();
    for s in steps {
        match s {
            Step::Put(k, v) => {
                let req = PutRequest {
                    key: key(k),
                    value: vec![v],
                    prev_kv: true,
                    ..Default::default()
                };
                let r = mvcc.put(&mut b, &mut NoLeases, &req).unwrap();
                let (rev, prev) = model.put(&key(k), &[v]);
                assert_eq!(r.header.unwrap().revision, rev);
                assert_eq!(r.prev_kv, prev);
            }
            Step::Delete(k, e) => {
                let req = DeleteRangeRequest {
                    key: key(k),
                    range_end: end(e),
                    prev_kv: true,
                };
                let r = mvcc.delete_range(&mut b, &mut NoLeases, &req).unwrap();
                let (rev, prev) = model.delete(&key(k), &end(e));
                assert_eq!(r.header.unwrap().revision, rev);
                assert_eq!(r.deleted, prev.len() as i64);
                assert_eq!(r.prev_kvs, prev);
            }
            Step::Txn {
                key: k,
                version,
                then_key,
                else_key,
                value,
            } => {
                let req = TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Version as i32,
                        key: key(k),
                        target_union: Some(TargetUnion::Version(version)),
                        range_end: vec![],
                    }],
                    success: vec![
                        RequestOp {
                            request: Some(Op::RequestPut(PutRequest {
                                key: key(then_key),
                                value: vec![value],
                                ..Default::default()
                            })),
                        },
                        RequestOp {
                            request: Some(Op::RequestRange(range_req(b"\0", b"\0", 0, 0))),
                        },
                    ],
                    failure: vec![RequestOp {
                        request: Some(Op::RequestDeleteRange(DeleteRangeRequest {
                            key: key(else_key),
                            ..Default::default()
                        })),
                    }],
                };
                let r = mvcc.txn(&mut b, &mut NoLeases, &req).unwrap();
                let current_version = model.history.last().unwrap().get(&key(k)).map_or(0, |kv| kv.version);
                let ok = current_version == version;
                assert_eq!(r.succeeded, ok);
                if ok {
                    let (rev, _) = model.put(&key(then_key), &[value]);
                    // The range inside the txn sees the txn's own put.
                    let Some(OpResp::ResponseRange(rr)) = &r.responses[1].response else {
                        panic!()
                    };
                    let all: Vec<KeyValue> = model.history[rev as usize].values().cloned().collect();
                    assert_eq!(rr.kvs, all);
                } else {
                    model.delete(&key(else_key), &[]);
                }
                assert_eq!(r.header.unwrap().revision, model.rev());
            }
            Step::Compact(back) => {
                let target = model.rev() - back;
                let got = mvcc.compact(
                    &mut b,
                    &CompactionRequest {
                        revision: target,
                        physical: true,
                    },
                );
                if target <= model.compact {
                    assert!(matches!(got, Err(Error::Compacted)), "{got:?}");
                } else {
                    assert!(got.is_ok(), "{got:?}");
                    model.compact = target;
                    // Physical: nothing older than the compaction is stored
                    // except each key's value at the compaction revision.
                    let live_at_compact = model.history[target as usize].len();
                    let older = b.iter().filter(|(r, _)| r.main <= target).count();
                    assert_eq!(older, live_at_compact, "physically compacted");
                }
            }
            Step::Range {
                key: k,
                end: e,
                back,
                limit,
            } => {
                let rev = if back == 0 { 0 } else { model.rev() - back + 1 };
                check_range(&mvcc, &b, &model, &key(k), &end(e), rev, limit);
            }
        }
    }
    // A rebuilt index answers exactly like the live one, at every revision.
    let rebuilt = Mvcc::restore(
        mvcc.current_revision(),
        mvcc.compact_revision(),
        b.iter().map(|(r, rec)| (*r, rec)),
    );
    assert_eq!(rebuilt.current_revision(), mvcc.current_revision());
    for rev in model.compact.max(1)..=model.rev() {
        check_range(&rebuilt, &b, &model, b"\0", b"\0", rev, 0);
        for k in 0..5 {
            check_range(&rebuilt, &b, &model, &key(k), &[], rev, 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mvcc_matches_model(steps in proptest::collection::vec(step(), 1..60)) {
        run(steps);
    }
}

#[test]
fn version_survives_compaction_and_rebuild() {
    run(vec![
        Step::Put(0, 1),
        Step::Put(0, 2),
        Step::Put(0, 3),
        Step::Compact(0),
        Step::Put(0, 4),
    ]);
}
