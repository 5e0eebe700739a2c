//! Leases: grant, revoke, time-to-live, and a keep-alive handle that
//! refreshes in the background and reports the loss.

use std::time::Duration;

use concord_core::client::{KeepAlive, LeaseState};

use crate::client::ConcordClient;
use crate::error::{set_error, ConcordError, ConcordStatus};
use crate::guard::{guard, handle, out};

/// Grants a lease of `ttl` seconds (`id` 0: the server picks the ID);
/// `lease` receives its ID.
#[no_mangle]
pub extern "C" fn concord_lease_grant(
    client: *const ConcordClient,
    ttl: i64,
    id: i64,
    lease: *mut i64,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let r = c.block_on(c.client().lease_grant(ttl, id))?;
        out(lease, r.id, "lease")
    })
}

/// Revokes a lease, deleting its keys.
#[no_mangle]
pub extern "C" fn concord_lease_revoke(
    client: *const ConcordClient,
    lease: i64,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        c.block_on(c.client().lease_revoke(lease))?;
        Ok(())
    })
}

/// The seconds a lease has left (`-1`: it does not exist).
#[no_mangle]
pub extern "C" fn concord_lease_ttl(
    client: *const ConcordClient,
    lease: i64,
    ttl: *mut i64,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let r = c.block_on(c.client().lease_time_to_live(lease, false))?;
        out(ttl, r.ttl, "ttl")
    })
}

/// A lease kept alive in the background until freed.
pub struct ConcordKeepAlive {
    client: concord_core::client::BlockingClient,
    inner: KeepAlive,
}

/// Keeps `lease` alive (refreshed at a third of its TTL, across members)
/// until `concord_keep_alive_free`; fails now if the lease does not exist.
#[no_mangle]
pub extern "C" fn concord_keep_alive_start(
    client: *const ConcordClient,
    lease: i64,
    keep_alive: *mut *mut ConcordKeepAlive,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = handle(client, "client")?.inner.clone();
        let inner = c.block_on(c.client().lease_keep_alive(lease))?;
        out(
            keep_alive,
            Box::into_raw(Box::new(ConcordKeepAlive { client: c, inner })),
            "keep_alive",
        )
    })
}

/// Waits up to `timeout_seconds` (negative: no limit) for the lease to be
/// lost. Returns true if it was lost; then, if `err` is not NULL, it
/// receives why. False if the time ran out (or the handle was closed).
#[no_mangle]
pub extern "C" fn concord_keep_alive_wait_lost(
    keep_alive: *const ConcordKeepAlive,
    timeout_seconds: f64,
    err: *mut *mut ConcordError,
) -> bool {
    let mut lost = None;
    let _ = guard(std::ptr::null_mut(), || {
        let k = handle(keep_alive, "keep_alive")?;
        let wait = k.inner.lost();
        lost = if timeout_seconds < 0.0 {
            k.client.block_on(wait)
        } else {
            let d = Duration::from_secs_f64(timeout_seconds);
            k.client.runtime().block_on_for(&mut Box::pin(wait), d).flatten()
        };
        Ok(())
    });
    match lost {
        Some(e) => {
            set_error(err, ConcordError::from_client(&e));
            true
        }
        None => false,
    }
}

/// Whether the lease is still alive as far as the keep-alive knows.
#[no_mangle]
pub extern "C" fn concord_keep_alive_alive(keep_alive: *const ConcordKeepAlive) -> bool {
    let mut alive = false;
    let _ = guard(std::ptr::null_mut(), || {
        alive = matches!(
            handle(keep_alive, "keep_alive")?.inner.state(),
            LeaseState::Alive { .. }
        );
        Ok(())
    });
    alive
}

/// Stops refreshing and frees the handle (the lease is not revoked).
#[no_mangle]
pub extern "C" fn concord_keep_alive_free(keep_alive: *mut ConcordKeepAlive) {
    let _ = guard(std::ptr::null_mut(), || {
        crate::guard::free(keep_alive);
        Ok(())
    });
}
