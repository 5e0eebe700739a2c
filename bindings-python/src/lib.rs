//! `concord`, Concord's Python package: pyo3 over the shared client
//! (`concord_core::client`), which does the work (failover, watch resume,
//! keep-alive, token renewal, TLS); this crate converts types and errors.
//!
//! # Layout
//! - `client`: `Client` and `AsyncClient` (calls defined once, `dual`).
//! - `kv`: `Compare`, `Op` and the options of reads and deletes.
//! - `watch`: `Watch` (iterator and async iterator).
//! - `lease`: `Lease`, `AsyncLease`, `PendingLease`.
//! - `lock`: `Lock`, `AsyncLock`, `Election`, `AsyncElection`, `Observation`.
//! - `auth`: `Auth`, `AsyncAuth`.
//! - `server`: the embedded `Server`.
//! - `types`: results, key-values, events; `error`: exceptions.
//! - `runtime`: waiting with the GIL released; the asyncio bridge.

mod auth;
mod client;
mod dual;
mod error;
mod kv;
mod lease;
mod lock;
mod runtime;
mod server;
mod types;
mod watch;

use pyo3::prelude::*;

/// Lets asyncio tasks that are finishing finish (at most 2 s): run by
/// `atexit`, before the interpreter is finalized.
#[pyfunction]
fn _quiesce(py: Python<'_>) {
    runtime::quiesce(py, std::time::Duration::from_secs(2));
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let quiesce = wrap_pyfunction!(_quiesce, m)?;
    m.add_function(quiesce.clone())?;
    m.py().import("atexit")?.call_method1("register", (quiesce,))?;
    m.add_class::<client::Client>()?;
    m.add_class::<client::AsyncClient>()?;
    m.add_class::<kv::Compare>()?;
    m.add_class::<kv::CompareTarget>()?;
    m.add_class::<kv::Op>()?;
    m.add_class::<watch::Watch>()?;
    m.add_class::<lease::Lease>()?;
    m.add_class::<lease::AsyncLease>()?;
    m.add_class::<lease::PendingLease>()?;
    m.add_class::<lock::Lock>()?;
    m.add_class::<lock::AsyncLock>()?;
    m.add_class::<lock::Election>()?;
    m.add_class::<lock::AsyncElection>()?;
    m.add_class::<lock::Observation>()?;
    m.add_class::<auth::Auth>()?;
    m.add_class::<auth::AsyncAuth>()?;
    m.add_class::<server::Server>()?;
    m.add_class::<types::KeyValue>()?;
    m.add_class::<types::PutResult>()?;
    m.add_class::<types::RangeResult>()?;
    m.add_class::<types::DeleteResult>()?;
    m.add_class::<types::TxnResult>()?;
    m.add_class::<types::Event>()?;
    m.add_class::<types::Status>()?;
    m.add_class::<types::Member>()?;
    Ok(())
}
