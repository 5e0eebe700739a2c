//! etcd's v2 HTTP API on the client port: `/v2/keys/…` (form-encoded
//! writes, `wait=true` long polls), `/v2/stats/{self,leader,store}`,
//! `/v2/members` and `/v2/machines`. Requests are decoded here and answered
//! in etcd's JSON and headers; the store and its rules are
//! `concord_core::v2`, reached through the service.

mod encode;
mod request;

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use concord_core::api::concordpb::v2_request::Method as V2Method;
use concord_core::api::concordpb::V2Request;
use concord_core::api::error::EtcdError;
use concord_core::service::{Caller, EtcdService, V2Credentials};
use concord_core::v2::{Code, Event, V2Error, Watch, WatchSpec};

use crate::peer::PeerInfo;
use encode::{error_body, event_body, go_duration, go_time};
use request::KeyRequest;

type Svc = Arc<EtcdService>;

/// When this member started and when it last saw a new leader, for
/// `/v2/stats/self`.
#[derive(Debug)]
pub struct V2Info {
    started: SystemTime,
    leader: std::sync::Mutex<(u64, SystemTime)>,
}

impl V2Info {
    /// Starts the clock.
    pub fn new() -> Arc<V2Info> {
        let now = SystemTime::now();
        Arc::new(V2Info {
            started: now,
            leader: std::sync::Mutex::new((0, now)),
        })
    }

    /// Notes the leader `svc` follows now (called periodically).
    pub fn note_leader(&self, svc: &EtcdService) {
        let leader = svc.node().state().leader();
        let mut seen = self.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.0 != leader {
            *seen = (leader, SystemTime::now());
        }
    }
}

/// The v2 routes; the keys API only if `keys` (`--enable-v2`).
pub fn routes(svc: Svc, keys: bool, info: Arc<V2Info>) -> Router<Svc> {
    let mut r = Router::new()
        .route("/v2/stats/self", get(stats_self))
        .route("/v2/stats/leader", get(stats_leader))
        .route("/v2/stats/store", get(stats_store))
        .route("/v2/members", get(members))
        .route("/v2/members/leader", get(members_leader))
        .route("/v2/machines", get(machines));
    if keys {
        r = r
            .route("/v2/keys", any(keys_api))
            .route("/v2/keys/", any(keys_api))
            .route("/v2/keys/{*path}", any(keys_api));
    }
    r.layer(axum::middleware::from_fn_with_state(svc, cluster_id))
        .layer(Extension(info))
}

/// Every v2 answer names the cluster (`X-Etcd-Cluster-Id`), as etcd's do.
async fn cluster_id(State(svc): State<Svc>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    // Go's router answers these before etcd's handler runs.
    if matches!(
        resp.status(),
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::MOVED_PERMANENTLY
    ) {
        return resp;
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{:x}", svc.node().state().cluster_id)) {
        resp.headers_mut().insert("x-etcd-cluster-id", v);
    }
    resp
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// etcd's answer to a v2 error: its status, `X-Etcd-Index`, and the body.
fn v2_error(e: &V2Error) -> Response {
    let mut r = json(
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
        error_body(e),
    );
    if e.code == Code::Unauthorized {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"etcd\""),
        );
    }
    r.headers_mut().insert("x-etcd-index", HeaderValue::from(e.index));
    r
}

/// What a failure of the write path (no leader, a timeout, a request too
/// large) is in v2: etcd answers "Raft Internal Error" with the reason.
fn etcd_error(e: &EtcdError) -> Response {
    v2_error(&V2Error::request(Code::RaftInternal, e.to_string()))
}

fn position_headers(svc: &EtcdService, etcd_index: u64, h: &mut HeaderMap) {
    let (_, raft_index, term) = svc.v2_position();
    h.insert("x-etcd-index", HeaderValue::from(etcd_index));
    h.insert("x-raft-index", HeaderValue::from(raft_index));
    h.insert("x-raft-term", HeaderValue::from(term));
}

