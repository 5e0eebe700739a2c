//! The JSON gateway: `POST /v3/<service>/<method>` (and `/v3beta/…`, which
//! older clients call), `GET /health`, `GET /version`. Bodies are the proto
//! messages in JSON (pbjson: base64 bytes, int64 as strings, proto field
//! names, camelCase accepted); errors are `{"error", "message", "code"}`
//! with the HTTP status grpc-gateway gives the gRPC code.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use concord_core::api::error::EtcdError;
use concord_core::api::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseLeasesRequest, LeaseTimeToLiveRequest, MemberListRequest, StatusRequest, WatchRequest,
};
use concord_core::service::{EtcdService, WatchSession, ETCD_API_VERSION, ETCD_CLUSTER_VERSION};
use concord_core::watch::WatchReceiver;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_stream::Stream;

type Svc = Arc<EtcdService>;

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The gateway's answer for an error: etcd's body and HTTP status.
pub fn error_response(e: &EtcdError) -> Response {
    let msg = e.to_string();
    let body = serde_json::json!({ "error": msg, "message": msg, "code": e.code() as i32 });
    let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, body.to_string().into_bytes())
}

fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, EtcdError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| EtcdError::InvalidRequest(e.to_string()))
}

fn encode<T: Serialize>(r: Result<T, EtcdError>) -> Response {
    match r.and_then(|v| serde_json::to_vec(&v).map_err(|e| EtcdError::Internal(e.to_string()))) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error_response(&e),
    }
}

/// The request body, or etcd's answer to one over the transport limit.
fn read_body(svc: &Svc, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, EtcdError> {
    body.map_err(|rejection| {
        // Only the body limit (or a broken connection) rejects raw bytes.
        tracing::debug!(%rejection, "gateway body refused");
        let size = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        EtcdError::MessageTooLarge {
            size,
            limit: svc.transport_limit(),
        }
    })
}

/// Decodes the body, runs `f`, encodes the answer.
async fn unary<Req, Resp, F, Fut>(svc: Svc, headers: HeaderMap, body: Result<Bytes, BytesRejection>, f: F) -> Response
where
    Req: DeserializeOwned + Default,
    Resp: Serialize,
    F: FnOnce(Svc, Req) -> Fut,
    Fut: Future<Output = Result<Resp, EtcdError>>,
{
    let body = match read_body(&svc, &headers, body) {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    match decode::<Req>(&body) {
        Ok(req) => encode(f(svc, req).await),
        Err(e) => error_response(&e),
    }
}

macro_rules! route {
    ($method:ident) => {
        route!(|svc, req| svc.$method(req).await)
    };
    (|$svc:ident, $req:ident $(: $t:ty)?| $body:expr) => {
        post(
            |State(svc): State<Svc>, headers: HeaderMap, body: Result<Bytes, BytesRejection>| async move {
                unary(svc, headers, body, |$svc: Svc, $req $(: $t)?| async move { $body }).await
            },
        )
    };
}

fn v3_routes() -> Router<Svc> {
    Router::new()
        .route("/kv/range", route!(range))
        .route("/kv/put", route!(put))
        .route("/kv/deleterange", route!(delete_range))
        .route("/kv/txn", route!(txn))
        .route("/kv/compaction", route!(compact))
        .route("/lease/grant", route!(lease_grant))
        .route("/lease/revoke", route!(lease_revoke))
        .route("/kv/lease/revoke", route!(lease_revoke))
        .route(
            "/lease/timetolive",
            route!(|svc, req: LeaseTimeToLiveRequest| Ok(svc.lease_time_to_live(&req))),
        )
        .route(
            "/kv/lease/timetolive",
            route!(|svc, req: LeaseTimeToLiveRequest| Ok(svc.lease_time_to_live(&req))),
        )
        .route(
            "/lease/leases",
            route!(|svc, _req: LeaseLeasesRequest| Ok(svc.lease_leases())),
        )
        .route(
            "/kv/lease/leases",
            route!(|svc, _req: LeaseLeasesRequest| Ok(svc.lease_leases())),
        )
        .route("/lease/keepalive", post(keep_alive))
        .route("/watch", post(watch))
        .route(
            "/maintenance/status",
            route!(|svc, _req: StatusRequest| Ok(svc.status())),
        )
        .route(
            "/cluster/member/list",
            route!(|svc, _req: MemberListRequest| Ok(svc.member_list())),
        )
}

/// One streamed message as etcd's gateway writes it: `{"result": …}` and a newline.
fn chunk<T: Serialize>(msg: &T) -> Bytes {
    let mut out = br#"{"result":"#.to_vec();
    serde_json::to_writer(&mut out, msg).expect("api messages serialize");
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn streamed(body: Body) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `POST /v3/lease/keepalive`: the body is one request; the answer is one
/// streamed message, then the stream ends.
async fn keep_alive(State(svc): State<Svc>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match read_body(&svc, &headers, body) {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    match decode::<LeaseKeepAliveRequest>(&body) {
        Ok(req) => {
            let one = chunk(&svc.lease_keep_alive(req.id));
            streamed(Body::from_stream(tokio_stream::once(Ok::<_, Infallible>(one))))
        }
        Err(e) => error_response(&e),
    }
}

/// `POST /v3/watch`: the body is one watch request (normally a create);
/// responses stream until the client goes away.
async fn watch(State(svc): State<Svc>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match read_body(&svc, &headers, body) {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let req = match decode::<WatchRequest>(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let (session, rx) = svc.watch();
    session.handle(req);
    streamed(Body::from_stream(WatchBody { rx, _session: session }))
}

/// The streamed body of a gateway watch; dropping it (the client left)
/// cancels the watchers.
struct WatchBody {
    rx: WatchReceiver,
    _session: WatchSession,
}

impl Stream for WatchBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|r| r.map(|resp| Ok(chunk(&resp))))
    }
}

async fn health(State(svc): State<Svc>) -> Response {
    let fatal = svc.node().fatal().borrow().clone();
    match fatal {
        None => json_response(StatusCode::OK, br#"{"health":"true"}"#.to_vec()),
        Some(_) => json_response(StatusCode::SERVICE_UNAVAILABLE, br#"{"health":"false"}"#.to_vec()),
    }
}

async fn version() -> Response {
    let body = serde_json::json!({ "etcdserver": ETCD_API_VERSION, "etcdcluster": ETCD_CLUSTER_VERSION });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// The largest JSON body read: base64 and JSON make a body about 4/3 of
/// the message, so this leaves room for every message core may judge.
fn body_limit(transport_limit: usize) -> usize {
    transport_limit * 3
}

/// The HTTP routes of the client port.
pub fn router(svc: Svc) -> Router {
    let limit = body_limit(svc.transport_limit());
    Router::new()
        .nest("/v3", v3_routes())
        .nest("/v3beta", v3_routes())
        .route("/health", get(health))
        .route("/version", get(version))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(svc)
}
