//! Leases: `concord.Lease` (blocking) and `concord.AsyncLease` (asyncio),
//! optionally kept alive by the shared client's keep-alive handle, and
//! `PendingLease`, what `AsyncClient.lease()` returns so that both
//! `await c.lease(10)` and `async with c.lease(10) as lease` work.

use std::sync::Arc;

use concord_core::client::{self as core, Error, KeepAlive, LeaseState};
use pyo3::prelude::*;
use tokio::sync::OnceCell;

use crate::dual::dual_methods;
use crate::runtime::{wait_on, Core, Dual};

/// What both lease classes hold.
#[derive(Clone)]
pub struct LeaseCore {
    core: Core,
    pub(crate) id: i64,
    granted_ttl: i64,
    keep: Option<Arc<KeepAlive>>,
}

impl LeaseCore {
    pub(crate) async fn grant(core: Core, ttl: i64, keep_alive: bool, id: i64) -> Result<LeaseCore, Error> {
        let granted = core.client.lease_grant(ttl, id).await?;
        let keep = if keep_alive {
            let k = Arc::new(core.client.lease_keep_alive(granted.id).await?);
            core.track_keep_alive(&k);
            Some(k)
        } else {
            None
        };
        Ok(LeaseCore {
            core,
            id: granted.id,
            granted_ttl: granted.ttl,
            keep,
        })
    }