fn event_response(svc: &EtcdService, e: &Event, omit_nodes: bool) -> Response {
    let status = if e.is_created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut r = json(status, event_body(e, omit_nodes));
    position_headers(svc, e.etcd_index, r.headers_mut());
    r
}

/// The credentials of a v2 request: HTTP Basic (a v3 user), else the v3
/// token in `Authorization` as the JSON gateway takes it.
fn credentials(headers: &HeaderMap, peer: Option<&PeerInfo>) -> (Caller, V2Credentials) {
    use base64::Engine;
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let addr = peer.map(|p| p.addr.ip());
    if let Some(b) = auth.and_then(|a| a.strip_prefix("Basic ")) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            let creds = V2Credentials::Basic {
                user: user.to_string(),
                password: password.to_string(),
            };
            return (Caller::client(None, None, addr), creds);
        }
    }
    (
        Caller::client(auth.map(str::to_string), None, addr),
        V2Credentials::Caller,
    )
}

/// `/v2/keys/…`.
async fn keys_api(State(svc): State<Svc>, req: axum::extract::Request) -> Response {
    let method = req.method().clone();
    if ![Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::DELETE].contains(&method) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD, POST, PUT, DELETE")],
            "Method Not Allowed",
        )
            .into_response();
    }
    if let Some(clean) = request::unclean(req.uri()) {
        return redirect(&clean);
    }
    let (parts, body) = req.into_parts();
    let (caller, creds) = credentials(&parts.headers, parts.extensions.get::<PeerInfo>());
    let limit = svc.transport_limit();
    let Ok(body) = tokio::time::timeout(crate::gateway::BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await else {
        return etcd_error(&EtcdError::Timeout);
    };
    let body = match body {
        Ok(b) => b,
        Err(_) => {
            return etcd_error(&EtcdError::MessageTooLarge {
                size: parts
                    .headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0),
                limit,
            })
        }
    };
    let kr = match KeyRequest::parse(&parts.method, &parts.uri, &parts.headers, &body) {
        Ok(r) => r,
        Err(e) => return v2_error(&e),
    };
    let checked_at = match svc.v2_authorize(&caller, creds).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "v2 request refused");
            return v2_error(&V2Error::request(Code::Unauthorized, "Insufficient credentials"));
        }
    };
    if method == Method::GET || method == Method::HEAD {
        return if kr.wait {
            wait(svc, kr).await
        } else {
            read(svc, kr).await
        };
    }
    write(svc, kr, method, checked_at).await
}

