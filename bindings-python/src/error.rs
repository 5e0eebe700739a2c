//! The one place where the shared client's errors become Python
//! exceptions. The classes live in `concord/errors.py` (so they can also
//! subclass Python's own `TimeoutError` and `ValueError`); each keeps
//! etcd's gRPC code (`.code`) and message (`.message`).

use concord_core::client::{Error, ErrorKind};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// The class of `concord.errors` for an error of the shared client.
fn class_name(e: &Error) -> &'static str {
    match (e.kind(), e) {
        (_, Error::LeaseLost { .. }) => "LeaseLostError",
        (_, Error::Indeterminate(_)) => "IndeterminateWriteError",
        (ErrorKind::Compacted, _) => "CompactedError",
        (ErrorKind::FutureRevision, _) => "FutureRevisionError",
        (ErrorKind::LeaseNotFound, _) => "LeaseNotFoundError",
        (ErrorKind::PermissionDenied, _) => "PermissionDeniedError",
        (ErrorKind::AuthFailed, _) => "AuthenticationFailedError",
        (ErrorKind::InvalidAuthToken, _) => "InvalidTokenError",
        (ErrorKind::TooManyRequests, _) => "TooManyRequestsError",
        (ErrorKind::Timeout, _) => "TimeoutError",
        (ErrorKind::Unavailable, _) => "UnavailableError",
        (ErrorKind::InvalidArgument, _) => "InvalidArgumentError",
        (ErrorKind::Canceled, _) => "WatchCanceledError",
        _ => "Error",
    }
}

/// `e` as the matching `concord.errors` exception.
pub fn to_py(e: Error) -> PyErr {
    Python::attach(|py| match build(py, &e) {
        Ok(err) => err,
        Err(import_failed) => PyRuntimeError::new_err(format!("{e} (and concord.errors: {import_failed})")),
    })
}

fn build(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let class = py.import("concord.errors")?.getattr(class_name(e))?;
    let exc = class.call1((e.to_string(), e.code() as i32))?;
    match e {
        Error::WatchCompacted { compact_revision, .. } => exc.setattr("compact_revision", compact_revision)?,
        Error::LeaseLost { id, .. } => exc.setattr("lease_id", id)?,
        _ => {}
    }
    Ok(PyErr::from_value(exc))
}
