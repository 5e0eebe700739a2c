//! `concord.Watch`: one object for both worlds: `for event in watch`
//! (blocking, Ctrl-C honored) and `async for event in watch`. It reads the
//! shared client's watch handle, which resumes broken streams without
//! losing or repeating an event, and hands the events out one by one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use concord_core::client::{Error, WatchHandle, WatchOptions};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use tokio::sync::OnceCell;

use crate::error::to_py;
use crate::kv::{with_range, Range};
use crate::runtime::{wait_on, Core};
use crate::types::{Bytes, Event};

/// A watch request as Python gave it.
pub struct WatchArgs {
    key: Vec<u8>,
    opts: WatchOptions,
}

impl WatchArgs {
    pub fn new(
        key: Bytes,
        range_end: Option<Bytes>,
        prefix: bool,
        start_revision: Option<i64>,
        prev_kv: bool,
        progress_notify: bool,
        filters: Vec<String>,
    ) -> PyResult<WatchArgs> {
        let range = Range::of(range_end, prefix).map_err(to_py)?;
        let mut opts = with_range!(WatchOptions::new(), range);
        if let Some(rev) = start_revision {
            opts = opts.start_revision(rev);
        }
        if prev_kv {
            opts = opts.prev_kv();
        }
        if progress_notify {
            opts = opts.progress_notify();
        }
        for f in filters {
            opts = match f.to_ascii_lowercase().as_str() {
                "noput" | "no_put" => opts.no_put(),
                "nodelete" | "no_delete" => opts.no_delete(),
                other => {
                    return Err(to_py(Error::InvalidArgument(format!(
                        "filter {other:?}: use \"noput\" or \"nodelete\""
                    ))))
                }
            };
        }
        Ok(WatchArgs { key: key.0, opts })
    }
}

/// The state both iteration styles share.
struct Shared {
    core: Core,
    args: WatchArgs,
    handle: OnceCell<Arc<WatchHandle>>,
    /// Events of an answer not handed out yet.
    pending: Mutex<VecDeque<Event>>,
}

impl Shared {
    async fn handle(&self) -> Result<Arc<WatchHandle>, Error> {
        let h = self
            .handle
            .get_or_try_init(|| async {
                let h = Arc::new(
                    self.core
                        .client
                        .watch_handle(self.args.key.clone(), self.args.opts.clone())
                        .await?,
                );
                self.core.track_watch(&h);
                Ok::<_, Error>(h)
            })
            .await?;
        Ok(Arc::clone(h))
    }

    /// The next event; `None` when the watch is canceled or ended.
    async fn next(&self) -> Result<Option<Event>, Error> {
        let handle = self.handle().await?;
        loop {
            if let Some(e) = self.pending.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                return Ok(Some(e));
            }
            match handle.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(e),
                Some(Ok(answer)) => {
                    let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    pending.extend(answer.events.into_iter().map(Event::from_pb));
                }
            }
        }
    }
}

/// A running watch: iterate over it (`for` or `async for`) for its events,
/// in revision order; `cancel()` (or leaving a `with` block) stops it.
/// A watch whose start revision was compacted raises `CompactedError`.
#[pyclass(module = "concord", frozen)]
pub struct Watch {
    shared: Arc<Shared>,
}

impl Watch {
    fn new(core: &Core, args: WatchArgs) -> Watch {
        Watch {
            shared: Arc::new(Shared {
                core: core.clone(),
                args,
                handle: OnceCell::new(),
                pending: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// A watch in place when this returns.
    pub fn open_blocking(py: Python<'_>, core: &Core, args: WatchArgs) -> PyResult<Watch> {
        let w = Watch::new(core, args);
        let shared = Arc::clone(&w.shared);
        core.wait(py, async move { shared.handle().await.map(|_| ()) })?;
        Ok(w)
    }

    /// An awaitable that resolves to the watch once it is in place.
    fn in_place<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&slf.get().shared);
        let me: Py<Self> = slf.clone().unbind();
        slf.get()
            .shared
            .core
            .spawn(slf.py(), async move { shared.handle().await.map(|_| me) })
    }

    /// A watch being set up in the background from now on; awaiting it
    /// (or its first event) waits until it is in place.
    pub fn open_async(core: &Core, args: WatchArgs) -> Watch {
        let w = Watch::new(core, args);
        let shared = Arc::clone(&w.shared);
        core.rt.handle().spawn(async move {
            // An error here is raised again to whoever awaits the watch.
            let _ = shared.handle().await;
        });
        w
    }
}

#[pymethods]
impl Watch {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Event> {
        let shared = Arc::clone(&self.shared);
        let rt = Arc::clone(&self.shared.core.rt);
        match wait_on(py, &rt, async move { shared.next().await.map_err(to_py) })? {
            Some(e) => Ok(e),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        let _in = self.shared.core.rt.handle().enter();
        pyo3_async_runtimes::generic::future_into_py::<crate::runtime::Shared, _, Event>(py, async move {
            match shared.next().await {
                Ok(Some(e)) => Ok(e),
                Ok(None) => Err(PyStopAsyncIteration::new_err(())),
                Err(e) => Err(to_py(e)),
            }
        })
    }

    /// `await watch`: waits until the watch is in place, returns it.
    fn __await__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Watch::in_place(slf)?.call_method0("__await__")
    }

    /// The next event, waiting at most `timeout` seconds (None: no limit);
    /// None if no event came in time, or if the watch was canceled (see
    /// `canceled`).
    #[pyo3(signature = (timeout=None))]
    fn get(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Event>> {
        let shared = Arc::clone(&self.shared);
        let rt = Arc::clone(&self.shared.core.rt);
        let limit = timeout.map(std::time::Duration::from_secs_f64);
        wait_on(py, &rt, async move {
            match limit {
                None => shared.next().await.map_err(to_py),
                Some(d) => match tokio::time::timeout(d, shared.next()).await {
                    Ok(r) => r.map_err(to_py),
                    Err(_) => Ok(None),
                },
            }
        })
    }

    /// Stops the watch; iteration ends (a pending `for`/`async for` too).
    fn cancel(&self) {
        if let Some(h) = self.shared.handle.get() {
            h.cancel();
        }
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn canceled(&self) -> bool {
        self.shared.handle.get().is_some_and(|h| h.is_canceled())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.cancel();
        false
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Watch::in_place(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc: &Bound<'py, pyo3::types::PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        self.cancel();
        self.shared.core.spawn(py, async { Ok(false) })
    }
}
