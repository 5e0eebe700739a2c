//! The JSON gateway: `POST /v3/<service>/<method>` (and `/v3beta/…`, which
//! older clients call), `GET /health`, `GET /version`. Bodies are the proto
//! messages in JSON (pbjson: base64 bytes, int64 as strings, proto field
//! names, camelCase accepted); errors are `{"error", "message", "code"}`
//! with the HTTP status grpc-gateway gives the gRPC code.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use concord_core::api::error::EtcdError;
use concord_core::api::etcdserverpb::{MemberListRequest, StatusRequest};
use concord_core::service::{EtcdService, ETCD_API_VERSION, ETCD_CLUSTER_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;

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

/// Decodes the body, runs `f`, encodes the answer.
async fn unary<Req, Resp, F, Fut>(svc: Svc, headers: HeaderMap, body: Result<Bytes, BytesRejection>, f: F) -> Response
where
    Req: DeserializeOwned + Default,
    Resp: Serialize,
    F: FnOnce(Svc, Req) -> Fut,
    Fut: Future<Output = Result<Resp, EtcdError>>,
{
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            // Only the body limit (or a broken connection) rejects raw bytes.
            tracing::debug!(%rejection, "gateway body refused");
            let size = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0);
            let limit = svc.transport_limit();
            return error_response(&EtcdError::MessageTooLarge { size, limit });
        }
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
        .route(
            "/maintenance/status",
            route!(|svc, _req: StatusRequest| Ok(svc.status())),
        )
        .route(
            "/cluster/member/list",
            route!(|svc, _req: MemberListRequest| Ok(svc.member_list())),
        )
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