    /// Stops refreshing and revokes the lease (gone already is fine).
    pub(crate) async fn end(&self) -> Result<(), Error> {
        if let Some(k) = &self.keep {
            k.close();
        }
        match self.core.client.lease_revoke(self.id).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == core::ErrorKind::LeaseNotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn lost_error(&self) -> Option<Error> {
        match self.keep.as_ref()?.state() {
            LeaseState::Lost(e) => Some(e),
            _ => None,
        }
    }

    /// At the end of a `with` block: stop refreshing, then raise
    /// `LeaseLostError` if the lease was lost, else revoke it.
    async fn finish(self) -> Result<bool, Error> {
        if let Some(k) = &self.keep {
            k.close();
        }
        if let Some(e) = self.lost_error() {
            return Err(e);
        }
        match self.core.client.lease_revoke(self.id).await {
            Ok(_) => Ok(false),
            Err(e) if e.kind() == core::ErrorKind::LeaseNotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A lease. With `keep_alive=True` it is refreshed in the background;
/// `lost` turns True if it expires anyway (server down past its TTL) or is
/// revoked elsewhere. As a context manager it is revoked at exit, and
/// `LeaseLostError` is raised there if it was lost.
#[pyclass(module = "concord", frozen)]
pub struct Lease {
    pub(crate) inner: LeaseCore,
}

/// The asyncio form of `Lease`: the same calls, as coroutines.
#[pyclass(module = "concord", frozen)]
pub struct AsyncLease {
    pub(crate) inner: LeaseCore,
}

impl Lease {
    pub fn grant_blocking(py: Python<'_>, core: &Core, ttl: i64, keep_alive: bool, id: i64) -> PyResult<Lease> {
        let inner = core.wait(py, LeaseCore::grant(core.clone(), ttl, keep_alive, id))?;
        Ok(Lease { inner })
    }
}

macro_rules! lease_dual {
    ($($class:ty),*) => {$(
        impl Dual for $class {
            type Ctx = (core::Client, i64);
            fn core(&self) -> &Core {
                &self.inner.core
            }
            fn ctx(&self) -> (core::Client, i64) {
                (self.inner.core.client.clone(), self.inner.id)
            }
        }
    )*};
}
lease_dual!(Lease, AsyncLease);

/// The attributes both classes share.
macro_rules! lease_attributes {
    ($($class:ty),*) => {$(
        #[pymethods]
        impl $class {
            /// The lease's ID (pass it, or the lease, as `put(..., lease=)`).
            #[getter]
            fn id(&self) -> i64 {
                self.inner.id
            }
            /// The TTL the server granted, in seconds.
            #[getter]
            fn granted_ttl(&self) -> i64 {
                self.inner.granted_ttl
            }
            /// Whether the lease is kept alive in the background.
            #[getter]
            fn keep_alive(&self) -> bool {
                self.inner.keep.is_some()
            }
            /// True once a kept-alive lease is known to be gone.
            #[getter]
            fn lost(&self) -> bool {
                self.inner.lost_error().is_some()
            }
            /// Stops the background refreshes (the lease then runs out its TTL).
            fn close(&self) {
                if let Some(k) = &self.inner.keep {
                    k.close();
                }
            }
            fn __repr__(&self) -> String {
                format!("<concord.Lease id={:x} granted_ttl={} lost={}>", self.inner.id, self.inner.granted_ttl, self.lost())
            }
        }
    )*};
}
lease_attributes!(Lease, AsyncLease);

#[pymethods]
impl Lease {
    /// Blocks until the kept-alive lease is lost (True) or `timeout`
    /// seconds pass (False). A lease without keep-alive returns False.
    #[pyo3(signature = (timeout=None))]
    fn wait_lost(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let Some(k) = self.inner.keep.clone() else {
            return Ok(false);
        };
        let limit = timeout.map(std::time::Duration::from_secs_f64);
        wait_on(py, &self.inner.core.rt, async move {
            let lost = async { k.lost().await.is_some() };
            Ok::<_, PyErr>(match limit {
                None => lost.await,
                Some(d) => tokio::time::timeout(d, lost).await.unwrap_or(false),
            })
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.inner.core.wait(py, self.inner.clone().finish())
    }
}

#[pymethods]
impl AsyncLease {
    /// Waits until the kept-alive lease is lost (True); with `timeout`,
    /// False if that many seconds pass first.
    #[pyo3(signature = (timeout=None))]
    fn wait_lost<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let keep = self.inner.keep.clone();
        let limit = timeout.map(std::time::Duration::from_secs_f64);
        self.inner.core.spawn(py, async move {
            let Some(k) = keep else { return Ok(false) };
            let lost = async { k.lost().await.is_some() };
            Ok(match limit {
                None => lost.await,
                Some(d) => tokio::time::timeout(d, lost).await.unwrap_or(false),
            })
        })
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let me: Py<Self> = slf.clone().unbind();
        slf.get().inner.core.spawn(slf.py(), async move { Ok(me) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc: &Bound<'py, pyo3::types::PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.core.spawn(py, self.inner.clone().finish())
    }
}

dual_methods! { sync Lease, async AsyncLease;
    /// The seconds left before the lease expires (-1: it no longer exists).
    #[pyo3(signature = ())]
    fn ttl((c, id)) -> i64 {
        Ok(c.lease_time_to_live(id, false).await?.ttl)
    }

    /// Refreshes the lease once; returns the TTL granted again.
    #[pyo3(signature = ())]
    fn refresh((c, id)) -> i64 {
        let r = c.lease_keep_alive_once(id).await?;
        if r.ttl <= 0 {
            return Err(Error::Etcd(concord_core::api::error::EtcdError::LeaseNotFound));
        }
        Ok(r.ttl)
    }

    /// Revokes the lease, deleting the keys attached to it.
    #[pyo3(signature = ())]
    fn revoke((c, id)) -> () {
        c.lease_revoke(id).await.map(|_| ())
    }

    /// The keys attached to the lease.
    #[pyo3(signature = ())]
    fn keys((c, id)) -> Vec<Vec<u8>> {
        Ok(c.lease_time_to_live(id, true).await?.keys)
    }
}

/// What `AsyncClient.lease()` returns: `await` it for the lease, or use it
/// in `async with` (the lease is revoked at exit).
#[pyclass(module = "concord", frozen)]
pub struct PendingLease {
    core: Core,
    ttl: i64,
    keep_alive: bool,
    id: i64,
    granted: Arc<OnceCell<LeaseCore>>,
}

impl PendingLease {
    pub fn new(core: Core, ttl: i64, keep_alive: bool, id: i64) -> PendingLease {
        PendingLease {
            core,
            ttl,
            keep_alive,
            id,
            granted: Arc::default(),
        }
    }

    fn grant<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (core, ttl, keep_alive, id) = (self.core.clone(), self.ttl, self.keep_alive, self.id);
        let granted = Arc::clone(&self.granted);
        self.core.spawn(py, async move {
            let inner = granted
                .get_or_try_init(|| LeaseCore::grant(core, ttl, keep_alive, id))
                .await?
                .clone();
            Ok(AsyncLease { inner })
        })
    }
}

#[pymethods]
impl PendingLease {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.grant(py)?.call_method0("__await__")
    }

    fn __aenter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.grant(py)
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc: &Bound<'py, pyo3::types::PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        let granted = self.granted.get().cloned();
        self.core.spawn(py, async move {
            match granted {
                Some(inner) => inner.finish().await,
                None => Ok(false),
            }
        })
    }
}
