//! The few runtime services the client needs — a clock, timers, background
//! tasks — on tokio for native targets and on the browser's event loop for
//! wasm32, so the rest of the client is written once.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
pub use web_time::Instant;

/// `Send` where tasks may move between threads (native); nothing in the
/// browser, where futures built on `fetch` are not `Send`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send> MaybeSend for T {}

/// `Send` where tasks may move between threads (native); nothing in the
/// browser, where futures built on `fetch` are not `Send`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T> MaybeSend for T {}

/// Waits for `d` (any length: "no limit" is a very long sleep).
pub async fn sleep(d: Duration) {
    #[cfg(not(target_arch = "wasm32"))]
    tokio::time::sleep(d).await;
    #[cfg(target_arch = "wasm32")]
    {
        // The browser's timers take at most u32::MAX ms (about 49 days);
        // gloo throws a JavaScript exception past that, which unwinds
        // through the task without running its drops.
        const MAX_TIMER: Duration = Duration::from_millis(u32::MAX as u64);
        let mut left = d;
        while left > MAX_TIMER {
            gloo_timers::future::sleep(MAX_TIMER).await;
            left -= MAX_TIMER;
        }
        gloo_timers::future::sleep(left).await;
    }
}

/// Runs `task` in the background (a tokio task; a microtask in the browser).
/// On native targets this must be called from within a tokio runtime.
pub fn spawn<F>(task: F)
where
    F: Future<Output = ()> + MaybeSend + 'static,
{
    #[cfg(not(target_arch = "wasm32"))]
    tokio::spawn(task);
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_futures::spawn_local(task);
}

/// Runs `f` until `deadline`: `None` if the deadline came first (and `f` is dropped).
pub async fn until<F: Future>(deadline: Instant, f: F) -> Option<F::Output> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    match select(pin!(f), pin!(sleep(left))).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// Waits for `d` but not past `deadline`; `false` if the deadline is reached.
pub async fn sleep_until_at_most(d: Duration, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    sleep(d.min(left)).await;
    Instant::now() < deadline
}
