//! JavaScript values to the shared client's options, and its answers to
//! plain JavaScript objects (camelCase fields, `Uint8Array` bytes with a
//! `…String` UTF-8 twin, numbers for revisions, decimal strings for 64-bit
//! IDs).

use concord_core::api::etcdserverpb::response_op::Response;
use concord_core::api::etcdserverpb::{
    DeleteRangeResponse, MemberListResponse, RangeResponse, ResponseHeader, StatusResponse, TxnResponse, WatchResponse,
};
use concord_core::api::mvccpb::{event::EventType, KeyValue};
use concord_core::api::v3electionpb::LeaderKey;
use concord_core::client::{
    Compare, CompareOn, DeleteOptions, GetOptions, KeyRange, Op, PutOptions, SortOrder, SortTarget, Txn,
};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use crate::error::type_error;

/// Transactions nest at most this deep.
const MAX_DEPTH: usize = 32;

pub fn obj() -> Object {
    Object::new()
}

/// A field name as a JavaScript string: interned, so each name crosses
/// into JavaScript once, not on every call.
fn field(name: &'static str) -> JsValue {
    JsValue::from_str(wasm_bindgen::intern(name))
}

pub fn set(o: &Object, name: &'static str, v: JsValue) {
    let _ = Reflect::set(o, &field(name), &v);
}

/// `o[name]`, undefined when `o` is not an object.
pub fn get(o: &JsValue, name: &'static str) -> JsValue {
    if !o.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(o, &field(name)).unwrap_or(JsValue::UNDEFINED)
}

pub fn get_f64(o: &JsValue, name: &'static str) -> Option<f64> {
    get(o, name).as_f64()
}

pub fn get_bool(o: &JsValue, name: &'static str) -> bool {
    get(o, name).is_truthy()
}

pub fn get_str(o: &JsValue, name: &'static str) -> Option<String> {
    get(o, name).as_string()
}

fn get_i64(o: &JsValue, name: &'static str) -> i64 {
    get_f64(o, name).map_or(0, |v| v as i64)
}

/// A key or value: a string (UTF-8) or a `Uint8Array`.
pub fn bytes(v: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(s) = v.as_string() {
        return Ok(s.into_bytes());
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    Err(type_error("keys and values must be strings or Uint8Arrays"))
}

/// A lease ID: a decimal string, a bigint, or a safe integer.
pub fn lease_id(v: &JsValue) -> Result<i64, JsValue> {
    if let Some(s) = v.as_string() {
        return s.parse().map_err(|_| type_error("a lease ID is a decimal string"));
    }
    if v.is_bigint() {
        let s: String = js_sys::BigInt::unchecked_from_js_ref(v)
            .to_string(10)
            .map_err(|_| type_error("a lease ID"))?
            .into();
        return s.parse().map_err(|_| type_error("a lease ID out of range"));
    }
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 => Ok(n as i64),
        _ => Err(type_error("a lease ID is a decimal string, a bigint or a safe integer")),
    }
}

pub fn revision(h: &Option<ResponseHeader>) -> JsValue {
    JsValue::from_f64(h.as_ref().map_or(0, |h| h.revision) as f64)
}

