//! Watches: events delivered to a C callback on a background thread, in
//! revision order; the shared client resumes broken streams without loss.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use concord_core::api::mvccpb::event::EventType;
use concord_core::client::WatchOptions;

use crate::client::ConcordClient;
use crate::error::{ConcordError, ConcordStatus};
use crate::guard::{bytes, guard, handle, out};
use crate::kv::{key_range, view, ConcordKv};

/// One change. Valid during the callback only.
#[repr(C)]
pub struct ConcordEvent {
    /// True for a delete, false for a put.
    pub is_delete: bool,
    pub kv: ConcordKv,
    /// The key-value before the change (with `prev_kv`); `has_prev_kv` says
    /// whether there is one.
    pub has_prev_kv: bool,
    pub prev_kv: ConcordKv,
}

/// Called once per event, or once with `event` NULL and `err` set when the
/// watch ends with an error (e.g. compacted); `err` is valid during the call.
pub type ConcordWatchCallback =
    Option<extern "C" fn(user_data: *mut c_void, event: *const ConcordEvent, err: *const ConcordError)>;

/// A running watch. `concord_watch_cancel` stops it; `concord_watch_free`
/// cancels and frees it.
pub struct ConcordWatch {
    canceled: Arc<AtomicBool>,
    feed: Arc<concord_core::client::WatchHandle>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
}

/// The caller's pointer, handed back to its callback on our thread.
struct UserData(*mut c_void);
// SAFETY: the header tells callers that their callback and user data are
// used from the library's thread.
unsafe impl Send for UserData {}

/// Watches `key` (or `[key, range_end)`, or with `prefix` every key
/// starting with it) from `start_revision` (0: from now), calling
/// `callback` for each event. Returns once the watch is in place.
#[no_mangle]
pub extern "C" fn concord_watch_start(
    client: *const ConcordClient,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
    prefix: bool,
    start_revision: i64,
    prev_kv: bool,
    callback: ConcordWatchCallback,
    user_data: *mut c_void,
    watch: *mut *mut ConcordWatch,
    err: *mut *mut ConcordError,
) -> ConcordStatus {
    guard(err, || {
        let c = handle(client, "client")?.inner.clone();
        let cb = callback.ok_or(crate::guard::Failure::Null("callback"))?;
        let k = bytes(key, key_len, "key")?;
        let end = bytes(range_end, range_end_len, "range_end")?;
        let mut o = WatchOptions::new()
            .start_revision(start_revision)
            .key_range(key_range(prefix, end));
        if prev_kv {
            o = o.prev_kv();
        }
        let feed = Arc::new(c.block_on(c.client().watch_handle(k, o))?);
        let canceled = Arc::new(AtomicBool::new(false));
        let (f, stop, data) = (Arc::clone(&feed), Arc::clone(&canceled), UserData(user_data));
        let thread = std::thread::Builder::new()
            .name("concord-watch".into())
            .spawn(move || deliver(&c, &f, &stop, cb, data))
            .map_err(|e| concord_core::client::Error::Unavailable(format!("cannot start the watch thread: {e}")))?;
        let id = thread.thread().id();
        let w = ConcordWatch {
            canceled,
            feed,
            thread: Mutex::new(Some(thread)),
            thread_id: id,
        };
        out(watch, Box::into_raw(Box::new(w)), "watch")
    })
}

fn deliver(
    c: &concord_core::client::BlockingClient,
    feed: &concord_core::client::WatchHandle,
    stop: &AtomicBool,
    cb: extern "C" fn(*mut c_void, *const ConcordEvent, *const ConcordError),
    data: UserData,
) {
    loop {
        let answer = match c.block_on(feed.next_timeout(Duration::from_millis(200))) {
            Err(_) => {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                continue;
            }
            Ok(None) => return,
            Ok(Some(a)) => a,
        };
        if stop.load(Ordering::Acquire) {
            return;
        }
        match answer {
            Ok(resp) => {
                for e in &resp.events {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let Some(kv) = e.kv.as_ref() else { continue };
                    let blank = concord_core::api::mvccpb::KeyValue::default();
                    let ev = ConcordEvent {
                        is_delete: e.r#type == EventType::Delete as i32,
                        kv: view(kv),
                        has_prev_kv: e.prev_kv.is_some(),
                        prev_kv: view(e.prev_kv.as_ref().unwrap_or(&blank)),
                    };
                    cb(data.0, &ev, std::ptr::null());
                }
            }
            Err(e) => {
                let err = ConcordError::from_client(&e);
                cb(data.0, std::ptr::null(), &err);
                return;
            }
        }
    }
}

/// Stops the watch. When it returns, the callback is running no more and
/// will not be called again (called from inside the callback, it returns
/// at once and the callback is not called again after the current one).
#[no_mangle]
pub extern "C" fn concord_watch_cancel(watch: *const ConcordWatch) -> ConcordStatus {
    guard(std::ptr::null_mut(), || {
        let w = handle(watch, "watch")?;
        w.canceled.store(true, Ordering::Release);
        w.feed.cancel();
        if std::thread::current().id() != w.thread_id {
            let t = w.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(t) = t {
                let _ = t.join();
            }
        }
        Ok(())
    })
}

/// Cancels (if needed) and frees a watch (NULL is fine). Not from inside
/// its own callback.
#[no_mangle]
pub extern "C" fn concord_watch_free(watch: *mut ConcordWatch) {
    if !watch.is_null() {
        let _ = concord_watch_cancel(watch);
        crate::guard::free(watch);
    }
}
