//! What calls return, as Python objects: key-values, results, events,
//! status and members; and the arguments every call shares (keys and
//! values as `str` or `bytes`, a lease as an ID or a `Lease`).

use concord_core::api::etcdserverpb::{
    response_op, DeleteRangeResponse, Member as PbMember, PutResponse, RangeResponse, ResponseHeader, StatusResponse,
    TxnResponse,
};
use concord_core::api::mvccpb::{self, event::EventType};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// A key or value: `str` (UTF-8) or `bytes`-like.
pub struct Bytes(pub Vec<u8>);

impl<'a, 'py> FromPyObject<'a, 'py> for Bytes {
    type Error = PyErr;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Bytes(s.to_cow()?.as_bytes().to_vec()));
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Bytes(b.as_bytes().to_vec()));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(Bytes(b.to_vec()));
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected str or bytes, got {}",
            obj.get_type().name()?
        )))
    }
}

/// A lease: its ID, or an object with an `id` (a `Lease`).
pub struct LeaseId(pub i64);

impl<'a, 'py> FromPyObject<'a, 'py> for LeaseId {
    type Error = PyErr;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match obj.extract::<i64>() {
            Ok(id) => Ok(LeaseId(id)),
            Err(_) => Ok(LeaseId(obj.getattr("id")?.extract()?)),
        }
    }
}

fn header_rev(h: &Option<ResponseHeader>) -> i64 {
    h.as_ref().map_or(0, |h| h.revision)
}

/// A key and its value, with etcd's metadata.
#[pyclass(module = "concord", frozen, eq)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    key: Vec<u8>,
    value: Vec<u8>,
    /// The revision the key was created at.
    #[pyo3(get)]
    create_revision: i64,
    /// The revision of the key's last change.
    #[pyo3(get)]
    mod_revision: i64,
    /// How many times the key was written since it was created.
    #[pyo3(get)]
    version: i64,
    /// The lease the key is attached to (0: none).
    #[pyo3(get)]
    lease: i64,
}

impl From<mvccpb::KeyValue> for KeyValue {
    fn from(kv: mvccpb::KeyValue) -> KeyValue {
        KeyValue {
            key: kv.key,
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

#[pymethods]
impl KeyValue {
    /// The key (bytes).
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.key)
    }
    /// The value (bytes).
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.value)
    }
    fn __repr__(&self) -> String {
        format!(
            "KeyValue(key={:?}, value={:?}, create_revision={}, mod_revision={}, version={}, lease={})",
            String::from_utf8_lossy(&self.key),
            String::from_utf8_lossy(&self.value),
            self.create_revision,
            self.mod_revision,
            self.version,
            self.lease
        )
    }
}

fn kvs(kvs: Vec<mvccpb::KeyValue>) -> Vec<KeyValue> {
    kvs.into_iter().map(KeyValue::from).collect()
}

/// What a put returns.
#[pyclass(module = "concord", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct PutResult {
    /// The revision of the write.
    revision: i64,
    /// The key-value before the write, if asked for and the key existed.
    prev_kv: Option<KeyValue>,
}

impl From<PutResponse> for PutResult {
    fn from(r: PutResponse) -> PutResult {
        PutResult {
            revision: header_rev(&r.header),
            prev_kv: r.prev_kv.map(KeyValue::from),
        }
    }
}

/// What a range read returns.
#[pyclass(module = "concord", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct RangeResult {
    /// The key-values (at most `limit`).
    kvs: Vec<KeyValue>,
    /// How many keys are in the range (all of them, whatever the limit).
    count: i64,
    /// Whether the limit left keys out.
    more: bool,
    /// The revision the read was made at.
    revision: i64,
}

impl From<RangeResponse> for RangeResult {
    fn from(r: RangeResponse) -> RangeResult {
        RangeResult {
            revision: header_rev(&r.header),
            count: r.count,
            more: r.more,
            kvs: kvs(r.kvs),
        }
    }
}

/// What a delete inside a transaction returns.
#[pyclass(module = "concord", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct DeleteResult {
    /// How many keys were deleted.
    deleted: i64,
    /// The deleted key-values, if asked for.
    prev_kvs: Vec<KeyValue>,
    /// The revision of the delete.
    revision: i64,
}

