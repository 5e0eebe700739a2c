//! Checks etcd makes on a request before it is proposed: they need no
//! state, and a request that fails them never reaches the log.

use crate::api::error::EtcdError;
use crate::api::etcdserverpb::request_op::Request as Op;
use crate::api::etcdserverpb::{range_request, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};

/// etcd's checks on a range request.
pub fn check_range(r: &RangeRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if range_request::SortOrder::try_from(r.sort_order).is_err()
        || range_request::SortTarget::try_from(r.sort_target).is_err()
    {
        return Err(EtcdError::InvalidSortOption);
    }
    Ok(())
}

/// etcd's checks on a put request.
pub fn check_put(r: &PutRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

/// etcd's checks on a delete-range request.
pub fn check_delete_range(r: &DeleteRangeRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// etcd's checks on a txn: size limit, every op (nested too), and that no
/// key is written twice on one path.
pub fn check_txn(r: &TxnRequest, max_txn_ops: usize) -> Result<(), EtcdError> {
    let ops = r.compare.len().max(r.success.len()).max(r.failure.len());
    if ops > max_txn_ops {
        return Err(EtcdError::TooManyOps);
    }
    for c in &r.compare {
        if c.key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
    }
    for op in r.success.iter().chain(&r.failure) {
        match &op.request {
            Some(Op::RequestRange(x)) => check_range(x)?,
            Some(Op::RequestPut(x)) => check_put(x)?,
            Some(Op::RequestDeleteRange(x)) => check_delete_range(x)?,
            Some(Op::RequestTxn(x)) => check_txn(x, max_txn_ops)?,
            None => {}
        }
    }
    check_intervals(&r.success)?;
    check_intervals(&r.failure)?;
    Ok(())
}

/// A deleted span: `[start, end)`, or the single key `start` when `end`
/// is `None`. As in etcd, a `range_end` of `"\0"` is taken literally here
/// (an empty span), so it never conflicts with a put.
struct Span {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Span {
    fn contains(&self, k: &[u8]) -> bool {
        match &self.end {
            None => self.start == k,
            Some(end) => self.start.as_slice() <= k && k < end.as_slice(),
        }
    }
}

/// The keys put and the spans deleted by `reqs` (and their nested txns);
/// fails if one key is written twice where both writes could happen.
fn check_intervals(reqs: &[RequestOp]) -> Result<(std::collections::HashSet<Vec<u8>>, Vec<Span>), EtcdError> {
    use std::collections::HashSet;
    let mut dels: Vec<Span> = reqs
        .iter()
        .filter_map(|op| match &op.request {
            Some(Op::RequestDeleteRange(d)) => Some(Span {
                start: d.key.clone(),
                end: (!d.range_end.is_empty()).then(|| d.range_end.clone()),
            }),
            _ => None,
        })
        .collect();
    let deleted = |dels: &[Span], k: &[u8]| dels.iter().any(|s| s.contains(k));
    let mut puts: HashSet<Vec<u8>> = HashSet::new();
    for op in reqs {
        let Some(Op::RequestTxn(t)) = &op.request else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || deleted(&dels, k) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in puts_else {
            // Then and else exclude each other: a key in both is fine.
            if (puts.contains(&k) && !puts_then.contains(&k)) || deleted(&dels, &k) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in reqs {
        let Some(Op::RequestPut(p)) = &op.request else { continue };
        if puts.contains(&p.key) || deleted(&dels, &p.key) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str) -> RequestOp {
        RequestOp {
            request: Some(Op::RequestPut(PutRequest {
                key: k.into(),
                ..Default::default()
            })),
        }
    }

    fn del(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Op::RequestDeleteRange(DeleteRangeRequest {
                key: k.into(),
                range_end: end.into(),
                ..Default::default()
            })),
        }
    }

    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            compare: vec![],
            success,
            failure,
        }
    }

    #[test]
    fn duplicate_puts_and_put_in_deleted_range_are_refused() {
        assert_eq!(
            check_txn(&txn(vec![put("a"), put("a")], vec![]), 128),
            Err(EtcdError::DuplicateKey)
        );
        assert_eq!(
            check_txn(&txn(vec![del("a", "c"), put("b")], vec![]), 128),
            Err(EtcdError::DuplicateKey)
        );
        assert_eq!(check_txn(&txn(vec![put("a")], vec![put("a")]), 128), Ok(()));
        assert_eq!(check_txn(&txn(vec![del("a", "c"), put("c")], vec![]), 128), Ok(()));
    }

    #[test]
    fn nested_then_and_else_may_share_keys() {
        let nested = RequestOp {
            request: Some(Op::RequestTxn(txn(vec![put("x")], vec![put("x")]))),
        };
        assert_eq!(check_txn(&txn(vec![nested.clone()], vec![]), 128), Ok(()));
        assert_eq!(
            check_txn(&txn(vec![nested, put("x")], vec![]), 128),
            Err(EtcdError::DuplicateKey)
        );
    }

    #[test]
    fn limits_and_empty_keys() {
        let many = txn((0..129).map(|i| put(&format!("k{i}"))).collect(), vec![]);
        assert_eq!(check_txn(&many, 128), Err(EtcdError::TooManyOps));
        assert_eq!(check_put(&PutRequest::default()), Err(EtcdError::EmptyKey));
        let p = PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ignore_value: true,
            ..Default::default()
        };
        assert_eq!(check_put(&p), Err(EtcdError::ValueProvided));
    }
}
