//! Transactions: compares, then the `success` or the `failure` operations,
//! all at one revision.

use concord_core::api::etcdserverpb::response_op::Response;
use concord_core::api::etcdserverpb::TxnResponse;
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
    /// A nested transaction (`txn`).
    Txn = 3,
}

/// A transaction: compares, then the `success` or the `failure` operations
/// (for a nested one, `concord_op.txn`).
#[repr(C)]
pub struct ConcordTxnRequest {
    pub compares: *const ConcordCompare,
    pub compares_len: usize,
    pub success: *const ConcordOp,
    pub success_len: usize,
    pub failure: *const ConcordOp,
    pub failure_len: usize,
}

/// Transactions nest at most this deep (a loop of pointers is refused, not followed).
const MAX_DEPTH: usize = 32;

/// One operation: a put of `value` (under `lease`), a get or a delete of
/// `key`, `[key, range_end)`, or with `prefix` every key starting with
/// `key`; or a nested transaction (`txn`, the other fields unused).
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
    /// For `CONCORD_OP_TYPE_TXN`.
    pub txn: *const ConcordTxnRequest,
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
    /// A nested transaction's answer (NULL otherwise); freed with the result.
    pub txn: *const ConcordTxnResult,
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

fn op(o: &ConcordOp, depth: usize) -> Result<Op, Failure> {
    if o.op_type == ConcordOpType::Txn {
        // SAFETY: NULL or a valid `concord_txn_request` by contract.
        let t = unsafe { o.txn.as_ref() }.ok_or(Failure::Null("op txn"))?;
        return Ok(Op::txn(build(t, depth + 1)?));
    }
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
        ConcordOpType::Get => Op::get(key, GetOptions::new().key_range(key_range(o.prefix, end))),
        ConcordOpType::Delete => Op::delete(key, DeleteOptions::new().key_range(key_range(o.prefix, end))),
        ConcordOpType::Txn => unreachable!("handled above"),
    })
}

/// The transaction `t` describes, nested `depth` deep.
fn build(t: &ConcordTxnRequest, depth: usize) -> Result<Txn, Failure> {
    if depth > MAX_DEPTH {
        return Err(Failure::Client(concord_core::client::Error::InvalidArgument(format!(
            "transactions nest deeper than {MAX_DEPTH}"
        ))));
    }
    let ops =
        |ptr, n, what| -> Result<Vec<Op>, Failure> { slice(ptr, n, what)?.iter().map(|o| op(o, depth)).collect() };
    let cmps = slice(t.compares, t.compares_len, "compares")?
        .iter()
        .map(compare)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Txn::new()
        .when(cmps)
        .and_then(ops(t.success, t.success_len, "success")?)
        .or_else(ops(t.failure, t.failure_len, "failure")?))
}

/// A transaction's answer for C, at `revision` (nested answers included).
fn answer(r: TxnResponse, revision: i64) -> *mut ConcordTxnResult {
    let answers: Vec<ConcordOpResult> = r
        .responses
        .into_iter()
        .filter_map(|o| o.response)
        .map(|resp| match resp {
            Response::ResponsePut(p) => ConcordOpResult {
                op_type: ConcordOpType::Put,
                revision: p.header.map_or(revision, |h| h.revision),
                deleted: 0,
                kvs: std::ptr::null(),
                txn: std::ptr::null(),
            },
            Response::ResponseRange(g) => ConcordOpResult {
                op_type: ConcordOpType::Get,
                revision,
                deleted: 0,
                kvs: ConcordKvsStorage::into_list(g.kvs, g.count, g.more, revision),
                txn: std::ptr::null(),
            },
            Response::ResponseDeleteRange(d) => ConcordOpResult {
                op_type: ConcordOpType::Delete,
                revision,
                deleted: d.deleted,
                kvs: std::ptr::null(),
                txn: std::ptr::null(),
            },
            Response::ResponseTxn(t) => ConcordOpResult {
                op_type: ConcordOpType::Txn,
                revision,
                deleted: 0,
                kvs: std::ptr::null(),
                txn: answer(t, revision),
            },
        })
        .collect();
    let storage = Box::into_raw(Box::new(answers));
    // SAFETY: just made from a Box; freed only by concord_txn_result_free.
    let list = unsafe { &*storage };
    Box::into_raw(Box::new(ConcordTxnResult {
        succeeded: r.succeeded,
        revision,
        results: list.as_ptr(),
        len: list.len(),
        storage,
    }))
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
        let t = build(
            &ConcordTxnRequest {
                compares,
                compares_len,
                success,
                success_len,
                failure,
                failure_len,
            },
            0,
        )?;
        let r = c.block_on(c.client().txn(t))?;
        if !succeeded.is_null() {
            out(succeeded, r.succeeded, "succeeded")?;
        }
        if result.is_null() {
            return Ok(());
        }
        let revision = r.header.as_ref().map_or(0, |h| h.revision);
        out(result, answer(r, revision), "result")
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
                concord_txn_result_free(a.txn.cast_mut());
            }
        }
        Ok(())
    });
}
