//! The peer port: raft messages between members and keep-alives forwarded
//! to the leader, over HTTP (`POST /raft/message`, `POST /raft/keepalive`).
//!
//! Each peer has a sender task with its own queue: the raft thread never
//! waits on the network. Messages queued together go in one request, as
//! length-prefixed frames. A failed send is reported to raft, which then
//! probes the peer gently until it answers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use concord_core::api::error::EtcdError;
use concord_core::api::etcdserverpb::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use concord_core::raft::Transport;
use concord_core::service::{EtcdService, Forwarder};
use tokio::sync::mpsc;

/// Most messages in one request.
const BATCH: usize = 256;

type Svc = Arc<EtcdService>;

/// Raft messages to other members over HTTP.
pub struct HttpTransport {
    queues: HashMap<u64, mpsc::UnboundedSender<(Vec<u8>, bool)>>,
}

impl HttpTransport {
    /// Starts one sender task per peer (`id -> peer URL`). `svc` is filled
    /// in once the member runs; failures are reported to its raft node.
    pub fn new(peers: &HashMap<u64, String>, svc: Arc<OnceLock<Svc>>) -> HttpTransport {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_millis(500))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client can be built");
        let mut queues = HashMap::new();
        for (&id, url) in peers {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.insert(id, tx);
            tokio::spawn(send_loop(
                id,
                format!("{}/raft/message", url.trim_end_matches('/')),
                client.clone(),
                rx,
                Arc::clone(&svc),
            ));
        }
        HttpTransport { queues }
    }
}

impl Transport for HttpTransport {
    fn send(&self, to: u64, msg: Vec<u8>, snapshot: bool) {
        if let Some(q) = self.queues.get(&to) {
            let _ = q.send((msg, snapshot));
        }
    }
}

async fn send_loop(
    to: u64,
    url: String,
    client: reqwest::Client,
    mut rx: mpsc::UnboundedReceiver<(Vec<u8>, bool)>,
    svc: Arc<OnceLock<Svc>>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let snapshots = batch.iter().filter(|(_, s)| *s).count();
        let mut body = Vec::with_capacity(batch.iter().map(|(m, _)| m.len() + 4).sum());
        for (m, _) in &batch {
            body.extend_from_slice(&(m.len() as u32).to_be_bytes());
            body.extend_from_slice(m);
        }
        let timeout = if snapshots > 0 {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(2)
        };
        let ok = matches!(
            client.post(&url).body(body).timeout(timeout).send().await,
            Ok(r) if r.status().is_success()
        );
        if let Some(svc) = svc.get() {
            let node = svc.node();
            if !ok {
                node.report_unreachable(to);
            }
            for _ in 0..snapshots {
                node.report_snapshot(to, ok);
            }
        }
        if !ok {
            tracing::debug!(peer = format_args!("{to:x}"), "peer unreachable");
            // Raft resends what matters; do not pile up a backlog.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while rx.try_recv().is_ok() {}
        }
    }
}

/// Forwards keep-alives to the leader's peer port.
pub struct HttpForwarder {
    peers: HashMap<u64, String>,
    client: reqwest::Client,
}

impl HttpForwarder {
    /// A forwarder to the members in `peers` (`id -> peer URL`).
    pub fn new(peers: HashMap<u64, String>) -> HttpForwarder {
        HttpForwarder {
            peers,
            client: reqwest::Client::new(),
        }
    }
}

impl Forwarder for HttpForwarder {
    fn keep_alive(&self, leader: u64, id: i64) -> Pin<Box<dyn Future<Output = Result<i64, EtcdError>> + Send + '_>> {
        Box::pin(async move {
            let url = self.peers.get(&leader).ok_or(EtcdError::NoLeader)?;
            let body =
                serde_json::to_vec(&LeaseKeepAliveRequest { id }).map_err(|e| EtcdError::Internal(e.to_string()))?;
            let resp = self
                .client
                .post(format!("{}/raft/keepalive", url.trim_end_matches('/')))
                .body(body)
                .timeout(Duration::from_secs(3))
                .send()
                .await
                .map_err(|_| EtcdError::Timeout)?;
            if !resp.status().is_success() {
                return Err(EtcdError::NoLeader);
            }
            let bytes = resp.bytes().await.map_err(|_| EtcdError::Timeout)?;
            let r: LeaseKeepAliveResponse =
                serde_json::from_slice(&bytes).map_err(|e| EtcdError::Internal(e.to_string()))?;
            Ok(r.ttl)
        })
    }
}

async fn raft_message(State(svc): State<Svc>, body: Bytes) -> StatusCode {
    let mut rest = &body[..];
    while rest.len() >= 4 {
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 4 + n {
            return StatusCode::BAD_REQUEST;
        }
        svc.node().step(rest[4..4 + n].to_vec());
        rest = &rest[4 + n..];
    }
    StatusCode::NO_CONTENT
}

async fn keep_alive(State(svc): State<Svc>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<LeaseKeepAliveRequest>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if !svc.node().is_leader() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let resp = svc.renew(req.id);
    (StatusCode::OK, serde_json::to_vec(&resp).unwrap_or_default()).into_response()
}

/// The peer port's routes.
pub fn router(svc: Svc) -> Router {
    Router::new()
        .route("/raft/message", post(raft_message))
        .route("/raft/keepalive", post(keep_alive))
        .layer(axum::extract::DefaultBodyLimit::max(512 * 1024 * 1024))
        .with_state(svc)
}
