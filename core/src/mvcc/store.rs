//! The key space: the index plus the current and compacted revisions, and
//! the operations etcd defines on them. Every write goes through [`Mvcc::apply`]
//! (called by the state machine in log order), so the same log always gives
//! the same revisions.

use std::cmp::Ordering;

use crate::api::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::api::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::api::etcdserverpb::request_op::Request as Op;
use crate::api::etcdserverpb::response_op::Response as OpResp;
use crate::api::etcdserverpb::{
    CompactionRequest, CompactionResponse, Compare, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use crate::api::mvccpb::event::EventType;
use crate::api::mvccpb::{Event, KeyValue};

use super::backend::{KvRead, KvWrite, Record};
use super::index::TreeIndex;
use super::{Error, Revision};

/// The lessor as the key space sees it: whether a lease exists, and which
/// lease a key is attached to (etcd breaks the mvcc↔lease cycle the same
/// way). The lessor implements it; [`NoLeases`] is a store without leases.
pub trait Leases {
    /// True if lease `id` is currently granted.
    fn exists(&self, id: i64) -> bool;
    /// Attaches `key` to lease `id` (0: to none), detaching it from any other.
    fn attach(&mut self, key: &[u8], id: i64);
    /// Detaches `key` from its lease, if any.
    fn detach(&mut self, key: &[u8]);
}

/// A lessor with no leases: every lease ID is unknown.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLeases;

impl Leases for NoLeases {
    fn exists(&self, _id: i64) -> bool {
        false
    }
    fn attach(&mut self, _key: &[u8], _id: i64) {}
    fn detach(&mut self, _key: &[u8]) {}
}

/// The revisioned key space.
#[derive(Debug)]
pub struct Mvcc {
    index: TreeIndex,
    current_rev: i64,
    compact_rev: i64,
    /// Changes made since the last [`Mvcc::take_events`], for watchers.
    events: Vec<Event>,
    /// Keys put since start (etcd's `etcd_mvcc_put_total`).
    puts: u64,
    /// Keys deleted since start (etcd's `etcd_mvcc_delete_total`).
    deletes: u64,
}

impl Default for Mvcc {
    fn default() -> Self {
        Self::new()
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// The revision counters of one write: all its changes share `begin + 1`.
struct WriteCtx {
    begin: i64,
    sub: i64,
}

impl WriteCtx {
    fn next(&mut self) -> Revision {
        let r = Revision::new(self.begin + 1, self.sub);
        self.sub += 1;
        r
    }

    /// The revision a read inside this write sees.
    fn read_rev(&self) -> i64 {
        if self.sub > 0 {
            self.begin + 1
        } else {
            self.begin
        }
    }
}

impl Mvcc {
    /// An empty key space at revision 1 (etcd's starting revision).
    pub fn new() -> Self {
        Mvcc {
            index: TreeIndex::default(),
            current_rev: 1,
            compact_rev: 0,
            events: Vec::new(),
            puts: 0,
            deletes: 0,
        }
    }

    /// Rebuilds the key space from stored changes given in revision order.
    pub fn restore<'a>(
        current_rev: i64,
        compact_rev: i64,
        records: impl IntoIterator<Item = (Revision, &'a Record)>,
    ) -> Self {
        let mut m = Mvcc {
            index: TreeIndex::default(),
            current_rev: current_rev.max(1),
            compact_rev,
            events: Vec::new(),
            puts: 0,
            deletes: 0,
        };
        for (rev, rec) in records {
            m.restore_one(rev, rec);
        }
        m
    }

    /// Adds one stored change while rebuilding (changes in revision order).
    pub fn restore_one(&mut self, rev: Revision, rec: &Record) {
        if rec.tombstone {
            self.index.tombstone(&rec.kv.key, rev);
        } else {
            let created = Revision::new(rec.kv.create_revision, 0);
            self.index.restore(&rec.kv.key, created, rev, rec.kv.version);
        }
        self.current_rev = self.current_rev.max(rev.main);
    }

    /// The latest revision.
    pub fn current_revision(&self) -> i64 {
        self.current_rev
    }

    /// The revision of the last compaction (0 if none).
    pub fn compact_revision(&self) -> i64 {
        self.compact_rev
    }

    /// Keys put and keys deleted since this member started.
    pub fn write_counts(&self) -> (u64, u64) {
        (self.puts, self.deletes)
    }

    /// Number of keys with history held in the index.
    pub fn key_count(&self) -> usize {
        self.index.len()
    }

    /// Serves a range request at the latest revision or at `req.revision`.
    pub fn range(&self, r: &impl KvRead, req: &RangeRequest) -> Result<RangeResponse, Error> {
        self.range_at(r, req, self.current_rev)
    }

    fn check_read_rev(&self, requested: i64, current: i64) -> Result<i64, Error> {
        if requested > current {
            return Err(Error::FutureRev);
        }
        if requested <= 0 {
            return Ok(current);
        }
        if requested < self.compact_rev {
            return Err(Error::Compacted);
        }
        Ok(requested)
    }

    fn range_at(&self, r: &impl KvRead, req: &RangeRequest, current: i64) -> Result<RangeResponse, Error> {
        self.range_plan_at(req, current)?.fetch(r, req)
    }

    /// The key-index half of a range: what to read, decided on the index
    /// as it is now. [`RangePlan::fetch`] reads the values, from a view
    /// opened at the same time, without the index (so without the state
    /// machine's lock).
    pub fn range_plan(&self, req: &RangeRequest) -> Result<RangePlan, Error> {
        self.range_plan_at(req, self.current_rev)
    }

    fn range_plan_at(&self, req: &RangeRequest, current: i64) -> Result<RangePlan, Error> {
        let rev = self.check_read_rev(req.revision, current)?;
        let mut resp = RangeResponse {
            header: header(current),
            ..Default::default()
        };
        if req.count_only {
            resp.count = self.index.count(&req.key, &req.range_end, rev) as i64;
            return Ok(RangePlan {
                resp,
                revisions: Vec::new(),
            });
        }
        let hits = self.index.range(&req.key, &req.range_end, rev);
        resp.count = hits.len() as i64;
        // Without sorting or filtering, fetch only what is returned (plus
        // one to learn whether there is more).
        let fetch = if req.limit > 0 && req.sort_order() == SortOrder::None && !range_filtered(req) {
            (req.limit as usize).saturating_add(1).min(hits.len())
        } else {
            hits.len()
        };
        Ok(RangePlan {
            resp,
            revisions: hits.iter().take(fetch).map(|(_, at)| at.modified).collect(),
        })
    }

    /// Applies a put. Validation that depends on the state (missing key
    /// for `ignore_value`, unknown lease) happens before anything changes:
    /// a failed write changes nothing.
    pub fn put(&mut self, w: &mut impl KvWrite, leases: &mut dyn Leases, p: &PutRequest) -> Result<PutResponse, Error> {
        self.check_put(leases, p, self.current_rev)?;
        let mut ctx = self.ctx();
        let mut resp = self.put_op(w, leases, &mut ctx, p)?;
        self.finish(&ctx);
        resp.header = header(self.current_rev);
        Ok(resp)
    }

    /// Applies a delete-range.
    pub fn delete_range(
        &mut self,
        w: &mut impl KvWrite,
        leases: &mut dyn Leases,
        d: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, Error> {
        let mut ctx = self.ctx();
        let mut resp = self.delete_op(w, leases, &mut ctx, d)?;
        self.finish(&ctx);
        resp.header = header(self.current_rev);
        Ok(resp)
    }

    /// Applies a txn: every compare (nested ones too) is decided on the
    /// state before it, every op on the chosen path is checked, then the
    /// path runs as one revision.
    pub fn txn(&mut self, w: &mut impl KvWrite, leases: &mut dyn Leases, t: &TxnRequest) -> Result<TxnResponse, Error> {
        let path = self.txn_path(w, t, self.current_rev)?;
        self.check_txn(leases, t, &path, self.current_rev)?;
        let mut ctx = self.ctx();
        let mut resp = self.txn_op(w, leases, &mut ctx, t, &path)?;
        self.finish(&ctx);
        resp.header = header(self.current_rev);
        Ok(resp)
    }

    /// Deletes `keys` (those that exist) in one revision, as a lease revoke
    /// does. Returns the revision after it.
    pub fn delete_keys<'k>(
        &mut self,
        w: &mut impl KvWrite,
        leases: &mut dyn Leases,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<i64, Error> {
        let mut ctx = self.ctx();
        for key in keys {
            let d = DeleteRangeRequest {
                key: key.to_vec(),
                ..Default::default()
            };
            self.delete_op(w, leases, &mut ctx, &d)?;
        }
        self.finish(&ctx);
        Ok(self.current_rev)
    }

    /// The changes made since the last call, in revision order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The changes with a main revision in `from..=to`, in order, as watch
    /// events, and the last revision they cover: less than `to` if about
    /// `max_bytes` were read first (whole revisions only). Fails with
    /// [`Error::Compacted`] if `from` is below the compacted revision (that
    /// history is gone).
    pub fn history(&self, r: &impl KvRead, from: i64, to: i64, max_bytes: usize) -> Result<(Vec<Event>, i64), Error> {
        if from < self.compact_rev {
            return Err(Error::Compacted);
        }
        let (recs, stopped) = r.scan(Revision::new(from, 0), to, max_bytes)?;
        let covered = match recs.last() {
            Some((last, _)) if stopped => last.main,
            _ => to,
        };
        Ok((recs.into_iter().map(|(_, rec)| event_of(rec)).collect(), covered))
    }

    fn ctx(&self) -> WriteCtx {
        WriteCtx {
            begin: self.current_rev,
            sub: 0,
        }
    }

    fn finish(&mut self, ctx: &WriteCtx) {
        self.current_rev = ctx.read_rev();
    }

    fn check_put(&self, leases: &dyn Leases, p: &PutRequest, at: i64) -> Result<(), Error> {
        if (p.ignore_value || p.ignore_lease) && self.index.get(&p.key, at).is_none() {
            return Err(Error::KeyNotFound);
        }
        if p.lease != 0 && !leases.exists(p.lease) {
            return Err(Error::LeaseNotFound);
        }
        Ok(())
    }

    fn put_op(
        &mut self,
        w: &mut impl KvWrite,
        leases: &mut dyn Leases,
        ctx: &mut WriteCtx,
        p: &PutRequest,
    ) -> Result<PutResponse, Error> {
        let prev_at = self.index.get(&p.key, ctx.read_rev());
        let prev = match prev_at {
            Some(at) if p.prev_kv || p.ignore_value || p.ignore_lease => {
                Some(w.get(at.modified)?.ok_or(Error::Missing(at.modified))?.kv)
            }
            _ => None,
        };
        let rev = ctx.next();
        let (value, lease) = match &prev {
            Some(kv) => (
                if p.ignore_value {
                    kv.value.clone()
                } else {
                    p.value.clone()
                },
                if p.ignore_lease { kv.lease } else { p.lease },
            ),
            None => (p.value.clone(), p.lease),
        };
        let kv = KeyValue {
            key: p.key.clone(),
            create_revision: prev_at.map_or(rev.main, |a| a.created.main),
            mod_revision: rev.main,
            version: prev_at.map_or(1, |a| a.version + 1),
            value,
            lease,
        };
        leases.attach(&p.key, kv.lease);
        w.put(
            rev,
            &Record {
                kv: kv.clone(),
                tombstone: false,
            },
        )?;
        self.index.put(&p.key, rev);
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: None,
        });
        self.puts += 1;
        Ok(PutResponse {
            header: header(rev.main),
            prev_kv: if p.prev_kv { prev } else { None },
        })
    }

    fn delete_op(
        &mut self,
        w: &mut impl KvWrite,
        leases: &mut dyn Leases,
        ctx: &mut WriteCtx,
        d: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, Error> {
        let hits: Vec<(Vec<u8>, Revision)> = self
            .index
            .range(&d.key, &d.range_end, ctx.read_rev())
            .into_iter()
            .map(|(k, at)| (k.to_vec(), at.modified))
            .collect();
        let mut resp = DeleteRangeResponse {
            deleted: hits.len() as i64,
            ..Default::default()
        };
        self.deletes += hits.len() as u64;
        for (key, modified) in hits {
            if d.prev_kv {
                let rec = w.get(modified)?.ok_or(Error::Missing(modified))?;
                resp.prev_kvs.push(rec.kv);
            }
            let rev = ctx.next();
            let kv = KeyValue {
                key: key.clone(),
                mod_revision: rev.main,
                ..Default::default()
            };
            leases.detach(&key);
            w.put(
                rev,
                &Record {
                    kv: kv.clone(),
                    tombstone: true,
                },
            )?;
            self.index.tombstone(&key, rev);
            self.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(kv),
                prev_kv: None,
            });
        }
        resp.header = header(ctx.read_rev());
        Ok(resp)
    }

    /// Evaluates every compare of a txn and of the nested txns on the
    /// chosen branches, against the state before the txn: etcd decides the
    /// whole path first, then executes it.
    fn txn_path(&self, r: &impl KvRead, t: &TxnRequest, at: i64) -> Result<Vec<bool>, Error> {
        let mut path = Vec::new();
        self.txn_path_into(r, t, at, &mut path)?;
        Ok(path)
    }

    fn txn_path_into(&self, r: &impl KvRead, t: &TxnRequest, at: i64, path: &mut Vec<bool>) -> Result<(), Error> {
        let mut ok = true;
        for c in &t.compare {
            if !self.compare(r, c, at)? {
                ok = false;
                break;
            }
        }
        path.push(ok);
        for op in if ok { &t.success } else { &t.failure } {
            if let Some(Op::RequestTxn(nested)) = &op.request {
                self.txn_path_into(r, nested, at, path)?;
            }
        }
        Ok(())
    }

    fn compare(&self, r: &impl KvRead, c: &Compare, at: i64) -> Result<bool, Error> {
        let hits = self.index.range(&c.key, &c.range_end, at);
        if hits.is_empty() {
            if c.target() == CompareTarget::Value {
                return Ok(false);
            }
            return Ok(compare_kv(c, &KeyValue::default()));
        }
        for (_, a) in hits {
            let rec = r.get(a.modified)?.ok_or(Error::Missing(a.modified))?;
            if !compare_kv(c, &rec.kv) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Checks every op on the chosen path before anything is written.
    fn check_txn(&self, leases: &dyn Leases, t: &TxnRequest, path: &[bool], at: i64) -> Result<(), Error> {
        let mut pos = 0;
        self.check_txn_at(leases, t, path, &mut pos, at)
    }

    fn check_txn_at(
        &self,
        leases: &dyn Leases,
        t: &TxnRequest,
        path: &[bool],
        pos: &mut usize,
        at: i64,
    ) -> Result<(), Error> {
        let ok = path[*pos];
        *pos += 1;
        for op in if ok { &t.success } else { &t.failure } {
            match &op.request {
                Some(Op::RequestRange(rr)) => {
                    self.check_read_rev(rr.revision, at)?;
                }
                Some(Op::RequestPut(p)) => self.check_put(leases, p, at)?,
                Some(Op::RequestTxn(nested)) => self.check_txn_at(leases, nested, path, pos, at)?,
                Some(Op::RequestDeleteRange(_)) | None => {}
            }
        }
        Ok(())
    }

    fn txn_op(
        &mut self,
        w: &mut impl KvWrite,
        leases: &mut dyn Leases,
        ctx: &mut WriteCtx,
        t: &TxnRequest,
        path: &[bool],
    ) -> Result<TxnResponse, Error> {
        let mut pos = 0;
        self.txn_at(w, leases, ctx, t, path, &mut pos)
    }

    fn txn_at(
        &mut self,
        w: &mut impl KvWrite,
        leases: &mut dyn Leases,
        ctx: &mut WriteCtx,
        t: &TxnRequest,
        path: &[bool],
        pos: &mut usize,
    ) -> Result<TxnResponse, Error> {
        let succeeded = path[*pos];
        *pos += 1;
        let ops = if succeeded { &t.success } else { &t.failure };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let resp = match &op.request {
                Some(Op::RequestRange(rr)) => OpResp::ResponseRange(self.range_at(&*w, rr, ctx.read_rev())?),
                Some(Op::RequestPut(p)) => OpResp::ResponsePut(self.put_op(w, leases, ctx, p)?),
                Some(Op::RequestDeleteRange(d)) => OpResp::ResponseDeleteRange(self.delete_op(w, leases, ctx, d)?),
                Some(Op::RequestTxn(nested)) => OpResp::ResponseTxn(self.txn_at(w, leases, ctx, nested, path, pos)?),
                None => continue,
            };
            responses.push(ResponseOp { response: Some(resp) });
        }
        Ok(TxnResponse {
            header: Some(ResponseHeader::default()),
            succeeded,
            responses,
        })
    }

    /// Compacts history at `c.revision`: older revisions of every key are
    /// freed in the index and in the backend.
    pub fn compact(&mut self, w: &mut impl KvWrite, c: &CompactionRequest) -> Result<CompactionResponse, Error> {
        if c.revision <= self.compact_rev {
            return Err(Error::Compacted);
        }
        if c.revision > self.current_rev {
            return Err(Error::FutureRev);
        }
        let keep = self.index.compact(c.revision);
        w.compact(c.revision, &keep)?;
        self.compact_rev = c.revision;
        Ok(CompactionResponse {
            header: header(self.current_rev),
        })
    }
}

fn event_of(rec: Record) -> Event {
    let r#type = if rec.tombstone {
        EventType::Delete
    } else {
        EventType::Put
    };
    Event {
        r#type: r#type as i32,
        kv: Some(rec.kv),
        prev_kv: None,
    }
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let ord = match c.target() {
        CompareTarget::Value => {
            let v: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(v)
        }
        CompareTarget::Version => kv.version.cmp(&int_target(c, |t| match t {
            TargetUnion::Version(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Create => kv.create_revision.cmp(&int_target(c, |t| match t {
            TargetUnion::CreateRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Mod => kv.mod_revision.cmp(&int_target(c, |t| match t {
            TargetUnion::ModRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Lease => kv.lease.cmp(&int_target(c, |t| match t {
            TargetUnion::Lease(v) => Some(*v),
            _ => None,
        })),
    };
    match c.result() {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
        CompareResult::NotEqual => ord != Ordering::Equal,
    }
}

fn int_target(c: &Compare, pick: impl Fn(&TargetUnion) -> Option<i64>) -> i64 {
    c.target_union.as_ref().and_then(pick).unwrap_or(0)
}

/// Whether a range filters on revisions.
fn range_filtered(req: &RangeRequest) -> bool {
    req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0
}

/// A range decided on the key index: the answer's header and count, and
/// the revisions whose values it returns (see [`Mvcc::range_plan`]).
#[derive(Debug)]
pub struct RangePlan {
    resp: RangeResponse,
    revisions: Vec<Revision>,
}

impl RangePlan {
    /// How many values [`RangePlan::fetch`] will read.
    pub fn len(&self) -> usize {
        self.revisions.len()
    }

    /// Whether no value is to be read.
    pub fn is_empty(&self) -> bool {
        self.revisions.is_empty()
    }

    /// Reads the values from `r` (opened together with the plan) and
    /// filters, sorts and limits them as `req` asks.
    pub fn fetch(self, r: &impl KvRead, req: &RangeRequest) -> Result<RangeResponse, Error> {
        let mut resp = self.resp;
        if req.count_only {
            return Ok(resp);
        }
        let sort_order = match (req.sort_order(), req.sort_target()) {
            (SortOrder::None, SortTarget::Key) => SortOrder::None,
            (SortOrder::None, _) => SortOrder::Ascend,
            (o, _) => o,
        };
        let mut kvs = Vec::with_capacity(self.revisions.len());
        for at in self.revisions {
            let rec = r.get(at)?.ok_or(Error::Missing(at))?;
            kvs.push(rec.kv);
        }
        if range_filtered(req) {
            kvs.retain(|kv| {
                (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
                    && (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
                    && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
                    && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
            });
        }
        if sort_order != SortOrder::None {
            let key_fn: fn(&KeyValue, &KeyValue) -> Ordering = match req.sort_target() {
                SortTarget::Key => |a, b| a.key.cmp(&b.key),
                SortTarget::Version => |a, b| a.version.cmp(&b.version),
                SortTarget::Create => |a, b| a.create_revision.cmp(&b.create_revision),
                SortTarget::Mod => |a, b| a.mod_revision.cmp(&b.mod_revision),
                SortTarget::Value => |a, b| a.value.cmp(&b.value),
            };
            if sort_order == SortOrder::Descend {
                kvs.sort_by(|a, b| key_fn(b, a));
            } else {
                kvs.sort_by(key_fn);
            }
        }
        if req.limit > 0 && kvs.len() > req.limit as usize {
            kvs.truncate(req.limit as usize);
            resp.more = true;
        }
        if req.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        resp.kvs = kvs;
        Ok(resp)
    }
}
