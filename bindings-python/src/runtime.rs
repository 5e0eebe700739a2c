//! How Python waits for the shared client: blocking calls release the GIL
//! and wake every 50 ms to let Python handle signals (Ctrl-C interrupts a
//! blocked call); coroutines are tokio tasks on the facade's shared runtime,
//! bridged to asyncio by pyo3-async-runtimes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use concord_core::client::{Client, Error, KeepAlive, SharedRuntime, WatchHandle};
use pyo3::prelude::*;
use pyo3_async_runtimes::generic::{ContextExt, JoinError, Runtime};
use pyo3_async_runtimes::TaskLocals;

use crate::error::to_py;

/// How long a blocking call waits between checks for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// A client and the runtime its calls run on: what every Python object
/// that makes calls holds.
#[derive(Clone)]
pub struct Core {
    pub client: Client,
    pub rt: Arc<SharedRuntime>,
    /// The watches and keep-alives started through this client, stopped
    /// by `close()`.
    started: Arc<Mutex<Vec<Started>>>,
}

/// Something running in the background for a client.
enum Started {
    Watch(Weak<WatchHandle>),
    KeepAlive(Weak<KeepAlive>),
}

impl Core {
    pub fn new(client: Client, rt: Arc<SharedRuntime>) -> Core {
        Core {
            client,
            rt,
            started: Arc::default(),
        }
    }

    fn track(&self, s: Started) {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        started.retain(|s| match s {
            Started::Watch(w) => w.strong_count() > 0,
            Started::KeepAlive(k) => k.strong_count() > 0,
        });
        started.push(s);
    }

    /// Remembers a watch for `close()`.
    pub fn track_watch(&self, w: &Arc<WatchHandle>) {
        self.track(Started::Watch(Arc::downgrade(w)));
    }

    /// Remembers a keep-alive for `close()`.
    pub fn track_keep_alive(&self, k: &Arc<KeepAlive>) {
        self.track(Started::KeepAlive(Arc::downgrade(k)));
    }

    /// Cancels every watch and stops every keep-alive started through this client.
    pub fn close(&self) {
        let started = std::mem::take(&mut *self.started.lock().unwrap_or_else(|e| e.into_inner()));
        for s in started {
            match s {
                Started::Watch(w) => {
                    if let Some(w) = w.upgrade() {
                        w.cancel();
                    }
                }
                Started::KeepAlive(k) => {
                    if let Some(k) = k.upgrade() {
                        k.close();
                    }
                }
            }
        }
    }

    /// Runs `fut` to completion with the GIL released, raising its error as
    /// the matching Python exception, or `KeyboardInterrupt` (or whatever a
    /// signal handler raises) if a signal arrives first.
    pub fn wait<T, F>(&self, py: Python<'_>, fut: F) -> PyResult<T>
    where
        F: Future<Output = Result<T, Error>> + Send,
        T: Send,
    {
        wait_on(py, &self.rt, async move { fut.await.map_err(to_py) })
    }

    /// `fut` as an asyncio awaitable, run on the shared runtime.
    pub fn spawn<'py, T, F>(&self, py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let _entered = self.rt.handle().enter();
        pyo3_async_runtimes::generic::future_into_py::<Shared, _, T>(py, async move { fut.await.map_err(to_py) })
    }
}

/// A Python class whose calls are defined by `dual_methods!`.
pub trait Dual {
    /// What a call's body gets (the client, and the lease ID for a lease).
    type Ctx;
    fn core(&self) -> &Core;
    fn ctx(&self) -> Self::Ctx;
}

/// [`Core::wait`] for futures whose errors are already Python's.
pub fn wait_on<T, E, F>(py: Python<'_>, rt: &SharedRuntime, fut: F) -> PyResult<T>
where
    F: Future<Output = Result<T, E>> + Send,
    T: Send,
    E: Send,
    PyErr: From<E>,
{
    let mut fut = Box::pin(fut);
    loop {
        match py.detach(|| rt.block_on_for(&mut fut, SIGNAL_CHECK)) {
            Some(out) => return out.map_err(PyErr::from),
            None => py.check_signals()?,
        }
    }
}

/// The shared runtime as pyo3-async-runtimes sees it. Tasks go to the
/// runtime of this process; every Python object that spawns holds it, so
/// it is running.
pub struct Shared;

/// Tasks spawned for asyncio that have not finished. They touch Python
/// as they finish (setting the awaitable's result), so the interpreter
/// must not be finalized under them: see [`quiesce`].
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts a task in [`IN_FLIGHT`] until it ends (or is dropped).
struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits, with the GIL released, until no asyncio task of this module is
/// still finishing, for at most `limit`. Registered with `atexit`, so the
/// interpreter is not finalized while a runtime thread is about to take
/// the GIL (a thread that takes it during finalization aborts the process).
pub fn quiesce(py: Python<'_>, limit: Duration) {
    py.detach(|| {
        let deadline = Instant::now() + limit;
        while IN_FLIGHT.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// A spawned task's failure.
pub struct TaskError(tokio::task::JoinError);

impl JoinError for TaskError {
    fn is_panic(&self) -> bool {
        self.0.is_panic()
    }
    fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        self.0.into_panic()
    }
}

type Joined = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>>;

fn handle() -> tokio::runtime::Handle {
    tokio::runtime::Handle::try_current().unwrap_or_else(|_| {
        SharedRuntime::get()
            .expect("the shared runtime starts")
            .handle()
            .clone()
    })
}

impl Runtime for Shared {
    type JoinError = TaskError;
    type JoinHandle = Joined;

    fn spawn<F>(fut: F) -> Joined
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let counted = InFlight::start();
        let task = handle().spawn(async move {
            let _counted = counted;
            fut.await
        });
        Box::pin(async move { task.await.map_err(TaskError) })
    }

    fn spawn_blocking<F>(f: F) -> Joined
    where
        F: FnOnce() + Send + 'static,
    {
        let counted = InFlight::start();
        let task = handle().spawn_blocking(move || {
            let _counted = counted;
            f()
        });
        Box::pin(async move { task.await.map_err(TaskError) })
    }
}

tokio::task_local! {
    static LOCALS: TaskLocals;
}

impl ContextExt for Shared {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        Box::pin(LOCALS.scope(locals, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        LOCALS.try_with(Clone::clone).ok()
    }
}
