//! The blocking facade, for callers that are not async (Python's sync API,
//! C, Perl): one tokio runtime shared by every [`BlockingClient`] of the
//! process, started by the first and shut down when the last goes away.
//!
//! - Nothing starts at load or import: the runtime is made on first use.
//! - The facade's own tasks never run foreign code, so the host may exit
//!   while they run. A binding that runs host code on the runtime's
//!   threads (Python's asyncio bridge sets results under the GIL) must
//!   let those tasks finish before the host tears itself down (the Python
//!   module waits for them at `atexit`).
//! - After `fork()` the child has the parent's runtime object but none of
//!   its threads. The facade notices (the process ID changed), leaves that
//!   runtime alone instead of waiting for threads that do not exist, and
//!   starts a fresh one for the child.
//!
//! ```no_run
//! use concord_core::client::{BlockingClient, ClientOptions, GetOptions, PutOptions};
//! let c = BlockingClient::connect(ClientOptions::new(["127.0.0.1:2379"]))?;
//! c.block_on(c.client().put("k", "v", PutOptions::new()))?;
//! let kvs = c.block_on(c.client().get("k", GetOptions::new()))?.kvs;
//! # Ok::<(), concord_core::client::Error>(())
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::{Client, ClientOptions, Error};

/// How long the shutdown of the shared runtime waits for its tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// The process-wide runtime, held by every facade that uses it.
#[derive(Debug)]
pub struct SharedRuntime {
    rt: Option<tokio::runtime::Runtime>,
    /// The process that started the runtime's threads.
    pid: u32,
}

static SHARED: Mutex<Weak<SharedRuntime>> = Mutex::new(Weak::new());

impl SharedRuntime {
    /// The runtime of this process, started now if none is running.
    pub fn get() -> Result<Arc<SharedRuntime>, Error> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rt) = shared.upgrade().filter(|rt| rt.pid == std::process::id()) {
            return Ok(rt);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("concord-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Unavailable(format!("cannot start the client runtime: {e}")))?;
        let rt = Arc::new(SharedRuntime {
            rt: Some(rt),
            pid: std::process::id(),
        });
        *shared = Arc::downgrade(&rt);
        Ok(rt)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("present until dropped")
    }

    /// A handle to spawn tasks on the runtime.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime().handle()
    }

    /// Runs `f` to completion on the runtime, blocking this thread. Must
    /// not be called from one of the runtime's own threads.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime().block_on(f)
    }

    /// Runs `f` for at most `slice`: `None` if it is not done yet, and `f`
    /// may be run on later (how a binding stays responsive to signals
    /// while a call waits).
    pub fn block_on_for<F: Future + Unpin>(&self, f: &mut F, slice: Duration) -> Option<F::Output> {
        self.runtime()
            .block_on(async { tokio::time::timeout(slice, f).await.ok() })
    }
}

impl Drop for SharedRuntime {
    fn drop(&mut self) {
        let Some(rt) = self.rt.take() else { return };
        if self.pid == std::process::id() {
            rt.shutdown_timeout(SHUTDOWN_GRACE);
        } else {
            // A child of fork(): the runtime's threads live only in the
            // parent. Waiting for them would hang; its memory is left as is.
            std::mem::forget(rt);
        }
    }
}

/// A [`Client`] with the shared runtime: every call is made by blocking
/// the caller's thread. Usable from any thread at once (clone it or share
/// a reference).
#[derive(Clone, Debug)]
pub struct BlockingClient {
    client: Client,
    rt: Arc<SharedRuntime>,
}

impl BlockingClient {
    /// Connects as [`Client::connect`] does, blocking until done.
    pub fn connect(opts: ClientOptions) -> Result<BlockingClient, Error> {
        let rt = SharedRuntime::get()?;
        let client = rt.block_on(Client::connect(opts))?;
        Ok(BlockingClient { client, rt })
    }

    /// The async client, whose calls [`BlockingClient::block_on`] runs.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The shared runtime.
    pub fn runtime(&self) -> &Arc<SharedRuntime> {
        &self.rt
    }

    /// Runs a call of [`BlockingClient::client`] (or anything else) to completion.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}