impl From<DeleteRangeResponse> for DeleteResult {
    fn from(r: DeleteRangeResponse) -> DeleteResult {
        DeleteResult {
            revision: header_rev(&r.header),
            deleted: r.deleted,
            prev_kvs: kvs(r.prev_kvs),
        }
    }
}

/// One operation's answer inside a transaction.
#[derive(Clone, Debug, IntoPyObject)]
pub enum OpResult {
    Range(RangeResult),
    Put(PutResult),
    Delete(DeleteResult),
    Txn(TxnResult),
}

/// What a transaction returns.
#[pyclass(module = "concord", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct TxnResult {
    /// Whether every compare held (so `success` ran, else `failure`).
    succeeded: bool,
    /// The answers of the operations that ran, in order.
    responses: Vec<OpResult>,
    /// The revision of the transaction.
    revision: i64,
}

impl From<TxnResponse> for TxnResult {
    fn from(r: TxnResponse) -> TxnResult {
        let responses = r
            .responses
            .into_iter()
            .filter_map(|op| {
                Some(match op.response? {
                    response_op::Response::ResponseRange(r) => OpResult::Range(r.into()),
                    response_op::Response::ResponsePut(r) => OpResult::Put(r.into()),
                    response_op::Response::ResponseDeleteRange(r) => OpResult::Delete(r.into()),
                    response_op::Response::ResponseTxn(r) => OpResult::Txn(r.into()),
                })
            })
            .collect();
        TxnResult {
            succeeded: r.succeeded,
            responses,
            revision: header_rev(&r.header),
        }
    }
}

/// A change seen by a watch.
#[pyclass(module = "concord", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct Event {
    /// `"PUT"` or `"DELETE"`.
    r#type: &'static str,
    /// The key-value after the change (for a delete: the key, and the
    /// revision of the delete as `mod_revision`).
    kv: KeyValue,
    /// The key-value before the change, if the watch asked for it.
    prev_kv: Option<KeyValue>,
}

impl Event {
    pub fn from_pb(e: mvccpb::Event) -> Event {
        Event {
            r#type: if e.r#type == EventType::Delete as i32 {
                "DELETE"
            } else {
                "PUT"
            },
            kv: e
                .kv
                .map(KeyValue::from)
                .unwrap_or_else(|| mvccpb::KeyValue::default().into()),
            prev_kv: e.prev_kv.map(KeyValue::from),
        }
    }
}

#[pymethods]
impl Event {
    fn __repr__(&self) -> String {
        format!("Event(type={:?}, kv={})", self.r#type, self.kv.__repr__())
    }
}

/// The status of the member that answered.
#[pyclass(module = "concord", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct Status {
    /// The server's version (etcd's, as Concord reports it).
    version: String,
    /// The backend's size on disk, in bytes.
    db_size: i64,
    /// The size in use, in bytes.
    db_size_in_use: i64,
    /// The leader's member ID (0: none).
    leader: u64,
    /// This member's ID.
    member_id: u64,
    /// The cluster's ID.
    cluster_id: u64,
    /// The raft index and term.
    raft_index: u64,
    raft_term: u64,
    /// The store's current revision.
    revision: i64,
    /// Whether this member is a learner.
    is_learner: bool,
    /// Alarms and errors the member reports.
    errors: Vec<String>,
}

impl From<StatusResponse> for Status {
    fn from(r: StatusResponse) -> Status {
        let h = r.header.unwrap_or_default();
        Status {
            version: r.version,
            db_size: r.db_size,
            db_size_in_use: r.db_size_in_use,
            leader: r.leader,
            member_id: h.member_id,
            cluster_id: h.cluster_id,
            raft_index: r.raft_index,
            raft_term: r.raft_term,
            revision: h.revision,
            is_learner: r.is_learner,
            errors: r.errors,
        }
    }
}

/// A member of the cluster.
#[pyclass(module = "concord", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct Member {
    id: u64,
    /// Empty until the member has started.
    name: String,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
    is_learner: bool,
}

impl From<PbMember> for Member {
    fn from(m: PbMember) -> Member {
        Member {
            id: m.id,
            name: m.name,
            peer_urls: m.peer_ur_ls,
            client_urls: m.client_ur_ls,
            is_learner: m.is_learner,
        }
    }
}

#[pymethods]
impl Member {
    fn __repr__(&self) -> String {
        format!(
            "Member(id={:x}, name={:?}, client_urls={:?})",
            self.id, self.name, self.client_urls
        )
    }
}
