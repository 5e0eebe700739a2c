//! The JSON gateway: `POST /v3/<service>/<method>` (and `/v3beta/…`, which
//! older clients call), `GET /health`, `GET /version`; the streaming calls
//! also over WebSocket (`websocket.rs`). Bodies are the proto
//! messages in JSON (pbjson: base64 bytes, int64 as strings, proto field
//! names, camelCase accepted); errors are `{"error", "message", "code"}`
//! with the HTTP status grpc-gateway gives the gRPC code.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use concord_core::api::error::EtcdError;
use concord_core::api::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleGetRequest, AuthRoleListRequest, AuthStatusRequest,
    AuthUserGetRequest, AuthUserListRequest, DefragmentRequest, HashRequest, LeaseKeepAliveRequest, LeaseLeasesRequest,
    LeaseTimeToLiveRequest, MemberListRequest, StatusRequest, WatchRequest,
};
use concord_core::service::{Caller, EtcdService, WatchSession, ETCD_API_VERSION, ETCD_CLUSTER_VERSION};
use concord_core::watch::WatchReceiver;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_stream::{Stream, StreamExt};

use crate::peer::PeerInfo;
use crate::websocket::{self, AllowedOrigins};

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

pub(crate) fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, EtcdError> {
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

/// How long a client may take to send a request's body.
pub(crate) const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The caller and the request body, or etcd's answer to a body over the
/// transport limit (or one that does not arrive within [`BODY_TIMEOUT`]).
async fn read_request(svc: &Svc, req: axum::extract::Request) -> Result<(Caller, Bytes), EtcdError> {
    let (parts, body) = req.into_parts();
    let who = caller(&parts.headers, parts.extensions.get::<PeerInfo>());
    let Ok(body) = tokio::time::timeout(
        BODY_TIMEOUT,
        axum::body::to_bytes(body, body_limit(svc.transport_limit())),
    )
    .await
    else {
        tracing::debug!("gateway body not received in time");
        return Err(EtcdError::Timeout);
    };
    let headers = &parts.headers;
    let body = body.map_err(|rejection| {
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
    })?;
    Ok((who, body))
}

/// Who sent the request: the token from the `Authorization` header (as
/// etcd's gateway takes it, no "Bearer"), and the source address. Client
/// certificate names apply to gRPC only, as in etcd.
fn caller(headers: &HeaderMap, peer: Option<&PeerInfo>) -> Caller {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Caller::client(token, None, peer.map(|p| p.addr.ip()))
}

/// Decodes the body, runs `f`, encodes the answer.
async fn unary<Req, Resp, F, Fut>(svc: Svc, req: axum::extract::Request, f: F) -> Response
where
    Req: DeserializeOwned + Default,
    Resp: Serialize,
    F: FnOnce(Svc, Caller, Req) -> Fut,
    Fut: Future<Output = Result<Resp, EtcdError>>,
{
    let (who, body) = match read_request(&svc, req).await {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
    match decode::<Req>(&body) {
        Ok(req) => encode(f(svc, who, req).await),
        Err(e) => error_response(&e),
    }
}

macro_rules! route {
    ($method:ident) => {
        route!(|svc, c, req| svc.$method(&c, req).await)
    };
    (|$svc:ident, $c:pat_param, $req:ident $(: $t:ty)?| $body:expr) => {
        post(
            |State(svc): State<Svc>, req: axum::extract::Request| async move {
                unary(svc, req, |$svc: Svc, $c: Caller, $req $(: $t)?| async move { $body }).await
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
        .route("/lease/grant", route!(|svc, _, req| svc.lease_grant(req).await))
        .route("/lease/revoke", route!(lease_revoke))
        .route("/kv/lease/revoke", route!(lease_revoke))
        .route(
            "/lease/timetolive",
            route!(|svc, c, req: LeaseTimeToLiveRequest| svc.lease_time_to_live(&c, &req).await),
        )
        .route(
            "/kv/lease/timetolive",
            route!(|svc, c, req: LeaseTimeToLiveRequest| svc.lease_time_to_live(&c, &req).await),
        )
        .route(
            "/lease/leases",
            route!(|svc, _, _req: LeaseLeasesRequest| Ok(svc.lease_leases())),
        )
        .route(
            "/kv/lease/leases",
            route!(|svc, _, _req: LeaseLeasesRequest| Ok(svc.lease_leases())),
        )
        .route("/lease/keepalive", post(keep_alive).get(websocket::keep_alive))
        .route("/lock/lock", route!(lock))
        .route("/lock/unlock", route!(unlock))
        .route("/election/campaign", route!(campaign))
        .route("/election/proclaim", route!(proclaim))
        .route("/election/leader", route!(leader))
        .route("/election/resign", route!(resign))
        .route("/election/observe", post(observe))
        .route(
            "/auth/enable",
            route!(|svc, c, _req: AuthEnableRequest| svc.auth_enable(&c).await),
        )
        .route(
            "/auth/disable",
            route!(|svc, c, _req: AuthDisableRequest| svc.auth_disable(&c).await),
        )
        .route(
            "/auth/status",
            route!(|svc, _, _req: AuthStatusRequest| Ok(svc.auth_status())),
        )
        .route("/auth/authenticate", route!(authenticate))
        .route("/auth/user/add", route!(user_add))
        .route(
            "/auth/user/get",
            route!(|svc, c, req: AuthUserGetRequest| svc.user_get(&c, &req)),
        )
        .route(
            "/auth/user/list",
            route!(|svc, c, _req: AuthUserListRequest| svc.user_list(&c)),
        )
        .route("/auth/user/delete", route!(user_delete))
        .route("/auth/user/changepw", route!(user_change_password))
        .route("/auth/user/grant", route!(user_grant_role))
        .route("/auth/user/revoke", route!(user_revoke_role))
        .route("/auth/role/add", route!(role_add))
        .route(
            "/auth/role/get",
            route!(|svc, c, req: AuthRoleGetRequest| svc.role_get(&c, &req)),
        )
        .route(
            "/auth/role/list",
            route!(|svc, c, _req: AuthRoleListRequest| svc.role_list(&c)),
        )
        .route("/auth/role/delete", route!(role_delete))
        .route("/auth/role/grant", route!(role_grant_permission))
        .route("/auth/role/revoke", route!(role_revoke_permission))
        .route("/watch", post(watch).get(websocket::watch))
        .route(
            "/maintenance/status",
            route!(|svc, _, _req: StatusRequest| Ok(svc.status())),
        )
        .route("/maintenance/transfer-leadership", route!(move_leader))
        .route("/maintenance/alarm", route!(alarm))
        .route(
            "/maintenance/defragment",
            route!(|svc, c, _req: DefragmentRequest| svc.defragment(&c).await),
        )
        // etcd 3.4's gateway serves Hash here; HashKV has no path of its own there.
        .route(
            "/maintenance/hash",
            route!(|svc, c, _req: HashRequest| svc.hash(&c).await),
        )
        .route("/maintenance/hashkv", route!(hash_kv))
        .route("/maintenance/snapshot", post(snapshot))
        .route("/cluster/member/add", route!(member_add))
        .route("/cluster/member/remove", route!(member_remove))
        .route("/cluster/member/update", route!(member_update))
        .route("/cluster/member/promote", route!(member_promote))
        .route(
            "/cluster/member/list",
            route!(|svc, _, _req: MemberListRequest| Ok(svc.member_list())),
        )
}

/// One streamed message as etcd's gateway writes it: `{"result": …}` and a newline.
pub(crate) fn chunk<T: Serialize>(msg: &T) -> Bytes {
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
async fn keep_alive(State(svc): State<Svc>, req: axum::extract::Request) -> Response {
    let (_, body) = match read_request(&svc, req).await {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
    match decode::<LeaseKeepAliveRequest>(&body) {
        Ok(req) => {
            let resp = match svc.lease_keep_alive(req.id).await {
                Ok(r) => r,
                Err(e) => return error_response(&e),
            };
            let one = chunk(&resp);
            streamed(Body::from_stream(tokio_stream::once(Ok::<_, Infallible>(one))))
        }
        Err(e) => error_response(&e),
    }
}

/// One error line of a streamed answer, as grpc-gateway writes it.
pub(crate) fn stream_error(e: &EtcdError) -> Bytes {
    let code = e.code();
    let body = serde_json::json!({ "error": {
        "grpc_code": code as i32,
        "http_code": code.http_status(),
        "message": e.to_string(),
        "http_status": StatusCode::from_u16(code.http_status()).ok().and_then(|s| s.canonical_reason()).unwrap_or(""),
    }});
    let mut out = body.to_string().into_bytes();
    out.push(b'\n');
    Bytes::from(out)
}

/// A streamed answer: one `{"result": …}` line per message, an error line
/// if the stream fails; or the error if it could not start.
fn stream_answers<T: Serialize + Send + 'static>(
    started: Result<tokio::sync::mpsc::Receiver<Result<T, EtcdError>>, EtcdError>,
) -> Response {
    match started {
        Ok(rx) => {
            let lines = tokio_stream::wrappers::ReceiverStream::new(rx).map(|r| {
                Ok::<_, Infallible>(match r {
                    Ok(resp) => chunk(&resp),
                    Err(e) => stream_error(&e),
                })
            });
            streamed(Body::from_stream(lines))
        }
        Err(e) => error_response(&e),
    }
}

/// `POST /v3/election/observe`: the leader now and each change after,
/// one `{"result": …}` per line, until the client goes away.
async fn observe(State(svc): State<Svc>, req: axum::extract::Request) -> Response {
    let (who, body) = match read_request(&svc, req).await {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
    let req = match decode::<concord_core::api::v3electionpb::LeaderRequest>(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    stream_answers(svc.observe(&who, req))
}

/// `POST /v3/maintenance/snapshot`: the snapshot file's bytes, one
/// `{"result": …}` per chunk, then the stream ends.
async fn snapshot(State(svc): State<Svc>, req: axum::extract::Request) -> Response {
    let (who, _) = match read_request(&svc, req).await {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
    stream_answers(svc.snapshot(&who))
}

/// `POST /v3/watch`: the body is one watch request (normally a create);
/// responses stream until the client goes away.
async fn watch(State(svc): State<Svc>, req: axum::extract::Request) -> Response {
    let (who, body) = match read_request(&svc, req).await {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
    let req = match decode::<WatchRequest>(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let (session, rx) = match svc.watch(who) {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
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

async fn version() -> Response {
    let body = serde_json::json!({ "etcdserver": ETCD_API_VERSION, "etcdcluster": ETCD_CLUSTER_VERSION });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// The largest JSON body read: base64 and JSON make a body about 4/3 of
/// the message, so this leaves room for every message core may judge.
pub(crate) fn body_limit(transport_limit: usize) -> usize {
    transport_limit * 3
}

/// The routes of a `--listen-metrics-urls` listener: the probes.
pub fn probes_router(svc: Svc) -> Router {
    crate::health::routes().with_state(svc).fallback(not_found)
}

/// What a path nothing serves answers, as etcd's client port does: a gRPC
/// call gets `Unimplemented` (grpc-status 12), a `/v3/` path the JSON
/// gateway's `404 Not Found`, any other path Go's `404 page not found`.
pub async fn not_found(req: axum::extract::Request) -> Response {
    let grpc = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/grpc"));
    if grpc {
        return (
            StatusCode::OK,
            [
                (axum::http::header::CONTENT_TYPE, "application/grpc"),
                (axum::http::HeaderName::from_static("grpc-status"), "12"),
            ],
        )
            .into_response();
    }
    let body = if req.uri().path().starts_with("/v3/") || req.uri().path().starts_with("/v3beta/") {
        "Not Found\n"
    } else {
        "404 page not found\n"
    };
    (
        StatusCode::NOT_FOUND,
        [
            (axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (axum::http::HeaderName::from_static("x-content-type-options"), "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The HTTP routes of the client port; `cors`: the origins `--cors`
/// allows (WebSocket upgrades check them themselves).
pub fn router(svc: Svc, cors: &[String]) -> Router {
    let limit = body_limit(svc.transport_limit());
    let origins = AllowedOrigins(Arc::new(cors.to_vec()));
    Router::new()
        .nest("/v3", v3_routes())
        .nest("/v3beta", v3_routes())
        .route_layer(axum::middleware::from_fn(crate::metrics::count_gateway))
        .merge(crate::health::routes())
        .route("/version", get(version))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(origins))
        .with_state(svc)
}

#[cfg(test)]
mod tests {
    use super::decode;
    use concord_core::api::etcdserverpb::{
        AuthenticateRequest, LeaseGrantRequest, PutRequest, RangeRequest, TxnRequest, WatchRequest,
    };

    /// Any body decodes to a request or an error: never a panic.
    fn all(body: &[u8]) {
        let _ = decode::<RangeRequest>(body);
        let _ = decode::<PutRequest>(body);
        let _ = decode::<TxnRequest>(body);
        let _ = decode::<WatchRequest>(body);
        let _ = decode::<LeaseGrantRequest>(body);
        let _ = decode::<AuthenticateRequest>(body);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            all(&body);
        }

        /// Bodies shaped like the gateway's JSON (field names, base64,
        /// int64 strings, nesting), with the odd value out of place.
        #[test]
        fn json_shaped_bodies_decode_or_fail_cleanly(body in r#"\{("(key|range_end|value|lease|limit|revision|sort_order|compare|success|failure|request_put|request_range|create_request|start_revision|filters|TTL|ID|name|password|target|result)":(-?[0-9]{1,22}|"[A-Za-z0-9+/=_-]{0,12}"|true|null|\[[^\]]{0,20}\]|\{[^}]{0,30}\}),?){0,6}\}"#) {
            all(body.as_bytes());
        }
    }
}
