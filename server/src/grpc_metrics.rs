//! `grpc_server_started_total` and `grpc_server_handled_total` as etcd
//! exports them (go-grpc-prometheus' names and labels: `grpc_type`,
//! `grpc_service`, `grpc_method`, and `grpc_code` once handled), counted by
//! a middleware around the gRPC routes. A call is handled when its status
//! is known: in the response headers (a trailers-only answer) or in the
//! trailers at the end of the stream; a stream the client drops first
//! counts as `Canceled`.

use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{IntCounterVec, Opts, Registry};

/// The process-wide registry of the gRPC counters (scraped with the rest).
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

static STARTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
        ),
        &["grpc_type", "grpc_service", "grpc_method"],
    )
    .expect("a valid metric");
    REGISTRY.register(Box::new(c.clone())).expect("registered once");
    c
});

static HANDLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
        ),
        &["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
    )
    .expect("a valid metric");
    REGISTRY.register(Box::new(c.clone())).expect("registered once");
    c
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
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The stream ended without a status: the client went away.
        self.handled("Canceled");
    }
}

/// The response body, watched for the trailers that carry the status.
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
        done: false,
    };
    let resp = next.run(req).await;
    if let Some(code) = status_of(resp.headers()) {
        // A trailers-only answer (an error before any message).
        call.handled(code);
        return resp;
    }
    resp.map(|inner| Body::new(Watched { inner, call }))
}