fn u8a(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

/// A key-value: `key`, `value` (bytes), `keyString`, `valueString`,
/// `createRevision`, `modRevision`, `version`, `lease` (string, "0": none).
pub fn kv(kv: &KeyValue) -> JsValue {
    let o = obj();
    set(&o, "key", u8a(&kv.key));
    set(&o, "value", u8a(&kv.value));
    set(&o, "keyString", JsValue::from_utf8_lossy(&kv.key));
    set(&o, "valueString", JsValue::from_utf8_lossy(&kv.value));
    set(&o, "createRevision", JsValue::from_f64(kv.create_revision as f64));
    set(&o, "modRevision", JsValue::from_f64(kv.mod_revision as f64));
    set(&o, "version", JsValue::from_f64(kv.version as f64));
    set(&o, "lease", kv.lease.to_string().into());
    o.into()
}

fn kvs(list: &[KeyValue]) -> JsValue {
    list.iter().map(kv).collect::<Array>().into()
}

/// `{ prefix }`, `{ fromKey }` or `{ rangeEnd }` (string or bytes).
pub fn key_range(opts: &JsValue) -> Result<KeyRange, JsValue> {
    if get_bool(opts, "prefix") {
        return Ok(KeyRange::Prefix);
    }
    if get_bool(opts, "fromKey") {
        return Ok(KeyRange::FromKey);
    }
    let end = get(opts, "rangeEnd");
    if end.is_undefined() || end.is_null() {
        Ok(KeyRange::Single)
    } else {
        Ok(KeyRange::End(bytes(&end)?))
    }
}

pub fn put_options(opts: &JsValue) -> Result<PutOptions, JsValue> {
    let mut p = PutOptions::new();
    let lease = get(opts, "lease");
    if !lease.is_undefined() && !lease.is_null() {
        // A Lease object from index.js carries its ID as `id`.
        let id = if lease.is_object() { get(&lease, "id") } else { lease };
        p = p.lease(lease_id(&id)?);
    }
    if get_bool(opts, "prevKv") {
        p = p.prev_kv();
    }
    Ok(p)
}

fn sort_target(s: &str) -> Result<SortTarget, JsValue> {
    Ok(match s {
        "key" => SortTarget::Key,
        "version" => SortTarget::Version,
        "createRevision" | "create" => SortTarget::Create,
        "modRevision" | "mod" => SortTarget::Mod,
        "value" => SortTarget::Value,
        _ => {
            return Err(type_error(
                "sort.target: key, version, createRevision, modRevision or value",
            ))
        }
    })
}

pub fn get_options(opts: &JsValue) -> Result<GetOptions, JsValue> {
    let mut g = GetOptions::new().key_range(key_range(opts)?);
    g = g.limit(get_i64(opts, "limit")).revision(get_i64(opts, "revision"));
    if get_bool(opts, "serializable") {
        g = g.serializable();
    }
    if get_bool(opts, "keysOnly") {
        g = g.keys_only();
    }
    if get_bool(opts, "countOnly") {
        g = g.count_only();
    }
    let sort = get(opts, "sort");
    if sort.is_object() {
        let target = sort_target(&get_str(&sort, "target").unwrap_or_else(|| "key".into()))?;
        let order = match get_str(&sort, "order").as_deref() {
            None | Some("ascend") | Some("asc") => SortOrder::Ascend,
            Some("descend") | Some("desc") => SortOrder::Descend,
            Some(_) => return Err(type_error("sort.order: ascend or descend")),
        };
        g = g.sort(target, order);
    }
    Ok(g.min_mod_revision(get_i64(opts, "minModRevision"))
        .max_mod_revision(get_i64(opts, "maxModRevision"))
        .min_create_revision(get_i64(opts, "minCreateRevision"))
        .max_create_revision(get_i64(opts, "maxCreateRevision")))
}

pub fn delete_options(opts: &JsValue) -> Result<DeleteOptions, JsValue> {
    let mut d = DeleteOptions::new().key_range(key_range(opts)?);
    if get_bool(opts, "prevKv") {
        d = d.prev_kv();
    }
    Ok(d)
}

pub fn range(r: &RangeResponse) -> Object {
    let o = obj();
    set(&o, "kvs", kvs(&r.kvs));
    set(&o, "count", JsValue::from_f64(r.count as f64));
    set(&o, "more", JsValue::from_bool(r.more));
    set(&o, "revision", revision(&r.header));
    o
}

pub fn deleted(r: &DeleteRangeResponse) -> Object {
    let o = obj();
    set(&o, "deleted", JsValue::from_f64(r.deleted as f64));
    set(&o, "revision", revision(&r.header));
    set(&o, "prevKvs", kvs(&r.prev_kvs));
    o
}

fn compare(c: &JsValue) -> Result<Compare, JsValue> {
    let key = bytes(&get(c, "key"))?;
    let target = get_str(c, "target").unwrap_or_else(|| "value".into());
    let on: CompareOn = match target.as_str() {
        "value" => Compare::value(key),
        "version" => Compare::version(key),
        "createRevision" | "create" => Compare::create_revision(key),
        "modRevision" | "mod" => Compare::mod_revision(key),
        "lease" => Compare::lease(key),
        _ => {
            return Err(type_error(
                "compare.target: value, version, createRevision, modRevision or lease",
            ))
        }
    };
    let on = on.key_range(key_range(c)?);
    let result = get_str(c, "result").unwrap_or_else(|| "==".into());
    let v = get(c, "value");
    macro_rules! with {
        ($v:expr) => {
            match result.as_str() {
                "==" | "===" => on.eq($v),
                "!=" | "!==" => on.ne($v),
                "<" => on.lt($v),
                ">" => on.gt($v),
                _ => return Err(type_error("compare.result: ==, !=, < or >")),
            }
        };
    }
    Ok(if target == "value" {
        with!(bytes(&v)?)
    } else if target == "lease" {
        with!(lease_id(&v)?)
    } else {
        with!(v.as_f64().ok_or_else(|| type_error("compare.value must be a number"))? as i64)
    })
}

fn op(o: &JsValue, depth: usize) -> Result<Op, JsValue> {
    let t = get(o, "txn");
    if t.is_object() {
        return Ok(Op::txn(txn(&t, depth + 1)?));
    }
    let put = get(o, "put");
    if !put.is_undefined() {
        return Ok(Op::put(bytes(&put)?, bytes(&get(o, "value"))?, put_options(o)?));
    }
    let g = get(o, "get");
    if !g.is_undefined() {
        return Ok(Op::get(bytes(&g)?, get_options(o)?));
    }
    let d = get(o, "delete");
    if !d.is_undefined() {
        return Ok(Op::delete(bytes(&d)?, delete_options(o)?));
    }
    Err(type_error("a txn operation is { put }, { get }, { delete } or { txn }"))
}

/// The items of an iterable (an array), read without letting a throwing
/// iterator unwind through Rust: `what` names it in the TypeError.
pub fn items(v: &JsValue, what: &str) -> Result<Vec<JsValue>, JsValue> {
    let Some(iter) = js_sys::try_iter(v)? else {
        return Err(type_error(&format!("{what} must be an array")));
    };
    iter.collect()
}

fn ops(list: &JsValue, depth: usize) -> Result<Vec<Op>, JsValue> {
    if list.is_undefined() || list.is_null() {
        return Ok(Vec::new());
    }
    items(list, "success and failure")?
        .iter()
        .map(|o| op(o, depth))
        .collect()
}

/// `{ compare, success, failure }` as a transaction.
pub fn txn(spec: &JsValue, depth: usize) -> Result<Txn, JsValue> {
    if depth > MAX_DEPTH {
        return Err(type_error("transactions nest too deep"));
    }
    let cmp = get(spec, "compare");
    let compares: Vec<Compare> = if cmp.is_undefined() || cmp.is_null() {
        Vec::new()
    } else {
        items(&cmp, "compare")?.iter().map(compare).collect::<Result<_, _>>()?
    };
    Ok(Txn::new()
        .when(compares)
        .and_then(ops(&get(spec, "success"), depth)?)
        .or_else(ops(&get(spec, "failure"), depth)?))
}

/// `{ succeeded, revision, responses }`, each response `{ type, … }`.
pub fn txn_response(r: &TxnResponse) -> Object {
    let rev = revision(&r.header);
    let o = obj();
    set(&o, "succeeded", JsValue::from_bool(r.succeeded));
    set(&o, "revision", rev.clone());
    let list = Array::new();
    for resp in r.responses.iter().filter_map(|x| x.response.as_ref()) {
        let (kind, a) = match resp {
            Response::ResponsePut(p) => {
                let a = obj();
                set(&a, "revision", revision(&p.header));
                if let Some(prev) = &p.prev_kv {
                    set(&a, "prevKv", kv(prev));
                }
                ("put", a)
            }
            Response::ResponseRange(g) => ("get", range(g)),
            Response::ResponseDeleteRange(d) => ("delete", deleted(d)),
            Response::ResponseTxn(t) => ("txn", txn_response(t)),
        };
        set(&a, "type", kind.into());
        if get(&a, "revision").is_undefined() || get(&a, "revision") == JsValue::from_f64(0.0) {
            set(&a, "revision", rev.clone());
        }
        list.push(&a);
    }
    set(&o, "responses", list.into());
    o
}

/// `{ revision, events: [{ type: 'put'|'delete', kv, prevKv? }] }`.
pub fn watch_response(r: &WatchResponse) -> Object {
    let o = obj();
    set(&o, "revision", revision(&r.header));
    let events = Array::new();
    for e in &r.events {
        let ev = obj();
        let kind = if e.r#type == EventType::Delete as i32 {
            "delete"
        } else {
            "put"
        };
        set(&ev, "type", kind.into());
        set(&ev, "kv", e.kv.as_ref().map_or(JsValue::NULL, kv));
        if let Some(p) = &e.prev_kv {
            set(&ev, "prevKv", kv(p));
        }
        events.push(&ev);
    }
    set(&o, "events", events.into());
    o
}

