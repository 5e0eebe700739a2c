//! The panic boundary and argument checks every `extern "C"` function
//! goes through: a panic inside becomes `CONCORD_STATUS_PANIC`, a NULL where a
//! pointer is required becomes `CONCORD_STATUS_NULL_ARGUMENT`, never undefined
//! behaviour or an abort of the host process.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{set_error, ConcordError, ConcordStatus};

/// Runs `f`, turning a panic into `CONCORD_STATUS_PANIC` (with a message in `err`).
pub fn guard(err: *mut *mut ConcordError, f: impl FnOnce() -> Result<(), Failure>) -> ConcordStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => ConcordStatus::Ok,
        Ok(Err(Failure::Null(what))) => {
            set_error(err, ConcordError::argument(format!("{what} must not be NULL")));
            ConcordStatus::NullArgument
        }
        Ok(Err(Failure::Client(e))) => {
            set_error(err, ConcordError::from_client(&e));
            ConcordStatus::Error
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            set_error(err, ConcordError::panic(what));
            ConcordStatus::Panic
        }
    }
}

/// Runs `f` for a call that reports no status (accessors, frees): a
/// panic gives `fallback` instead of crossing the boundary.
pub fn shielded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Why a call failed before or while it ran.
pub enum Failure {
    /// A required pointer was NULL (its name).
    Null(&'static str),
    /// The client's error.
    Client(concord_core::client::Error),
}

impl From<concord_core::client::Error> for Failure {
    fn from(e: concord_core::client::Error) -> Failure {
        Failure::Client(e)
    }
}

/// `len` bytes at `ptr` (NULL is allowed only with `len` 0).
pub fn bytes(ptr: *const u8, len: usize, what: &'static str) -> Result<Vec<u8>, Failure> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(Failure::Null(what));
    }
    // SAFETY: the caller promises `len` readable bytes at `ptr` (the
    // header's contract); they are copied before this returns.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec())
}

/// A NUL-terminated UTF-8 string, or None for NULL.
pub fn opt_str(ptr: *const std::ffi::c_char, what: &'static str) -> Result<Option<String>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: a non-NULL pointer is a NUL-terminated string by contract;
    // it is copied before this returns.
    let s = unsafe { std::ffi::CStr::from_ptr(ptr) };
    s.to_str().map(|s| Some(s.to_string())).map_err(|_| {
        Failure::Client(concord_core::client::Error::InvalidArgument(format!(
            "{what} is not UTF-8"
        )))
    })
}

/// The object behind a handle the caller passed in.
pub fn handle<'a, T>(ptr: *const T, what: &'static str) -> Result<&'a T, Failure> {
    // SAFETY: non-NULL handles come from this library's constructors and
    // live until their free function, which the caller calls last.
    unsafe { ptr.as_ref() }.ok_or(Failure::Null(what))
}

/// Writes `value` to an out-pointer.
pub fn out<T>(ptr: *mut T, value: T, what: &'static str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(Failure::Null(what));
    }
    // SAFETY: a non-NULL out-pointer points to writable storage for a T.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Frees a handle made by `Box::into_raw` (NULL is fine).
pub fn free<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: handles are `Box::into_raw` of a T, freed once by contract.
        drop(unsafe { Box::from_raw(ptr) });
    }
}