/// Go's router answer to a path that is not clean (`//`, `.`, `..`): a
/// permanent redirect to the clean one.
fn redirect(to: &str) -> Response {
    let body = format!("<a href=\"{to}\">Moved Permanently</a>.\n\n");
    let mut r = (
        StatusCode::MOVED_PERMANENTLY,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn read(svc: Svc, kr: KeyRequest) -> Response {
    match svc.v2_get(&kr.path, kr.recursive, kr.quorum).await {
        Ok(Ok(e)) => event_response(&svc, &e, false),
        Ok(Err(e)) => v2_error(&e),
        Err(e) => etcd_error(&e),
    }
}

async fn write(svc: Svc, kr: KeyRequest, method: Method, checked_at: u64) -> Response {
    let mut req = V2Request {
        path: kr.path.clone(),
        value: kr.value.clone().unwrap_or_default(),
        dir: kr.dir,
        refresh: kr.refresh,
        prev_value: kr.prev_value.clone(),
        prev_index: kr.prev_index,
        recursive: kr.recursive,
        ..Default::default()
    };
    let conditional = kr.prev_index > 0 || kr.prev_value.is_some();
    let m = if method == Method::POST {
        V2Method::CreateInOrder
    } else if method == Method::DELETE {
        if conditional {
            V2Method::CompareAndDelete
        } else {
            V2Method::Delete
        }
    } else {
        match kr.prev_exist {
            Some(true) if conditional => V2Method::CompareAndSwap,
            Some(true) => V2Method::Update,
            Some(false) => V2Method::Create,
            None if conditional => V2Method::CompareAndSwap,
            None => V2Method::Set,
        }
    };
    req.set_method(m);
    match svc.v2_write(req, kr.ttl, checked_at).await {
        Ok(Ok(e)) => event_response(&svc, &e, kr.no_value_on_success),
        Ok(Err(e)) => v2_error(&e),
        Err(e) => etcd_error(&e),
    }
}

/// `wait=true`: the answer if the event already happened; otherwise the
/// headers now and the event when it comes (or, with `stream=true`, every
/// event as it comes). A client that goes away drops its wait.
async fn wait(svc: Svc, kr: KeyRequest) -> Response {
    let spec = WatchSpec {
        key: kr.path.clone(),
        recursive: kr.recursive,
        since: kr.wait_index,
    };
    let started_at = svc.v2_position().0;
    let first = match svc.v2_watch(spec.clone()) {
        Ok(w) => w,
        Err(e) => return v2_error(&e),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    position_headers(&svc, started_at, &mut headers);
    if !kr.stream {
        let body = match first {
            Watch::Ready(e) => Body::from(event_body(&e, false)),
            Watch::Waiting(rx) => Body::from_stream(futures_util::stream::once(async move {
                Ok::<_, std::convert::Infallible>(Bytes::from(answer(rx.await)))
            })),
        };
        return (StatusCode::OK, headers, body).into_response();
    }
    // stream=true: one event after another, each from the index after the
    // last one sent, until the client leaves.
    let events = futures_util::stream::unfold((svc, spec, Some(first)), |(svc, mut spec, next)| async move {
        let w = match next {
            Some(w) => w,
            None => match svc.v2_watch(spec.clone()) {
                Ok(w) => w,
                Err(e) => return Some((Ok(Bytes::from(error_body(&e))), (svc, spec, None))),
            },
        };
        let e = match w {
            Watch::Ready(e) => e,
            Watch::Waiting(rx) => match rx.await {
                Ok(e) => e,
                Err(_) => return None,
            },
        };
        spec.since = e.index() + 1;
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(event_body(&e, false))),
            (svc, spec, None),
        ))
    });
    (StatusCode::OK, headers, Body::from_stream(events)).into_response()
}

/// The body of a long poll once it ends: the event, or etcd's error for a
/// wait the store dropped (its state was replaced by a snapshot).
fn answer(r: Result<Arc<Event>, tokio::sync::oneshot::error::RecvError>) -> Vec<u8> {
    match r {
        Ok(e) => event_body(&e, false),
        Err(_) => error_body(&V2Error::request(Code::WatcherCleared, "")),
    }
}

async fn stats_store(State(svc): State<Svc>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let body = svc.with_v2(|s| {
        let st = &s.stats;
        serde_json::json!({
            "getsSuccess": st.gets_success.load(Relaxed),
            "getsFail": st.gets_fail.load(Relaxed),
            "setsSuccess": st.sets_success.load(Relaxed),
            "setsFail": st.sets_fail.load(Relaxed),
            "deleteSuccess": st.delete_success.load(Relaxed),
            "deleteFail": st.delete_fail.load(Relaxed),
            "updateSuccess": st.update_success.load(Relaxed),
            "updateFail": st.update_fail.load(Relaxed),
            "createSuccess": st.create_success.load(Relaxed),
            "createFail": st.create_fail.load(Relaxed),
            "compareAndSwapSuccess": st.compare_and_swap_success.load(Relaxed),
            "compareAndSwapFail": st.compare_and_swap_fail.load(Relaxed),
            "compareAndDeleteSuccess": st.compare_and_delete_success.load(Relaxed),
            "compareAndDeleteFail": st.compare_and_delete_fail.load(Relaxed),
            "expireCount": st.expire_count.load(Relaxed),
            "watchers": s.waiting(),
        })
    });
    json(StatusCode::OK, body.to_string().into_bytes())
}

