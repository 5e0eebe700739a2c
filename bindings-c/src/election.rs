//! Locks and elections on the server's Lock and Election services. The
//! fencing token is the held key's create revision.

use std::time::Duration;

use concord_core::api::v3electionpb::LeaderKey;
use concord_core::client::GetOptions;

use crate::client::ConcordClient;
use crate::error::{ConcordError, ConcordStatus};
use crate::guard::{bytes, guard, handle, out};
use crate::kv::{ConcordKvs, ConcordKvsStorage};

/// Bytes the library owns: free with `concord_buf_free`.
#[repr(C)]
pub struct ConcordBuf {
    pub data: *const u8,
    pub len: usize,
    storage: *mut Vec<u8>,
}

fn buf(v: Vec<u8>) -> *mut ConcordBuf {
    let storage = Box::into_raw(Box::new(v));
    // SAFETY: just made from a Box; freed only by concord_buf_free.
    let v = unsafe { &*storage };
    Box::into_raw(Box::new(ConcordBuf {
        data: v.as_ptr(),
        len: v.len(),
        storage,
    }))
}

/// Frees a buffer (NULL is fine).
#[no_mangle]
pub extern "C" fn concord_buf_free(b: *mut ConcordBuf) {
    let _ = guard(std::ptr::null_mut(), || {
        if !b.is_null() {
            // SAFETY: made by `buf` with Box::into_raw, freed once.
            let b = unsafe { Box::from_raw(b) };
            crate::guard::free(b.storage);
        }
        Ok(())
    });
}

fn wait(timeout_seconds: f64) -> Option<Duration> {
    (timeout_seconds >= 0.0 && timeout_seconds.is_finite()).then(|| Duration::from_secs_f64(timeout_seconds))
}

/// Waits (at most `timeout_seconds`; negative: no limit) until this client
/// holds the lock `name` under `lease` (0: the server grants a 60 s
/// lease). `key` receives the lock's key (for `concord_unlock`),
/// `revision` (may be NULL) its fencing token.
#[no_mangle]
pub extern "C" fn concord_lock(
    client: *const ConcordClient,
    name: *const u8,
    name_len: usize,
    lease: i64,
    timeout_seconds: f64,
    key: *mut *mut ConcordBuf,
    revision: *mut i64,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let n = bytes(name, name_len, "name")?;
        let r = c.block_on(c.client().lock(n, lease, wait(timeout_seconds)))?;
        if !revision.is_null() {
            let got = c.block_on(c.client().get(r.key.clone(), GetOptions::new()))?;
            out(revision, got.kvs.first().map_or(0, |kv| kv.create_revision), "revision")?;
        }
        out(key, buf(r.key), "key")
    })
}

/// Releases a lock by its key.
#[no_mangle]
pub extern "C" fn concord_unlock(
    client: *const ConcordClient,
    key: *const u8,
    key_len: usize,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        c.block_on(c.client().unlock(bytes(key, key_len, "key")?))?;
        Ok(())
    })
}

/// A leadership won by `concord_campaign`. Free with `concord_leader_free`.
pub struct ConcordLeader {
    key: LeaderKey,
}

/// Waits (at most `timeout_seconds`; negative: no limit) until this client
/// leads the election `name` with `value`, under `lease` (0: a 60 s lease).
#[no_mangle]
pub extern "C" fn concord_campaign(
    client: *const ConcordClient,
    name: *const u8,
    name_len: usize,
    lease: i64,
    value: *const u8,
    value_len: usize,
    timeout_seconds: f64,
    leader: *mut *mut ConcordLeader,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let (n, v) = (bytes(name, name_len, "name")?, bytes(value, value_len, "value")?);
        let r = c.block_on(c.client().campaign(n, lease, v, wait(timeout_seconds)))?;
        let key = r.leader.unwrap_or_default();
        out(leader, Box::into_raw(Box::new(ConcordLeader { key })), "leader")
    })
}

/// The leadership's fencing token (its key's create revision).
#[no_mangle]
pub extern "C" fn concord_leader_revision(leader: *const ConcordLeader) -> i64 {
    // SAFETY: NULL or a leader from this library, alive until freed.
    unsafe { leader.as_ref() }.map_or(0, |l| l.key.rev)
}

/// The leader announces a new value (fails once it no longer leads).
#[no_mangle]
pub extern "C" fn concord_proclaim(
    client: *const ConcordClient,
    leader: *const ConcordLeader,
    value: *const u8,
    value_len: usize,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let l = handle(leader, "leader")?;
        c.block_on(c.client().proclaim(&l.key, bytes(value, value_len, "value")?))?;
        Ok(())
    })
}

/// Steps down.
#[no_mangle]
pub extern "C" fn concord_resign(
    client: *const ConcordClient,
    leader: *const ConcordLeader,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        c.block_on(c.client().resign(&handle(leader, "leader")?.key))?;
        Ok(())
    })
}

/// Frees a leadership handle (it does not resign; NULL is fine).
#[no_mangle]
pub extern "C" fn concord_leader_free(leader: *mut ConcordLeader) {
    let _ = guard(std::ptr::null_mut(), || {
        crate::guard::free(leader);
        Ok(())
    });
}

/// The current leader of `name` as a list of zero (no leader) or one key-value.
#[no_mangle]
pub extern "C" fn concord_election_leader(
    client: *const ConcordClient,
    name: *const u8,
    name_len: usize,
    result: *mut *mut ConcordKvs,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = &handle(client, "client")?.inner;
        let kvs: Vec<_> = c
            .block_on(c.client().current_leader(bytes(name, name_len, "name")?))?
            .into_iter()
            .collect();
        out(result, ConcordKvsStorage::into_list(kvs, 0, false, 0), "result")
    })
}
