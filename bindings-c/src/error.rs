//! Status codes and the error object (the one error-mapping module).

use std::ffi::{c_char, CString};

use concord_core::client::{Error, ErrorKind};

/// What a call did.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcordStatus {
    /// Done.
    Ok = 0,
    /// Failed: the error object says why.
    Error = 1,
    /// A required pointer was NULL.
    NullArgument = 2,
    /// A bug inside the library (a Rust panic), caught at the boundary.
    Panic = 3,
}

/// The kind of an error, for callers that branch on it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcordErrorKind {
    Other = 0,
    Compacted = 1,
    FutureRevision = 2,
    LeaseNotFound = 3,
    LeaseLost = 4,
    PermissionDenied = 5,
    AuthFailed = 6,
    InvalidToken = 7,
    TooManyRequests = 8,
    Timeout = 9,
    Unavailable = 10,
    Indeterminate = 11,
    InvalidArgument = 12,
    Canceled = 13,
    Panic = 14,
}

/// An error, owned by the caller: free it with `concord_error_free`.
pub struct ConcordError {
    code: i32,
    kind: ConcordErrorKind,
    message: CString,
}

fn cstring(s: String) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

impl ConcordError {
    pub fn from_client(e: &Error) -> ConcordError {
        let kind = match (e.kind(), e) {
            (_, Error::LeaseLost { .. }) => ConcordErrorKind::LeaseLost,
            (_, Error::Indeterminate(_)) => ConcordErrorKind::Indeterminate,
            (ErrorKind::Compacted, _) => ConcordErrorKind::Compacted,
            (ErrorKind::FutureRevision, _) => ConcordErrorKind::FutureRevision,
            (ErrorKind::LeaseNotFound, _) => ConcordErrorKind::LeaseNotFound,
            (ErrorKind::PermissionDenied, _) => ConcordErrorKind::PermissionDenied,
            (ErrorKind::AuthFailed, _) => ConcordErrorKind::AuthFailed,
            (ErrorKind::InvalidAuthToken, _) => ConcordErrorKind::InvalidToken,
            (ErrorKind::TooManyRequests, _) => ConcordErrorKind::TooManyRequests,
            (ErrorKind::Timeout, _) => ConcordErrorKind::Timeout,
            (ErrorKind::Unavailable, _) => ConcordErrorKind::Unavailable,
            (ErrorKind::InvalidArgument, _) => ConcordErrorKind::InvalidArgument,
            (ErrorKind::Canceled, _) => ConcordErrorKind::Canceled,
            _ => ConcordErrorKind::Other,
        };
        ConcordError {
            code: e.code() as i32,
            kind,
            message: cstring(e.to_string()),
        }
    }

    pub fn argument(message: String) -> ConcordError {
        ConcordError {
            code: 3,
            kind: ConcordErrorKind::InvalidArgument,
            message: cstring(message),
        }
    }

    pub fn panic(what: String) -> ConcordError {
        ConcordError {
            code: 13,
            kind: ConcordErrorKind::Panic,
            message: cstring(format!("panic inside libconcord: {what}")),
        }
    }
}

/// Hands `e` to the caller through `err` (dropped if `err` is NULL).
pub fn set_error(err: *mut *mut ConcordError, e: ConcordError) {
    if !err.is_null() {
        // SAFETY: a non-NULL `err` points to a writable `concord_error *`.
        unsafe { err.write(Box::into_raw(Box::new(e))) };
    }
}

/// etcd's gRPC status code of the error (e.g. 11 for OUT_OF_RANGE).
#[no_mangle]
pub extern "C" fn concord_error_code(err: *const ConcordError) -> i32 {
    // SAFETY: NULL or an error from this library, alive until freed.
    crate::guard::shielded(0, || unsafe { err.as_ref() }.map_or(0, |e| e.code))
}

/// The kind of the error.
#[no_mangle]
pub extern "C" fn concord_error_get_kind(err: *const ConcordError) -> ConcordErrorKind {
    // SAFETY: as above.
    crate::guard::shielded(ConcordErrorKind::Other, || {
        unsafe { err.as_ref() }.map_or(ConcordErrorKind::Other, |e| e.kind)
    })
}

/// The message (etcd's where the server sent one); valid until the error
/// is freed.
#[no_mangle]
pub extern "C" fn concord_error_message(err: *const ConcordError) -> *const c_char {
    // SAFETY: as above.
    crate::guard::shielded(c"".as_ptr(), || {
        unsafe { err.as_ref() }.map_or(c"".as_ptr(), |e| e.message.as_ptr())
    })
}

/// Frees an error (NULL is fine).
#[no_mangle]
pub extern "C" fn concord_error_free(err: *mut ConcordError) {
    crate::guard::shielded((), || crate::guard::free(err));
}
