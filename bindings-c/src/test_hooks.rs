//! What the C tests need to prove the boundary holds.

use crate::error::{ConcordError, ConcordStatus};
use crate::guard::guard;

/// Panics inside the library on purpose: the caller must get
/// `CONCORD_STATUS_PANIC` and an error whose kind is `CONCORD_ERROR_KIND_PANIC`,
/// and the process must go on.
#[no_mangle]
pub extern "C" fn concord_test_panic(err: *mut *mut ConcordError) -> ConcordStatus {
    guard(err, || panic!("deliberate panic for the boundary test"))
}
