//! Typed builders for the KV requests: options for get, put and delete,
//! compares, operations and (nested) transactions. They only build etcd's
//! request messages; [`Client`](super::Client) sends them.

use crate::api::etcdserverpb::{
    compare, request_op, Compare as PbCompare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

pub use crate::api::etcdserverpb::range_request::{SortOrder, SortTarget};

pub use crate::api::keys::prefix_end;

/// The key range options get, delete, compares and watch share (each
/// takes one with `key_range`, or through `range_end`/`prefix`/`from_key`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KeyRange {
    /// Just the key.
    #[default]
    Single,
    /// `[key, end)`.
    End(Vec<u8>),
    /// Every key with the key as prefix.
    Prefix,
    /// Every key from the key on.
    FromKey,
}

impl KeyRange {
    /// `(key, range_end)` as etcd's requests carry them. A prefix of the
    /// empty key means every key, as in etcd's client.
    pub(crate) fn apply(&self, key: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        match self {
            KeyRange::Single => (key, Vec::new()),
            KeyRange::End(end) => (key, end.clone()),
            KeyRange::Prefix if key.is_empty() => (vec![0], vec![0]),
            KeyRange::Prefix => {
                let end = prefix_end(&key);
                (key, end)
            }
            KeyRange::FromKey if key.is_empty() => (vec![0], vec![0]),
            KeyRange::FromKey => (key, vec![0]),
        }
    }
}

/// The key range builders every option type shares (`range_end`,
/// `prefix`, `from_key`), over a field `range: KeyRange`.
macro_rules! key_range_options {
    () => {
        /// Keys in `[key, end)`.
        pub fn range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
            self.range = KeyRange::End(end.into());
            self
        }
        /// Every key starting with the key.
        pub fn prefix(mut self) -> Self {
            self.range = KeyRange::Prefix;
            self
        }
        /// Every key from the key on.
        pub fn from_key(mut self) -> Self {
            self.range = KeyRange::FromKey;
            self
        }
        /// The keys `range` covers (a binding that read it from its caller).
        pub fn key_range(mut self, range: KeyRange) -> Self {
            self.range = range;
            self
        }
    };
}
pub(crate) use key_range_options;

/// Options of a get (etcd's Range).
///
/// ```
/// use concord_core::client::GetOptions;
/// let req = GetOptions::new().prefix().limit(10).serializable().build("app/");
/// assert_eq!(req.range_end, b"app0".to_vec());
/// assert!(req.serializable);
/// ```
#[derive(Clone, Debug, Default)]
pub struct GetOptions {
    range: KeyRange,
    req: RangeRequest,
}

impl GetOptions {
    /// A get of one key at the newest revision, linearizable.
    pub fn new() -> GetOptions {
        GetOptions::default()
    }
    key_range_options!();
    /// At most `n` keys (0: no limit).
    pub fn limit(mut self, n: i64) -> Self {
        self.req.limit = n;
        self
    }
    /// Read at this revision (0: the newest).
    pub fn revision(mut self, rev: i64) -> Self {
        self.req.revision = rev;
        self
    }
    /// Sort the answer.
    pub fn sort(mut self, target: SortTarget, order: SortOrder) -> Self {
        self.req.sort_target = target as i32;
        self.req.sort_order = order as i32;
        self
    }
    /// Served by the member asked, without a round of consensus.
    pub fn serializable(mut self) -> Self {
        self.req.serializable = true;
        self
    }
    /// Keys only, no values.
    pub fn keys_only(mut self) -> Self {
        self.req.keys_only = true;
        self
    }
    /// Only the count.
    pub fn count_only(mut self) -> Self {
        self.req.count_only = true;
        self
    }
    /// Keys last modified at or after `rev`.
    pub fn min_mod_revision(mut self, rev: i64) -> Self {
        self.req.min_mod_revision = rev;
        self
    }
    /// Keys last modified at or before `rev`.
    pub fn max_mod_revision(mut self, rev: i64) -> Self {
        self.req.max_mod_revision = rev;
        self
    }
    /// Keys created at or after `rev`.
    pub fn min_create_revision(mut self, rev: i64) -> Self {
        self.req.min_create_revision = rev;
        self
    }
    /// Keys created at or before `rev`.
    pub fn max_create_revision(mut self, rev: i64) -> Self {
        self.req.max_create_revision = rev;
        self
    }
    /// etcd's request for `key` with these options.
    pub fn build(self, key: impl Into<Vec<u8>>) -> RangeRequest {
        let (key, range_end) = self.range.apply(key.into());
        RangeRequest {
            key,
            range_end,
            ..self.req
        }
    }
}

