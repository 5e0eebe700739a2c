//! `c.lock(name, ttl)` and `c.election(name)` over the server's Lock and
//! Election services: `Lock`/`AsyncLock` (context managers) and
//! `Election`/`AsyncElection`, plus `Observation`, an election's leaders
//! as they change (iterator and async iterator).
//!
//! Each holder or candidate gets a lease of `ttl` seconds kept alive in
//! the background; releasing or resigning revokes it. The fencing token is
//! `revision`: the create revision of the lock's (or leader's) key.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord_core::api::v3electionpb::LeaderKey;
use concord_core::client::{Error, GetOptions, Observer};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::dual::dual_methods;
use crate::error::to_py;
use crate::lease::LeaseCore;
use crate::runtime::{wait_on, Core, Dual};
use crate::types::{Bytes, KeyValue};

/// What a holder (of a lock or a leadership) has.
#[derive(Clone)]
struct Held {
    lease: LeaseCore,
    key: Vec<u8>,
    revision: i64,
}

/// The state a lock or an election shares between calls.
pub struct Contender {
    core: Core,
    name: Vec<u8>,
    ttl: i64,
    held: Mutex<Option<Held>>,
}

impl Contender {
    fn new(core: Core, name: Vec<u8>, ttl: i64) -> Arc<Contender> {
        Arc::new(Contender {
            core,
            name,
            ttl,
            held: Mutex::new(None),
        })
    }

    fn held(&self) -> Option<Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, h: Option<Held>) -> Option<Held> {
        std::mem::replace(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()), h)
    }

    fn wait_for(timeout: Option<f64>) -> Option<Duration> {
        timeout.map(|t| Duration::from_secs_f64(t.max(0.0)))
    }

    /// Takes the lock: a kept-alive lease, then the server's Lock.
    async fn acquire(self: Arc<Self>, timeout: Option<f64>) -> Result<(), Error> {
        if self.held().is_some() {
            return Ok(());
        }
        let lease = LeaseCore::grant(self.core.clone(), self.ttl, true, 0).await?;
        let c = &self.core.client;
        let held = match c.lock(self.name.clone(), lease.id, Contender::wait_for(timeout)).await {
            Ok(r) => r,
            Err(e) => {
                let _ = lease.end().await;
                return Err(e);
            }
        };
        let revision = c
            .get(held.key.clone(), GetOptions::new())
            .await?
            .kvs
            .first()
            .map_or(0, |kv| kv.create_revision);
        self.set(Some(Held {
            lease,
            key: held.key,
            revision,
        }));
        Ok(())
    }

    /// Gives the lock (or leadership) up and revokes its lease.
    async fn release(self: Arc<Self>, resign: bool) -> Result<(), Error> {
        let Some(h) = self.set(None) else { return Ok(()) };
        let c = &self.core.client;
        if resign {
            c.resign(&self.leader_key(&h)).await?;
        } else {
            c.unlock(h.key.clone()).await?;
        }
        h.lease.end().await
    }

    fn leader_key(&self, h: &Held) -> LeaderKey {
        LeaderKey {
            name: self.name.clone(),
            key: h.key.clone(),
            rev: h.revision,
            lease: h.lease.id,
        }
    }

    async fn campaign(self: Arc<Self>, value: Vec<u8>, timeout: Option<f64>) -> Result<(), Error> {
        let lease = match self.held() {
            Some(h) => h.lease,
            None => LeaseCore::grant(self.core.clone(), self.ttl, true, 0).await?,
        };
        let c = &self.core.client;
        let won = match c
            .campaign(self.name.clone(), lease.id, value, Contender::wait_for(timeout))
            .await
        {
            Ok(r) => r.leader.unwrap_or_default(),
            Err(e) => {
                if self.held().is_none() {
                    let _ = lease.end().await;
                }
                return Err(e);
            }
        };
        self.set(Some(Held {
            lease,
            key: won.key,
            revision: won.rev,
        }));
        Ok(())
    }

    async fn proclaim(self: Arc<Self>, value: Vec<u8>) -> Result<(), Error> {
        let h = self
            .held()
            .ok_or_else(|| Error::InvalidArgument("proclaim before campaign: not the leader".into()))?;
        self.core.client.proclaim(&self.leader_key(&h), value).await.map(|_| ())
    }

    async fn leader(self: Arc<Self>) -> Result<Option<KeyValue>, Error> {
        Ok(self
            .core
            .client
            .current_leader(self.name.clone())
            .await?
            .map(KeyValue::from))
    }

    fn key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.held().map(|h| PyBytes::new(py, &h.key))
    }
}

