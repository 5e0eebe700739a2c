//! `concord.Server`: the real Concord server inside the Python process (as
//! Go programs embed etcd), on its own thread and runtime: a temporary
//! data directory and a free port unless told otherwise. For tests and
//! for programs that want a private store.

use std::sync::Mutex;
use std::thread::JoinHandle;

use clap::Parser;
use concord_server::config::Config;
use concord_server::{Listener, Listeners, Settings};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// A server that is running.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<Result<(), String>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Running {
    /// Asks the server to stop and waits until it has (queued writes
    /// finished, state checkpointed).
    fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        self.thread
            .join()
            .map_err(|_| "the server thread panicked".to_string())?
    }
}

/// A Concord server running inside this process.
///
/// >>> with concord.Server() as server:
/// ...     c = server.client()
/// ...     c.put("k", "v")
#[pyclass(module = "concord", frozen)]
pub struct Server {
    endpoint: String,
    data_dir: String,
    running: Mutex<Option<Running>>,
}

#[pymethods]
impl Server {
    /// Starts a server: data in `data_dir` (default: a temporary directory,
    /// removed at stop), clients on `host:port` (port 0: a free one).
    /// `args` are more of `concord`'s flags, e.g. `["--auth-token-ttl", "2"]`.
    #[new]
    #[pyo3(signature = (data_dir=None, port=0, *, host="127.0.0.1".to_string(), name="default".to_string(), args=Vec::new()))]
    fn new(
        py: Python<'_>,
        data_dir: Option<String>,
        port: u16,
        host: String,
        name: String,
        args: Vec<String>,
    ) -> PyResult<Server> {
        let tmp = match data_dir {
            Some(_) => None,
            None => Some(
                tempfile::Builder::new()
                    .prefix("concord-")
                    .tempdir()
                    .map_err(|e| PyOSError::new_err(format!("cannot make a data directory: {e}")))?,
            ),
        };
        let dir = match (&data_dir, &tmp) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => t.path().join("data").to_string_lossy().into_owned(),
            (None, None) => unreachable!("one of the two is set"),
        };
        // The socket is bound here, so a port in use is an OSError now and
        // the server advertises the port it really has.
        let listener = Listener::bind(&format!("http://{host}:{port}"))
            .map_err(|e| PyOSError::new_err(format!("concord server: {e}")))?;
        let url = format!("http://{}", listener.local_addr());
        let mut argv: Vec<String> = ["concord", "--name", &name, "--data-dir", &dir]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.extend([
            "--listen-client-urls".into(),
            url.clone(),
            "--advertise-client-urls".into(),
            url,
        ]);
        argv.extend(args);
        let cfg = Config::try_parse_from(&argv).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let settings = Settings::from_config(&cfg).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let listeners = Listeners::with_clients(&settings, vec![listener])
            .map_err(|e| PyOSError::new_err(format!("concord server: {e}")))?;

        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("concord-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("concord-server")
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                let shutdown = async {
                    let _ = stop_rx.await;
                };
                let report = move |addrs| {
                    let _ = ready_tx.send(addrs);
                };
                rt.block_on(concord_server::serve_member(settings, listeners, shutdown, report))
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the server thread: {e}")))?;
        let addrs: Option<Vec<std::net::SocketAddr>> = py.detach(move || ready_rx.recv().ok());
        let Some(addr) = addrs.and_then(|a| a.first().copied()) else {
            let why = match thread.join() {
                Ok(Err(e)) => e,
                Ok(Ok(())) => "stopped before serving".to_string(),
                Err(_) => "the server thread panicked".to_string(),
            };
            return Err(PyRuntimeError::new_err(format!("concord server did not start: {why}")));
        };
        Ok(Server {
            endpoint: addr.to_string(),
            data_dir: dir,
            running: Mutex::new(Some(Running {
                stop,
                thread,
                _tmp: tmp,
            })),
        })
    }

    /// `host:port` of the client port (gRPC and the JSON gateway).
    #[getter]
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `http://host:port`.
    #[getter]
    fn url(&self) -> String {
        format!("http://{}", self.endpoint)
    }

    /// Where the data is.
    #[getter]
    fn data_dir(&self) -> &str {
        &self.data_dir
    }

    /// Whether the server runs.
    #[getter]
    fn running(&self) -> bool {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// A `concord.Client` of this server (keyword arguments as `Client`'s).
    #[pyo3(signature = (**kwargs))]
    fn client<'py>(&self, py: Python<'py>, kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        py.import("concord")?
            .getattr("Client")?
            .call((self.endpoint.clone(),), kwargs)
    }

    /// A `concord.AsyncClient` of this server.
    #[pyo3(signature = (**kwargs))]
    fn async_client<'py>(&self, py: Python<'py>, kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        py.import("concord")?
            .getattr("AsyncClient")?
            .call((self.endpoint.clone(),), kwargs)
    }

    /// Stops the server (waits until its state is on disk). Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner()).take();
        match running {
            Some(r) => py
                .detach(|| r.stop())
                .map_err(|e| PyRuntimeError::new_err(format!("concord server failed: {e}"))),
            None => Ok(()),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<concord.Server {} running={}>", self.endpoint, self.running())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = r.stop();
        }
    }
}