async fn stats_self(State(svc): State<Svc>, Extension(info): Extension<Arc<V2Info>>) -> Response {
    info.note_leader(&svc);
    let state = svc.node().state();
    let (leader, since) = *info.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let uptime = SystemTime::now().duration_since(since).unwrap_or_default();
    let body = serde_json::json!({
        "name": svc.config().name,
        "id": format!("{:x}", state.member_id),
        "state": if svc.node().is_leader() { "StateLeader" } else { "StateFollower" },
        "startTime": go_time(info.started),
        "leaderInfo": {
            "leader": format!("{leader:x}"),
            "uptime": go_duration(uptime),
            "startTime": go_time(since),
        },
        "recvAppendRequestCnt": concord_core::metrics::APPENDS_RECEIVED.get(),
        "sendAppendRequestCnt": concord_core::metrics::APPENDS_SENT.get(),
    });
    json(StatusCode::OK, body.to_string().into_bytes())
}

async fn stats_leader(State(svc): State<Svc>) -> Response {
    if !svc.node().is_leader() {
        return json(StatusCode::FORBIDDEN, br#"{"message":"not current leader"}"#.to_vec());
    }
    let me = svc.node().state().member_id;
    let members: Vec<u64> = svc
        .member_list()
        .members
        .iter()
        .map(|m| m.id)
        .filter(|&id| id != me)
        .collect();
    let stats = crate::metrics::follower_stats();
    let mut followers = serde_json::Map::new();
    for id in members {
        let f = stats.get(&id).cloned().unwrap_or_default();
        let avg = if f.count > 0 { f.sum_ms / f.count as f64 } else { 0.0 };
        let var = if f.count > 0 {
            (f.sum_sq_ms / f.count as f64 - avg * avg).max(0.0)
        } else {
            0.0
        };
        followers.insert(
            format!("{id:x}"),
            serde_json::json!({
                "latency": {
                    "current": f.current_ms,
                    "average": avg,
                    "standardDeviation": var.sqrt(),
                    "minimum": f.min_ms,
                    "maximum": f.max_ms,
                },
                "counts": { "fail": f.fail, "success": f.success },
            }),
        );
    }
    let body = serde_json::json!({ "leader": format!("{me:x}"), "followers": followers });
    json(StatusCode::OK, body.to_string().into_bytes())
}

fn member_json(m: &concord_core::api::etcdserverpb::Member) -> serde_json::Value {
    serde_json::json!({
        "id": format!("{:x}", m.id),
        "name": m.name,
        "peerURLs": m.peer_ur_ls,
        "clientURLs": m.client_ur_ls,
    })
}

/// `/v2/members/leader`: the member that leads, or 503 during an election.
async fn members_leader(State(svc): State<Svc>) -> Response {
    let leader = svc.node().state().leader();
    match svc.member_list().members.iter().find(|m| m.id == leader && leader != 0) {
        Some(m) => json(StatusCode::OK, member_json(m).to_string().into_bytes()),
        None => json(
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"message":"During Leader Election"}"#.to_vec(),
        ),
    }
}

async fn members(State(svc): State<Svc>) -> Response {
    let list: Vec<serde_json::Value> = svc.member_list().members.iter().map(member_json).collect();
    json(
        StatusCode::OK,
        serde_json::json!({ "members": list }).to_string().into_bytes(),
    )
}

/// `/v2/machines`: every member's client URLs, comma-separated.
async fn machines(State(svc): State<Svc>) -> Response {
    let urls: Vec<String> = svc
        .member_list()
        .members
        .into_iter()
        .flat_map(|m| m.client_ur_ls)
        .collect();
    (StatusCode::OK, urls.join(", ")).into_response()
}
