//! `concord.Client` (blocking) and `concord.AsyncClient` (asyncio): the
//! same calls, defined once (see `dual`).

use std::time::Duration;

use concord_core::client::{self as core, ClientOptions, Error, Pem, SharedRuntime, TlsOptions};
use pyo3::prelude::*;

use crate::auth::{AsyncAuth, Auth};
use crate::dual::dual_methods;
use crate::error::to_py;
use crate::kv::{delete_options, put_options, txn, Compare, Get, Op, Range};
use crate::lease::{Lease, PendingLease};
use crate::lock::{AsyncElection, AsyncLock, Election, Lock};
use crate::runtime::Core;
use crate::runtime::Dual;
use crate::types::{Bytes, DeleteResult, KeyValue, LeaseId, Member, PutResult, RangeResult, Status, TxnResult};
use crate::watch::{Watch, WatchArgs};

/// Members to connect to: one `"host:port"` / URL, or a list of them.
pub struct Endpoints(Vec<String>);

impl<'a, 'py> FromPyObject<'a, 'py> for Endpoints {
    type Error = PyErr;
    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match obj.extract::<String>() {
            Ok(one) => Ok(Endpoints(vec![one])),
            Err(_) => Ok(Endpoints(obj.extract()?)),
        }
    }
}

/// What both constructors take.
#[allow(clippy::too_many_arguments)]
fn options(
    endpoints: Endpoints,
    user: Option<String>,
    password: Option<String>,
    timeout: f64,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    ca_pem: Option<Vec<u8>>,
) -> Result<ClientOptions, Error> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "timeout must be a positive number of seconds, not {timeout}"
        )));
    }
    let mut o = ClientOptions::new(endpoints.0).timeout(Duration::from_secs_f64(timeout));
    match (user, password) {
        (Some(u), p) => o = o.user(u, p.unwrap_or_default()),
        (None, Some(_)) => return Err(Error::InvalidArgument("a password needs a user".into())),
        (None, None) => {}
    }
    let ca = match (ca_file, ca_pem) {
        (Some(_), Some(_)) => return Err(Error::InvalidArgument("give ca_file or ca_pem, not both".into())),
        (Some(f), None) => Some(Pem::File(f.into())),
        (None, Some(b)) => Some(Pem::Bytes(b)),
        (None, None) => None,
    };
    let identity = match (cert_file, key_file) {
        (Some(c), Some(k)) => Some((Pem::File(c.into()), Pem::File(k.into()))),
        (None, None) => None,
        _ => return Err(Error::InvalidArgument("cert_file and key_file go together".into())),
    };
    if ca.is_some() || identity.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = ca {
            tls = tls.ca(ca);
        }
        if let Some((c, k)) = identity {
            tls = tls.identity(c, k);
        }
        o = o.tls(tls);
    }
    Ok(o)
}

/// A client of a Concord or etcd cluster (blocking calls; safe to share
/// between threads). Connects, and authenticates with `user`, when made.
///
/// >>> c = concord.Client(["127.0.0.1:2379"])
/// >>> c.put("app/mode", "on").revision
/// >>> c.get("app/mode").value
/// b'on'
#[pyclass(module = "concord", frozen)]
pub struct Client {
    pub core: Core,
}

