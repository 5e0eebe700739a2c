//! The gateway's streaming calls over WebSocket, as etcd's gateway serves
//! them: `GET /v3/watch` and `GET /v3/lease/keepalive` with an upgrade.
//! Each text message from the client is one request (JSON, as in the POST
//! body); each answer is one text message `{"result": …}` (or an
//! `{"error": …}`), without the newline the HTTP stream puts between them.
//!
//! Over a socket a watch is the whole bidirectional stream (create, cancel,
//! progress requests on one socket) and a lease is kept alive by sending
//! its ID again and again: what a browser cannot do over one `fetch`.
//!
//! Browsers cannot set `Authorization` on a WebSocket: the token may also
//! come as the subprotocols `Bearer, <token>` (the convention of etcd's
//! gateway proxy); the server then answers with the `Bearer` protocol. A
//! page's `Origin` must be one `--cors` allows.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use concord_core::api::error::EtcdError;
use concord_core::api::etcdserverpb::{LeaseKeepAliveRequest, WatchRequest};
use concord_core::service::{Caller, EtcdService, WatchSession};
use concord_core::watch::WatchReceiver;
use futures_util::{SinkExt, StreamExt};

use crate::gateway::{body_limit, chunk, decode, error_response, stream_error};
use crate::peer::PeerInfo;

type Svc = Arc<EtcdService>;

/// The origins `--cors` allows (`*`: any), for the upgrade's `Origin` check.
#[derive(Clone, Debug)]
pub struct AllowedOrigins(pub Arc<Vec<String>>);

impl AllowedOrigins {
    /// A request without `Origin` (not a browser) or from an allowed origin.
    fn admit(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return true;
        };
        self.0.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

/// The caller of an upgrade: its token from `Authorization`, else from
/// the subprotocols `Bearer, <token>`; and whether `Bearer` was offered.
fn caller(headers: &HeaderMap, peer: Option<&PeerInfo>) -> (Caller, bool) {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let bearer = offered.first().is_some_and(|p| p.eq_ignore_ascii_case("bearer"));
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| bearer.then(|| offered.get(1).map(|t| t.to_string())).flatten());
    (Caller::client(token, None, peer.map(|p| p.addr.ip())), bearer)
}

fn origin_refused() -> Response {
    (StatusCode::FORBIDDEN, "origin not allowed (see --cors)\n").into_response()
}

/// What both upgrades need: the request's caller, and the upgrade with its
/// limits and protocol.
struct Upgrade {
    ws: WebSocketUpgrade,
    who: Caller,
}

impl Upgrade {
    fn new(
        svc: &Svc,
        origins: &AllowedOrigins,
        peer: Option<&PeerInfo>,
        headers: &HeaderMap,
        ws: WebSocketUpgrade,
    ) -> Option<Upgrade> {
        // `None`: a page whose origin `--cors` does not allow.
        if !origins.admit(headers) {
            return None;
        }
        let (who, bearer) = caller(headers, peer);
        let limit = body_limit(svc.transport_limit());
        let ws = ws.max_message_size(limit).max_frame_size(limit);
        let ws = if bearer { ws.protocols(["Bearer"]) } else { ws };
        Some(Upgrade { ws, who })
    }
}

/// `GET /v3/watch` upgraded: the watch stream over a socket.
pub async fn watch(
    State(svc): State<Svc>,
    Extension(origins): Extension<AllowedOrigins>,
    peer: Option<Extension<PeerInfo>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(up) = Upgrade::new(&svc, &origins, peer.as_deref(), &headers, ws) else {
        return origin_refused();
    };
    let (session, rx) = match svc.watch(up.who) {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
    up.ws.on_upgrade(move |socket| run_watch(socket, session, rx))
}

/// A text frame of one answer line (without its newline).
fn frame(line: axum::body::Bytes) -> Message {
    let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned();
    Message::Text(text.into())
}

/// The request carried by a client message; `None`: not a request (ping,
/// pong) or the end (close).
fn request<T: serde::de::DeserializeOwned + Default>(m: Message) -> Option<Option<Result<T, EtcdError>>> {
    match m {
        Message::Text(t) => Some(Some(decode(t.as_bytes()))),
        Message::Binary(b) => Some(Some(decode(&b))),
        Message::Ping(_) | Message::Pong(_) => Some(None),
        Message::Close(_) => None,
    }
}

async fn run_watch(socket: WebSocket, session: WatchSession, mut rx: WatchReceiver) {
    let (mut out, mut incoming) = socket.split();
    loop {
        tokio::select! {
            answer = std::future::poll_fn(|cx| rx.poll_recv(cx)) => {
                let Some(resp) = answer else { break };
                if out.send(frame(chunk(&resp))).await.is_err() {
                    break;
                }
            }
            msg = incoming.next() => {
                let Some(Ok(msg)) = msg else { break };
                match request::<WatchRequest>(msg) {
                    None => break,
                    Some(None) => {}
                    Some(Some(Ok(req))) => session.handle(req),
                    Some(Some(Err(e))) => {
                        let _ = out.send(frame(stream_error(&e))).await;
                        break;
                    }
                }
            }
        }
    }
    let _ = out.close().await;
    // Dropping the session cancels its watchers.
    drop(session);
}

/// `GET /v3/lease/keepalive` upgraded: each `{"ID": …}` sent refreshes
/// that lease and is answered with its TTL (as over gRPC, no token needed).
pub async fn keep_alive(
    State(svc): State<Svc>,
    Extension(origins): Extension<AllowedOrigins>,
    peer: Option<Extension<PeerInfo>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    match Upgrade::new(&svc, &origins, peer.as_deref(), &headers, ws) {
        Some(up) => up.ws.on_upgrade(move |socket| run_keep_alive(socket, svc)),
        None => origin_refused(),
    }
}

async fn run_keep_alive(socket: WebSocket, svc: Svc) {
    let (mut out, mut incoming) = socket.split();
    while let Some(Ok(msg)) = incoming.next().await {
        let answer = match request::<LeaseKeepAliveRequest>(msg) {
            None => break,
            Some(None) => continue,
            Some(Some(Ok(req))) => svc.lease_keep_alive(req.id).await,
            Some(Some(Err(e))) => Err(e),
        };
        let (line, last) = match answer {
            Ok(resp) => (chunk(&resp), false),
            Err(e) => (stream_error(&e), true),
        };
        if out.send(frame(line)).await.is_err() || last {
            break;
        }
    }
    let _ = out.close().await;
}
