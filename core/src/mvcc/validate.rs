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

/// The keys deleted by a txn's branch, as disjoint `[start, end)`
/// intervals kept sorted: adding a span and asking about a key are both
/// O(log n), so a txn of many ops (nested ones included) is checked in
/// O(n log n).
#[derive(Default)]
struct Deleted {
    /// start -> end (exclusive), disjoint and not touching.
    spans: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Deleted {
    /// Adds what a delete-range of `key` .. `range_end` removes: the key
    /// alone with no range end; `[key, range_end)` otherwise. As in etcd,
    /// a `range_end` of `"\0"` is taken literally here (an empty span), so
    /// it never conflicts with a put.
    fn add(&mut self, key: &[u8], range_end: &[u8]) {
        let (mut start, mut end) = if range_end.is_empty() {
            let mut next = key.to_vec();
            next.push(0);
            (key.to_vec(), next)
        } else {
            (key.to_vec(), range_end.to_vec())
        };
        if end <= start {
            return;
        }
        // Absorb every span that overlaps or touches [start, end).
        if let Some((s, e)) = self.spans.range(..=start.clone()).next_back() {
            if *e >= start {
                start = s.clone();
                end = end.max(e.clone());
            }
        }
        let absorbed: Vec<Vec<u8>> = self
            .spans
            .range(start.clone()..=end.clone())
            .map(|(s, _)| s.clone())
            .collect();
        for s in absorbed {
            if let Some(e) = self.spans.remove(&s) {
                end = end.max(e);
            }
        }
        self.spans.insert(start, end);
    }

    fn contains(&self, k: &[u8]) -> bool {
        self.spans
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(k)))
            .next_back()
            .is_some_and(|(_, end)| k < end.as_slice())
    }

    fn extend(&mut self, other: Deleted) {
        for (s, e) in other.spans {
            self.add(&s, &e);
        }
    }
}

/// The keys put and the spans deleted by `reqs` (and their nested txns);
/// fails if one key is written twice where both writes could happen.
fn check_intervals(reqs: &[RequestOp]) -> Result<(std::collections::HashSet<Vec<u8>>, Deleted), EtcdError> {
    use std::collections::HashSet;
    let mut dels = Deleted::default();
    for op in reqs {
        if let Some(Op::RequestDeleteRange(d)) = &op.request {
            dels.add(&d.key, &d.range_end);
        }
    }
    let mut puts: HashSet<Vec<u8>> = HashSet::new();
    for op in reqs {
        let Some(Op::RequestTxn(t)) = &op.request else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.contains(k) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in puts_else {
            // Then and else exclude each other: a key in both is fine.
            if (puts.contains(&k) && !puts_then.contains(&k)) || dels.contains(&k) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in reqs {
        let Some(Op::RequestPut(p)) = &op.request else { continue };
        if puts.contains(&p.key) || dels.contains(&p.key) {
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

    /// The interval set against the plain definition, on random spans.
    #[test]
    fn deleted_spans_answer_as_a_list_of_spans_would() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut set = Deleted::default();
            let mut plain: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for _ in 0..(next() % 12) {
                let a = vec![b'a' + (next() % 8) as u8];
                let b = match next() % 3 {
                    0 => Vec::new(),
                    1 => vec![b'a' + (next() % 9) as u8],
                    _ => vec![0],
                };
                set.add(&a, &b);
                plain.push((a, b));
            }
            for k in 0..10u8 {
                let key = [b'a' + k];
                let expected = plain.iter().any(|(s, e)| {
                    if e.is_empty() {
                        s.as_slice() == key
                    } else {
                        s.as_slice() <= key.as_slice() && key.as_slice() < e.as_slice()
                    }
                });
                assert_eq!(set.contains(&key), expected, "{plain:?} {key:?}");
                let longer = [b'a' + k, b'x'];
                let expected = plain.iter().any(|(s, e)| {
                    !e.is_empty() && s.as_slice() <= longer.as_slice() && longer.as_slice() < e.as_slice()
                });
                assert_eq!(set.contains(&longer), expected, "{plain:?} {longer:?}");
            }
        }
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