/// The asyncio client: the same calls as `Client`, as coroutines. Made
/// without I/O; authenticates before its first request.
#[pyclass(module = "concord", frozen)]
pub struct AsyncClient {
    pub core: Core,
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (endpoints=Endpoints(vec!["127.0.0.1:2379".into()]), *, user=None, password=None, timeout=5.0, ca_file=None, cert_file=None, key_file=None, ca_pem=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        endpoints: Endpoints,
        user: Option<String>,
        password: Option<String>,
        timeout: f64,
        ca_file: Option<String>,
        cert_file: Option<String>,
        key_file: Option<String>,
        ca_pem: Option<Vec<u8>>,
    ) -> PyResult<Client> {
        let opts = options(endpoints, user, password, timeout, ca_file, cert_file, key_file, ca_pem).map_err(to_py)?;
        let rt = SharedRuntime::get().map_err(to_py)?;
        let client = crate::runtime::wait_on(py, &rt, async { core::Client::connect(opts).await.map_err(to_py) })?;
        Ok(Client {
            core: Core::new(client, rt),
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    /// Stops every watch and lease keep-alive this client started.
    fn close(&self) {
        self.core.close();
    }

    /// Watches a key, a range (`range_end`) or a prefix and iterates over
    /// its events: `for event in c.watch("k"): ...`. Returns once the
    /// watch is in place; resumes by itself after a broken connection or a
    /// restarted member, losing and repeating nothing.
    #[pyo3(signature = (key, *, range_end=None, prefix=false, start_revision=None, prev_kv=false, progress_notify=false, filters=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn watch(
        &self,
        py: Python<'_>,
        key: Bytes,
        range_end: Option<Bytes>,
        prefix: bool,
        start_revision: Option<i64>,
        prev_kv: bool,
        progress_notify: bool,
        filters: Vec<String>,
    ) -> PyResult<Watch> {
        let args = WatchArgs::new(
            key,
            range_end,
            prefix,
            start_revision,
            prev_kv,
            progress_notify,
            filters,
        )?;
        Watch::open_blocking(py, &self.core, args)
    }

    /// Grants a lease of `ttl` seconds. With `keep_alive`, refreshes it in
    /// the background until the lease is closed or revoked (use it as a
    /// context manager: revoked at exit).
    #[pyo3(signature = (ttl, *, keep_alive=false, id=0))]
    fn lease(&self, py: Python<'_>, ttl: i64, keep_alive: bool, id: i64) -> PyResult<Lease> {
        Lease::grant_blocking(py, &self.core, ttl, keep_alive, id)
    }

    /// A distributed lock on the server's Lock service:
    /// `with c.lock("name", ttl=10) as lock:` (`lock.revision` is the
    /// fencing token). Nothing is sent until it is entered or acquired.
    #[pyo3(signature = (name, *, ttl=60))]
    fn lock(&self, name: Bytes, ttl: i64) -> Lock {
        Lock::new(self.core.clone(), name, ttl)
    }

    /// An election on the server's Election service: `campaign`,
    /// `proclaim`, `resign`, `leader`, `observe`. A candidate lives on a
    /// lease of `ttl` seconds kept alive until it resigns.
    #[pyo3(signature = (name, *, ttl=60))]
    fn election(&self, name: Bytes, ttl: i64) -> Election {
        Election::new(self.core.clone(), name, ttl)
    }

    /// Users, roles and permissions; `c.auth.enable()`.
    #[getter]
    fn auth(&self) -> Auth {
        Auth {
            core: self.core.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!("<concord.Client {:?}>", self.core.client)
    }
}

#[pymethods]
impl AsyncClient {
    #[new]
    #[pyo3(signature = (endpoints=Endpoints(vec!["127.0.0.1:2379".into()]), *, user=None, password=None, timeout=5.0, ca_file=None, cert_file=None, key_file=None, ca_pem=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        endpoints: Endpoints,
        user: Option<String>,
        password: Option<String>,
        timeout: f64,
        ca_file: Option<String>,
        cert_file: Option<String>,
        key_file: Option<String>,
        ca_pem: Option<Vec<u8>>,
    ) -> PyResult<AsyncClient> {
        let opts = options(endpoints, user, password, timeout, ca_file, cert_file, key_file, ca_pem).map_err(to_py)?;
        let rt = SharedRuntime::get().map_err(to_py)?;
        let client = {
            let _in = rt.handle().enter();
            core::Client::new(opts).map_err(to_py)?
        };
        Ok(AsyncClient {
            core: Core::new(client, rt),
        })
    }

    /// `async with AsyncClient(...) as c:` closes the client at exit.
    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let me: Py<Self> = slf.clone().unbind();
        slf.get().core.spawn(slf.py(), async move { Ok(me) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc: &Bound<'py, pyo3::types::PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        self.core.close();
        self.core.spawn(py, async { Ok(false) })
    }

    /// Stops every watch and lease keep-alive this client started.
    fn close(&self) {
        self.core.close();
    }

    /// Watches a key, a range or a prefix: `async for event in c.watch("k")`,
    /// or `w = await c.watch("k")` to be sure the watch is in place first.
    #[pyo3(signature = (key, *, range_end=None, prefix=false, start_revision=None, prev_kv=false, progress_notify=false, filters=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn watch(
        &self,
        key: Bytes,
        range_end: Option<Bytes>,
        prefix: bool,
        start_revision: Option<i64>,
        prev_kv: bool,
        progress_notify: bool,
        filters: Vec<String>,
    ) -> PyResult<Watch> {
        let args = WatchArgs::new(
            key,
            range_end,
            prefix,
            start_revision,
            prev_kv,
            progress_notify,
            filters,
        )?;
        Ok(Watch::open_async(&self.core, args))
    }

    /// Grants a lease: `lease = await c.lease(10)`, or
    /// `async with c.lease(10, keep_alive=True) as lease:` (revoked at exit).
    #[pyo3(signature = (ttl, *, keep_alive=false, id=0))]
    fn lease(&self, ttl: i64, keep_alive: bool, id: i64) -> PendingLease {
        PendingLease::new(self.core.clone(), ttl, keep_alive, id)
    }

    /// A distributed lock: `async with c.lock("name", ttl=10) as lock:`.
    #[pyo3(signature = (name, *, ttl=60))]
    fn lock(&self, name: Bytes, ttl: i64) -> AsyncLock {
        AsyncLock::new(self.core.clone(), name, ttl)
    }

    /// An election: `await e.campaign(v)`, `async for kv in e.observe()`.
    #[pyo3(signature = (name, *, ttl=60))]
    fn election(&self, name: Bytes, ttl: i64) -> AsyncElection {
        AsyncElection::new(self.core.clone(), name, ttl)
    }

    /// Users, roles and permissions; `await c.auth.enable()`.
    #[getter]
    fn auth(&self) -> AsyncAuth {
        AsyncAuth {
            core: self.core.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!("<concord.AsyncClient {:?}>", self.core.client)
    }
}

impl Dual for Client {
    type Ctx = core::Client;
    fn core(&self) -> &Core {
        &self.core
    }
    fn ctx(&self) -> core::Client {
        self.core.client.clone()
    }
}

impl Dual for AsyncClient {
    type Ctx = core::Client;
    fn core(&self) -> &Core {
        &self.core
    }
    fn ctx(&self) -> core::Client {
        self.core.client.clone()
    }
}

dual_methods! { sync Client, async AsyncClient;
    /// Writes `key` = `value` (str or bytes); `lease` attaches it to a lease.
    #[pyo3(signature = (key, value, *, lease=None, prev_kv=false))]
    fn put(c, key: Bytes, value: Bytes, lease: Option<LeaseId>, prev_kv: bool) -> PutResult {
        Ok(c.put(key.0, value.0, put_options(lease, prev_kv)).await?.into())
    }

    /// The key-value of `key`, or None.
    #[pyo3(signature = (key, *, revision=None, serializable=false))]
    fn get(c, key: Bytes, revision: Option<i64>, serializable: bool) -> Option<KeyValue> {
        let get = Get { revision, serializable, limit: 0, sort: None, order: None, keys_only: false, count_only: false };
        let r = c.get(key.0, get.options(Range::Key)?).await?;
        Ok(r.kvs.into_iter().next().map(KeyValue::from))
    }

    /// Every key-value whose key starts with `prefix`, sorted by key.
    #[pyo3(signature = (prefix, *, limit=0, sort="key".to_string(), order="ascend".to_string(), keys_only=false, revision=None, serializable=false))]
    fn get_prefix(c, prefix: Bytes, limit: i64, sort: String, order: String, keys_only: bool, revision: Option<i64>, serializable: bool) -> Vec<KeyValue> {
        let get = Get { revision, serializable, limit, sort: Some(sort), order: Some(order), keys_only, count_only: false };
        let r = c.get(prefix.0, get.options(Range::Prefix)?).await?;
        Ok(r.kvs.into_iter().map(KeyValue::from).collect())
    }

    /// The keys in `[start, end)` (no `end`: just `start`; `prefix=True`:
    /// every key starting with `start`), with etcd's count and `more`.
    #[pyo3(signature = (start, end=None, *, prefix=false, limit=0, sort=None, order=None, keys_only=false, count_only=false, revision=None, serializable=false))]
    fn get_range(c, start: Bytes, end: Option<Bytes>, prefix: bool, limit: i64, sort: Option<String>, order: Option<String>, keys_only: bool, count_only: bool, revision: Option<i64>, serializable: bool) -> RangeResult {
        let get = Get { revision, serializable, limit, sort, order, keys_only, count_only };
        Ok(c.get(start.0, get.options(Range::of(end, prefix)?)?).await?.into())
    }

    /// Deletes `key`; returns how many keys were deleted (0 or 1).
    #[pyo3(signature = (key))]
    fn delete(c, key: Bytes) -> i64 {
        Ok(c.delete(key.0, delete_options(Range::Key, false)).await?.deleted)
    }

    /// Deletes every key starting with `prefix`; returns how many.
    #[pyo3(signature = (prefix))]
    fn delete_prefix(c, prefix: Bytes) -> i64 {
        Ok(c.delete(prefix.0, delete_options(Range::Prefix, false)).await?.deleted)
    }

    /// Deletes `[start, end)` (or a prefix), with the deleted key-values if asked.
    #[pyo3(signature = (start, end=None, *, prefix=false, prev_kv=false))]
    fn delete_range(c, start: Bytes, end: Option<Bytes>, prefix: bool, prev_kv: bool) -> DeleteResult {
        Ok(c.delete(start.0, delete_options(Range::of(end, prefix)?, prev_kv)).await?.into())
    }

    /// Runs a transaction: if every compare holds, `success` runs, else `failure`.
    #[pyo3(signature = (compare=Vec::new(), success=Vec::new(), failure=Vec::new()))]
    fn txn(c, compare: Vec<Compare>, success: Vec<Op>, failure: Vec<Op>) -> TxnResult {
        Ok(c.txn(txn(compare, success, failure)).await?.into())
    }

    /// The status of the member that answers.
    #[pyo3(signature = ())]
    fn status(c) -> Status {
        Ok(c.status().await?.into())
    }

    /// The members of the cluster.
    #[pyo3(signature = ())]
    fn members(c) -> Vec<Member> {
        Ok(c.member_list().await?.members.into_iter().map(Member::from).collect())
    }

    /// Compacts the history up to `revision`.
    #[pyo3(signature = (revision, *, physical=false))]
    fn compact(c, revision: i64, physical: bool) -> () {
        c.compact(revision, physical).await.map(|_| ())
    }

    /// Revokes a lease by its ID (or a `Lease`), deleting its keys.
    #[pyo3(signature = (lease))]
    fn revoke_lease(c, lease: LeaseId) -> () {
        c.lease_revoke(lease.0).await.map(|_| ())
    }

    /// The IDs of every lease.
    #[pyo3(signature = ())]
    fn leases(c) -> Vec<i64> {
        Ok(c.leases().await?.leases.into_iter().map(|l| l.id).collect())
    }
}
