//! Transactions: compares, then the `success` or the `failure` operations,
//! all at one revision.

use concord_core::api::etcdserverpb::response_op::Response;
use concord_core::client::{Compare, CompareOn, DeleteOptions, GetOptions, Op, PutOptions, Txn};

use crate::client::ConcordClient;
use crate::error::{ConcordError, ConcordStatus};
use crate::guard::{bytes, guard, handle, out, Failure};
use crate::kv::{key_range, ConcordKvs, ConcordKvsStorage};

/// What a compare looks at.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcordCompareTarget {
    Version = 0,
    CreateRevision = 1,
    ModRevision = 2,
    Value = 3,
    Lease = 4,
}

/// How it compares.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcordCompareResult {
    Equal = 0,
    Greater = 1,
    Less = 2,
    NotEqual = 3,
}

/// One compare: `target(key) result (number | value)`; over
/// `[key, range_end)` when `range_end_len` > 0 (true only if true for each).
#[repr(C)]
pub struct ConcordCompare {
    pub target: ConcordCompareTarget,
    pub result: ConcordCompareResult,
    pub key: *const u8,
    pub key_len: usize,
    pub range_end: *const u8,
    pub range_end_len: usize,
    /// For every target but `VALUE`.
    pub number: i64,
    /// For `VALUE`.
    pub value: *const u8,
    pub value_len: usize,
}

/// The kind of an operation.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcordOpType {
    Put = 0,
    Get = 1,
    Delete = 2,
}

/// One operation: a put of `value` (under `lease`), a get or a delete of
/// `key`, `[key, range_end)`, or with `prefix` every key starting with `key`.
#[repr(C)]
pub struct ConcordOp {
    pub op_type: ConcordOpType,
    pub key: *const u8,
    pub key_len: usize,
    pub value: *const u8,
    pub value_len: usize,
    pub range_end: *const u8,
    pub range_end_len: usize,
    pub prefix: bool,
    pub lease: i64,
}

/// The answer of one operation that ran.
#[repr(C)]
pub struct ConcordOpResult {
    pub op_type: ConcordOpType,
    /// The revision of a put or delete.
    pub revision: i64,
    /// How many keys a delete removed.
    pub deleted: i64,
    /// A get's key-values (NULL for put and delete); freed with the result.
    pub kvs: *const ConcordKvs,
}

/// A transaction's answer. Free with `concord_txn_result_free`.
#[repr(C)]
pub struct ConcordTxnResult {
    pub succeeded: bool,
    pub revision: i64,
    pub results: *const ConcordOpResult,
    pub len: usize,
    storage: *mut Vec<ConcordOpResult>,
}

fn slice<'a, T>(ptr: *const T, n: usize, what: &'static str) -> Result<&'a [T], Failure> {
    if n == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::Null(what));
    }
    // SAFETY: the caller promises `n` elements at `ptr`, read before this call returns.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

fn compare(c: &ConcordCompare) -> Result<Compare, Failure> {
    let key = bytes(c.key, c.key_len, "compare key")?;
    let end = bytes(c.range_end, c.range_end_len, "compare range_end")?;
    let on: CompareOn = match c.target {
        ConcordCompareTarget::Version => Compare::version(key),
        ConcordCompareTarget::CreateRevision => Compare::create_revision(key),
        ConcordCompareTarget::ModRevision => Compare::mod_revision(key),
        ConcordCompareTarget::Value => Compare::value(key),
        ConcordCompareTarget::Lease => Compare::lease(key),
    };
    let on = if end.is_empty() { on } else { on.range_end(end) };
    if c.target == ConcordCompareTarget::Value {
        let v = bytes(c.value, c.value_len, "compare value")?;
        Ok(match c.result {
            ConcordCompareResult::Equal => on.eq(v),
            ConcordCompareResult::Greater => on.gt(v),
            ConcordCompareResult::Less => on.lt(v),
            ConcordCompareResult::NotEqual => on.ne(v),
        })
    } else {
        let n = c.number;
        Ok(match c.result {
            ConcordCompareResult::Equal => on.eq(n),
            ConcordCompareResult::Greater => on.gt(n),
            ConcordCompareResult::Less => on.lt(n),
            ConcordCompareResult::NotEqual => on.ne(n),
        })
    }
}