/// Options of a put.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    req: PutRequest,
}

impl PutOptions {
    /// A plain put.
    pub fn new() -> PutOptions {
        PutOptions::default()
    }
    /// Attach the key to this lease.
    pub fn lease(mut self, id: i64) -> Self {
        self.req.lease = id;
        self
    }
    /// Return the previous key-value.
    pub fn prev_kv(mut self) -> Self {
        self.req.prev_kv = true;
        self
    }
    /// Keep the current value (the value given must be empty).
    pub fn ignore_value(mut self) -> Self {
        self.req.ignore_value = true;
        self
    }
    /// Keep the current lease (no lease may be given).
    pub fn ignore_lease(mut self) -> Self {
        self.req.ignore_lease = true;
        self
    }
    /// etcd's request for `key` = `value` with these options.
    pub fn build(self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> PutRequest {
        PutRequest {
            key: key.into(),
            value: value.into(),
            ..self.req
        }
    }
}

/// Options of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    range: KeyRange,
    prev_kv: bool,
}

impl DeleteOptions {
    /// Delete one key.
    pub fn new() -> DeleteOptions {
        DeleteOptions::default()
    }
    key_range_options!();
    /// Return the deleted key-values.
    pub fn prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }
    /// etcd's request for `key` with these options.
    pub fn build(self, key: impl Into<Vec<u8>>) -> DeleteRangeRequest {
        let (key, range_end) = self.range.apply(key.into());
        DeleteRangeRequest {
            key,
            range_end,
            prev_kv: self.prev_kv,
        }
    }
}

/// A transaction compare: pick a target with a constructor, then the
/// relation with `eq`/`ne`/`lt`/`gt`.
///
/// ```
/// use concord_core::client::Compare;
/// let c = Compare::mod_revision("k").eq(5);
/// let d = Compare::value("cfg/").prefix().ne("off");
/// assert_eq!(c.into_pb().key, b"k".to_vec());
/// assert_eq!(d.into_pb().range_end, b"cfg0".to_vec());
/// ```
#[derive(Clone, Debug)]
pub struct Compare {
    key: Vec<u8>,
    range: KeyRange,
    target: compare::CompareTarget,
    result: compare::CompareResult,
    value: Option<compare::TargetUnion>,
}

/// A compare with its target chosen and its relation still to give.
#[derive(Clone, Debug)]
pub struct CompareOn {
    key: Vec<u8>,
    range: KeyRange,
    target: compare::CompareTarget,
}

impl Compare {
    fn on(key: impl Into<Vec<u8>>, target: compare::CompareTarget) -> CompareOn {
        CompareOn {
            key: key.into(),
            range: KeyRange::Single,
            target,
        }
    }
    /// Compare the key's value.
    pub fn value(key: impl Into<Vec<u8>>) -> CompareOn {
        Compare::on(key, compare::CompareTarget::Value)
    }
    /// Compare the key's version (0: the key does not exist).
    pub fn version(key: impl Into<Vec<u8>>) -> CompareOn {
        Compare::on(key, compare::CompareTarget::Version)
    }
    /// Compare the revision the key was created at.
    pub fn create_revision(key: impl Into<Vec<u8>>) -> CompareOn {
        Compare::on(key, compare::CompareTarget::Create)
    }
    /// Compare the revision the key was last modified at.
    pub fn mod_revision(key: impl Into<Vec<u8>>) -> CompareOn {
        Compare::on(key, compare::CompareTarget::Mod)
    }
    /// Compare the key's lease.
    pub fn lease(key: impl Into<Vec<u8>>) -> CompareOn {
        Compare::on(key, compare::CompareTarget::Lease)
    }

    /// etcd's message.
    pub fn into_pb(self) -> PbCompare {
        let (key, range_end) = self.range.apply(self.key);
        PbCompare {
            result: self.result as i32,
            target: self.target as i32,
            key,
            range_end,
            target_union: self.value,
        }
    }
}

/// What a compare's target is compared with: a value or a number.
pub trait CompareWith {
    /// The target union for `target`.
    fn into_target(self, target: compare::CompareTarget) -> compare::TargetUnion;
}

impl CompareWith for i64 {
    fn into_target(self, target: compare::CompareTarget) -> compare::TargetUnion {
        use compare::{CompareTarget as T, TargetUnion as U};
        match target {
            T::Version => U::Version(self),
            T::Create => U::CreateRevision(self),
            T::Mod => U::ModRevision(self),
            T::Lease => U::Lease(self),
            T::Value => U::Value(self.to_string().into_bytes()),
        }
    }
}

