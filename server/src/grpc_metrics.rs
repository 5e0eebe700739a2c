//! `grpc_server_started_total` and `grpc_server_handled_total` as etcd
//! exports them (go-grpc-prometheus' names and labels: `grpc_type`,
//! `grpc_service`, `grpc_method`, and `grpc_code` once handled), counted by
//! a middleware around the gRPC routes. A call is handled when its status
//! is known: in the response headers (a trailers-only answer) or in the
//! trailers at the end of the stream; a stream the client drops first
//! counts as `Canceled`. With `--metrics extensive`, each call's time
//! until its status is known also goes to `grpc_server_handling_seconds`.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The process-wide registry of the gRPC counters (scraped with the rest).
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// `metric`, registered in [`REGISTRY`].
fn registered<M: prometheus::core::Collector + Clone + 'static>(metric: prometheus::Result<M>) -> M {
    let m = metric.expect("a valid metric");
    REGISTRY.register(Box::new(m.clone())).expect("registered once");
    m
}

static STARTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(IntCounterVec::new(
        Opts::new(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
        ),
        &["grpc_type", "grpc_service", "grpc_method"],
    ))
});

static HANDLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(IntCounterVec::new(
        Opts::new(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
        ),
        &["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
    ))
});

/// Whether calls' latencies are measured (`--metrics extensive`).
static MEASURE_LATENCY: AtomicBool = AtomicBool::new(false);

/// Measures each call's latency from now on (process-wide, as etcd's
/// `--metrics extensive` is).
pub fn measure_latency() {
    LazyLock::force(&HANDLING);
    MEASURE_LATENCY.store(true, Ordering::Relaxed);
}

static HANDLING: LazyLock<HistogramVec> = LazyLock::new(|| {
    registered(HistogramVec::new(
        HistogramOpts::new(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
        ),
        &["grpc_type", "grpc_service", "grpc_method"],
    ))
});

/// gRPC bytes received and sent, as etcd counts them
/// (`etcd_network_client_grpc_{received,sent}_bytes_total`): message
/// bytes, framing included.
static RECEIVED_BYTES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    registered(prometheus::IntCounter::new(
        "etcd_network_client_grpc_received_bytes_total",
        "The total number of bytes received from grpc clients.",
    ))
});
static SENT_BYTES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    registered(prometheus::IntCounter::new(
        "etcd_network_client_grpc_sent_bytes_total",
        "The total number of bytes sent to grpc clients.",
    ))
});

/// The kind of an etcd RPC, as go-grpc-prometheus labels it.
fn grpc_type(service: &str, method: &str) -> &'static str {
    match (service, method) {
        ("etcdserverpb.Watch", "Watch") | ("etcdserverpb.Lease", "LeaseKeepAlive") => "bidi_stream",
        ("etcdserverpb.Maintenance", "Snapshot") | ("v3electionpb.Election", "Observe") => "server_stream",
        _ => "unary",
    }
}

/// gRPC's name of a status code, as the label carries it.
fn code_name(code: &str) -> &'static str {
    match code.trim() {
        "0" => "OK",
        "1" => "Canceled",
        "2" => "Unknown",
        "3" => "InvalidArgument",
        "4" => "DeadlineExceeded",
        "5" => "NotFound",
        "6" => "AlreadyExists",
        "7" => "PermissionDenied",
        "8" => "ResourceExhausted",
        "9" => "FailedPrecondition",
        "10" => "Aborted",
        "11" => "OutOfRange",
        "12" => "Unimplemented",
        "13" => "Internal",
        "14" => "Unavailable",
        "15" => "DataLoss",
        "16" => "Unauthenticated",
        _ => "Unknown",
    }
}

fn status_of(headers: &HeaderMap) -> Option<&'static str> {
    headers.get("grpc-status").and_then(|v| v.to_str().ok()).map(code_name)
}

/// The labels of one call; counts it handled once, with its code.
struct Call {
    labels: [String; 3],
    started: Instant,
    done: bool,
}

impl Call {
    fn handled(&mut self, code: &str) {
        if !self.done {
            self.done = true;
            let [t, s, m] = &self.labels;
            HANDLED
                .with_label_values(&[t.as_str(), s.as_str(), m.as_str(), code])
                .inc();
            if MEASURE_LATENCY.load(Ordering::Relaxed) {
                HANDLING
                    .with_label_values(&[t.as_str(), s.as_str(), m.as_str()])
                    .observe(self.started.elapsed().as_secs_f64());
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The stream ended without a status: the client went away.
        self.handled("Canceled");
    }
}

/// A request body whose bytes are counted as they are read.
struct Counted {
    inner: Body,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                RECEIVED_BYTES.inc_by(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The response body, watched for the trailers that carry the status
/// (and its bytes counted).
struct Watched {
    inner: Body,
    call: Call,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    SENT_BYTES.inc_by(data.len() as u64);
                }
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    self.call.handled(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.call.handled("Unknown"),
            Poll::Ready(None) => self.call.handled("Unknown"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The middleware: counts the call started, and handled with its code.
pub async fn count(req: Request, next: Next) -> Response {
    let path = req.uri().path().trim_start_matches('/').to_string();
    let Some((service, method)) = path.split_once('/') else {
        return next.run(req).await;
    };
    let kind = grpc_type(service, method);
    STARTED.with_label_values(&[kind, service, method]).inc();
    let mut call = Call {
        labels: [kind.to_string(), service.to_string(), method.to_string()],
        started: Instant::now(),
        done: false,
    };
    let req = req.map(|inner| Body::new(Counted { inner }));
    let resp = next.run(req).await;
    if let Some(code) = status_of(resp.headers()) {
        // A trailers-only answer (an error before any message).
        call.handled(code);
        return resp;
    }
    resp.map(|inner| Body::new(Watched { inner, call }))
}