fn op(o: &ConcordOp) -> Result<Op, Failure> {
    let key = bytes(o.key, o.key_len, "op key")?;
    let end = bytes(o.range_end, o.range_end_len, "op range_end")?;
    Ok(match o.op_type {
        ConcordOpType::Put => {
            let mut p = PutOptions::new();
            if o.lease != 0 {
                p = p.lease(o.lease);
            }
            Op::put(key, bytes(o.value, o.value_len, "op value")?, p)
        }
        ConcordOpType::Get => Op::get(key, key_range!(GetOptions::new(), o.prefix, end)),
        ConcordOpType::Delete => Op::delete(key, key_range!(DeleteOptions::new(), o.prefix, end)),
    })
}

/// Runs a transaction. `succeeded` (may be NULL) says whether the compares
/// held; `result` (may be NULL) receives the operations' answers.
#[no_mangle]
pub extern "C" fn concord_txn(
    client: *const ConcordClient,
    compares: *const ConcordCompare,
    compares_len: usize,
    success: *const ConcordOp,
    success_len: usize,
    failure: *const ConcordOp,
    failure_len: usize,
    succeeded: *mut bool,
    result: *mut *mut ConcordTxnResult,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let cmps = slice(compares, compares_len, "compares")?
            .iter()
            .map(compare)
            .collect::<Result<Vec<_>, _>>()?;
        let ok = slice(success, success_len, "success")?
            .iter()
            .map(op)
            .collect::<Result<Vec<_>, _>>()?;
        let ko = slice(failure, failure_len, "failure")?
            .iter()
            .map(op)
            .collect::<Result<Vec<_>, _>>()?;
        let r = c.block_on(c.client().txn(Txn::new().when(cmps).and_then(ok).or_else(ko)))?;
        if !succeeded.is_null() {
            out(succeeded, r.succeeded, "succeeded")?;
        }
        if result.is_null() {
            return Ok(());
        }
        let revision = r.header.as_ref().map_or(0, |h| h.revision);
        let answers: Vec<ConcordOpResult> = r
            .responses
            .into_iter()
            .filter_map(|o| o.response)
            .filter_map(|resp| match resp {
                Response::ResponsePut(p) => Some(ConcordOpResult {
                    op_type: ConcordOpType::Put,
                    revision: p.header.map_or(revision, |h| h.revision),
                    deleted: 0,
                    kvs: std::ptr::null(),
                }),
                Response::ResponseRange(g) => Some(ConcordOpResult {
                    op_type: ConcordOpType::Get,
                    revision,
                    deleted: 0,
                    kvs: ConcordKvsStorage::into_list(g.kvs, g.count, g.more, revision),
                }),
                Response::ResponseDeleteRange(d) => Some(ConcordOpResult {
                    op_type: ConcordOpType::Delete,
                    revision,
                    deleted: d.deleted,
                    kvs: std::ptr::null(),
                }),
                // The C API builds no nested transactions, so none answers.
                Response::ResponseTxn(_) => None,
            })
            .collect();
        let storage = Box::into_raw(Box::new(answers));
        // SAFETY: just made from a Box; freed only by concord_txn_result_free.
        let list = unsafe { &*storage };
        let res = ConcordTxnResult {
            succeeded: r.succeeded,
            revision,
            results: list.as_ptr(),
            len: list.len(),
            storage,
        };
        out(result, Box::into_raw(Box::new(res)), "result")
    })
}

/// Frees a transaction's answer (NULL is fine).
#[no_mangle]
pub extern "C" fn concord_txn_result_free(result: *mut ConcordTxnResult) {
    let _ = guard(std::ptr::null_mut(), || {
        if !result.is_null() {
            // SAFETY: made by concord_txn with Box::into_raw, freed once.
            let r = unsafe { Box::from_raw(result) };
            // SAFETY: `storage` is the Box made with the result.
            let answers = unsafe { Box::from_raw(r.storage) };
            for a in answers.iter() {
                crate::kv::concord_kvs_free(a.kvs.cast_mut());
            }
        }
        Ok(())
    });
}