macro_rules! compare_with_bytes {
    ($($t:ty),*) => {$(
        impl CompareWith for $t {
            fn into_target(self, _: compare::CompareTarget) -> compare::TargetUnion {
                compare::TargetUnion::Value(Vec::from(self))
            }
        }
    )*};
}
compare_with_bytes!(&str, String, &[u8], Vec<u8>);

impl CompareOn {
    // Over a range of keys, a compare is true only if true for each.
    key_range_options!();
    fn with(self, result: compare::CompareResult, v: impl CompareWith) -> Compare {
        Compare {
            value: Some(v.into_target(self.target)),
            key: self.key,
            range: self.range,
            target: self.target,
            result,
        }
    }
    /// Target == v.
    pub fn eq(self, v: impl CompareWith) -> Compare {
        self.with(compare::CompareResult::Equal, v)
    }
    /// Target != v.
    pub fn ne(self, v: impl CompareWith) -> Compare {
        self.with(compare::CompareResult::NotEqual, v)
    }
    /// Target < v.
    pub fn lt(self, v: impl CompareWith) -> Compare {
        self.with(compare::CompareResult::Less, v)
    }
    /// Target > v.
    pub fn gt(self, v: impl CompareWith) -> Compare {
        self.with(compare::CompareResult::Greater, v)
    }
}

/// One operation of a transaction.
#[derive(Clone, Debug)]
pub struct Op(request_op::Request);

impl Op {
    /// A get.
    pub fn get(key: impl Into<Vec<u8>>, opts: GetOptions) -> Op {
        Op(request_op::Request::RequestRange(opts.build(key)))
    }
    /// A put.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, opts: PutOptions) -> Op {
        Op(request_op::Request::RequestPut(opts.build(key, value)))
    }
    /// A delete.
    pub fn delete(key: impl Into<Vec<u8>>, opts: DeleteOptions) -> Op {
        Op(request_op::Request::RequestDeleteRange(opts.build(key)))
    }
    /// A nested transaction.
    pub fn txn(txn: Txn) -> Op {
        Op(request_op::Request::RequestTxn(txn.into_pb()))
    }
    fn into_pb(self) -> RequestOp {
        RequestOp { request: Some(self.0) }
    }
}

/// A transaction: if every compare holds, the `and_then` operations run,
/// else the `or_else` ones; all at one revision.
///
/// ```
/// use concord_core::client::{Compare, Op, PutOptions, GetOptions, Txn};
/// let txn = Txn::new()
///     .when([Compare::version("lock").eq(0)])
///     .and_then([Op::put("lock", "me", PutOptions::new())])
///     .or_else([Op::get("lock", GetOptions::new())]);
/// assert_eq!(txn.into_pb().success.len(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Txn {
    compare: Vec<Compare>,
    success: Vec<Op>,
    failure: Vec<Op>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Txn {
        Txn::default()
    }
    /// Adds compares (all must hold).
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compare.extend(compares);
        self
    }
    /// Adds operations for when the compares hold.
    pub fn and_then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.success.extend(ops);
        self
    }
    /// Adds operations for when a compare fails.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.failure.extend(ops);
        self
    }
    /// etcd's message.
    pub fn into_pb(self) -> TxnRequest {
        TxnRequest {
            compare: self.compare.into_iter().map(Compare::into_pb).collect(),
            success: self.success.into_iter().map(Op::into_pb).collect(),
            failure: self.failure.into_iter().map(Op::into_pb).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(KeyRange::Prefix.apply(b"a".to_vec()), (b"a".to_vec(), b"b".to_vec()));
        assert_eq!(KeyRange::Prefix.apply(vec![]), (vec![0], vec![0]));
        assert_eq!(KeyRange::FromKey.apply(b"k".to_vec()), (b"k".to_vec(), vec![0]));
        assert_eq!(prefix_end(&[0xff, 0xff]), vec![0]);
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }

    #[test]
    fn nested_txn() {
        let inner = Txn::new().and_then([Op::delete("x", DeleteOptions::new().prefix())]);
        let t = Txn::new()
            .when([Compare::value("k").eq("v"), Compare::lease("k").gt(0)])
            .and_then([Op::txn(inner)])
            .into_pb();
        assert_eq!(t.compare[1].target_union, Some(compare::TargetUnion::Lease(0)));
        match &t.success[0].request {
            Some(request_op::Request::RequestTxn(n)) => match &n.success[0].request {
                Some(request_op::Request::RequestDeleteRange(d)) => assert_eq!(d.range_end, b"y".to_vec()),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
}