pub fn leader_key(l: &LeaderKey) -> Object {
    let o = obj();
    set(&o, "name", u8a(&l.name));
    set(&o, "key", u8a(&l.key));
    set(&o, "rev", JsValue::from_f64(l.rev as f64));
    set(&o, "lease", l.lease.to_string().into());
    o
}

pub fn to_leader_key(v: &JsValue) -> Result<LeaderKey, JsValue> {
    Ok(LeaderKey {
        name: bytes(&get(v, "name"))?,
        key: bytes(&get(v, "key"))?,
        rev: get_i64(v, "rev"),
        lease: lease_id(&get(v, "lease"))?,
    })
}

pub fn status(r: &StatusResponse) -> Object {
    let h = r.header.unwrap_or_default();
    let o = obj();
    set(&o, "version", r.version.as_str().into());
    set(&o, "dbSize", JsValue::from_f64(r.db_size as f64));
    set(&o, "dbSizeInUse", JsValue::from_f64(r.db_size_in_use as f64));
    set(&o, "leader", r.leader.to_string().into());
    set(&o, "memberId", h.member_id.to_string().into());
    set(&o, "clusterId", h.cluster_id.to_string().into());
    set(&o, "revision", JsValue::from_f64(h.revision as f64));
    set(&o, "raftIndex", JsValue::from_f64(r.raft_index as f64));
    set(&o, "raftTerm", JsValue::from_f64(r.raft_term as f64));
    set(&o, "isLearner", JsValue::from_bool(r.is_learner));
    o
}

pub fn members(r: &MemberListResponse) -> JsValue {
    let strings = |v: &[String]| v.iter().map(|s| JsValue::from_str(s)).collect::<Array>();
    r.members
        .iter()
        .map(|m| {
            let o = obj();
            set(&o, "id", m.id.to_string().into());
            set(&o, "name", m.name.as_str().into());
            set(&o, "peerUrls", strings(&m.peer_ur_ls).into());
            set(&o, "clientUrls", strings(&m.client_ur_ls).into());
            set(&o, "isLearner", JsValue::from_bool(m.is_learner));
            JsValue::from(o)
        })
        .collect::<Array>()
        .into()
}