macro_rules! contender_classes {
    ($($(#[doc = $doc:literal])* $class:ident),*) => {$(
        $(#[doc = $doc])*
        #[pyclass(module = "concord", frozen)]
        pub struct $class {
            state: Arc<Contender>,
        }

        impl $class {
            pub fn new(core: Core, name: Bytes, ttl: i64) -> $class {
                $class { state: Contender::new(core, name.0, ttl) }
            }
        }

        impl Dual for $class {
            type Ctx = Arc<Contender>;
            fn core(&self) -> &Core {
                &self.state.core
            }
            fn ctx(&self) -> Arc<Contender> {
                Arc::clone(&self.state)
            }
        }

        #[pymethods]
        impl $class {
            /// The key held (the lock's, or the leader's), or None.
            #[getter]
            fn key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
                self.state.key(py)
            }
            /// The fencing token: the held key's create revision (0: not held).
            #[getter]
            fn revision(&self) -> i64 {
                self.state.held().map_or(0, |h| h.revision)
            }
            /// The ID of the lease the holding lives on (0: not held).
            #[getter]
            fn lease(&self) -> i64 {
                self.state.held().map_or(0, |h| h.lease.id)
            }
            /// Whether this object holds (it may still lose the holding if
            /// its lease runs out; guard writes with the fencing token).
            #[getter]
            fn held(&self) -> bool {
                self.state.held().is_some()
            }
        }
    )*};
}

contender_classes!(
    /// A distributed lock (`with c.lock("name", ttl=10) as lock:`), held on
    /// a lease of `ttl` seconds kept alive while held.
    Lock,
    /// The asyncio form of `Lock` (`async with c.lock("name") as lock:`).
    AsyncLock,
    /// An election (`c.election("name")`): campaign, proclaim, resign,
    /// leader, observe.
    Election,
    /// The asyncio form of `Election`.
    AsyncElection
);

dual_methods! { sync Lock, async AsyncLock;
    /// Waits until the lock is held (at most `timeout` seconds; None: no limit).
    #[pyo3(signature = (timeout=None))]
    fn acquire(state, timeout: Option<f64>) -> () {
        state.acquire(timeout).await
    }
    /// Releases the lock and revokes its lease.
    #[pyo3(signature = ())]
    fn release(state) -> () {
        state.release(false).await
    }
}

dual_methods! { sync Election, async AsyncElection;
    /// Waits until this candidate leads, announcing `value` (at most
    /// `timeout` seconds; None: no limit).
    #[pyo3(signature = (value, *, timeout=None))]
    fn campaign(state, value: Bytes, timeout: Option<f64>) -> () {
        state.campaign(value.0, timeout).await
    }
    /// The leader announces a new value (`election: not leader` once it no longer leads).
    #[pyo3(signature = (value))]
    fn proclaim(state, value: Bytes) -> () {
        state.proclaim(value.0).await
    }
    /// Steps down and revokes the candidate's lease.
    #[pyo3(signature = ())]
    fn resign(state) -> () {
        state.release(true).await
    }
    /// The current leader's key-value, or None.
    #[pyo3(signature = ())]
    fn leader(state) -> Option<KeyValue> {
        state.leader().await
    }
}

#[pymethods]
impl Lock {
    fn __enter__(slf: Py<Self>, py: Python<'_>) -> PyResult<Py<Self>> {
        let state = Arc::clone(&slf.get().state);
        let core = state.core.clone();
        core.wait(py, state.acquire(None))?;
        Ok(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.state.core.wait(py, Arc::clone(&self.state).release(false))?;
        Ok(false)
    }
}

#[pymethods]
impl AsyncLock {
    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let state = Arc::clone(&slf.get().state);
        let me: Py<Self> = slf.clone().unbind();
        state
            .core
            .clone()
            .spawn(slf.py(), async move { state.acquire(None).await.map(|_| me) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc: &Bound<'py, pyo3::types::PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        let state = Arc::clone(&self.state);
        self.state
            .core
            .spawn(py, async move { state.release(false).await.map(|()| false) })
    }
}

macro_rules! observe_method {
    ($($class:ty),*) => {$(
        #[pymethods]
        impl $class {
            /// The leader now (once there is one) and every change after:
            /// iterate (`for kv in e.observe()` / `async for`) over the
            /// leaders' key-values.
            fn observe(&self) -> PyResult<Observation> {
                Observation::open(&self.state)
            }
        }
    )*};
}
observe_method!(Election, AsyncElection);

/// An election's leaders as they change (see `Election.observe`).
#[pyclass(module = "concord", frozen)]
pub struct Observation {
    core: Core,
    feed: Arc<Observer>,
}

impl Observation {
    fn open(state: &Contender) -> PyResult<Observation> {
        let core = state.core.clone();
        let feed = {
            let _in = core.rt.handle().enter();
            core.client.observe(state.name.clone()).map_err(to_py)?
        };
        Ok(Observation {
            core,
            feed: Arc::new(feed),
        })
    }
}

async fn next_leader(feed: Arc<Observer>) -> Result<Option<KeyValue>, Error> {
    loop {
        match feed.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e),
            Some(Ok(r)) => {
                if let Some(kv) = r.kv {
                    return Ok(Some(kv.into()));
                }
            }
        }
    }
}

#[pymethods]
impl Observation {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<KeyValue> {
        let feed = Arc::clone(&self.feed);
        match wait_on(py, &self.core.rt, async move { next_leader(feed).await.map_err(to_py) })? {
            Some(kv) => Ok(kv),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let feed = Arc::clone(&self.feed);
        let _in = self.core.rt.handle().enter();
        pyo3_async_runtimes::generic::future_into_py::<crate::runtime::Shared, _, KeyValue>(py, async move {
            match next_leader(feed).await {
                Ok(Some(kv)) => Ok(kv),
                Ok(None) => Err(PyStopAsyncIteration::new_err(())),
                Err(e) => Err(to_py(e)),
            }
        })
    }

    /// Stops observing; iteration ends.
    fn cancel(&self) {
        self.feed.cancel();
    }
}
