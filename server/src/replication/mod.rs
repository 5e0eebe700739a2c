//! The peer port: raft messages between members and keep-alives forwarded
//! to the leader, over HTTP (`POST /raft/message`, `POST /raft/keepalive`).
//!
//! Each peer has a sender task with its own queue: the raft thread never
//! waits on the network. Messages go on a long-lived stream per peer
//! (`POST /raft/stream`, a body that never ends; messages queued together
//! go in one chunk, as length-prefixed frames); snapshots go as requests
//! of their own, their state streamed beside them (`POST /raft/snapshot`,
//! see `snapshots`). A failed send is reported to raft, which then probes
//! the peer gently until it answers.

mod snapshots;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use concord_core::api::error::EtcdError;
use concord_core::api::etcdserverpb::{
    HashKvRequest, HashKvResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
};
use concord_core::raft::Transport;
use concord_core::service::{EtcdService, Forwarder};
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

pub use snapshots::fetch_join;

/// Most messages in one chunk of a message stream.
const BATCH: usize = 256;
/// Chunks waiting to be written to a peer's connection.
const STREAM_QUEUE: usize = 64;
/// A peer that takes nothing for this long is unreachable.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest message a stream frame may carry (raft's appends are
/// limited to 1 MiB of entries; snapshots come as requests).
const MAX_FRAME: usize = 64 * 1024 * 1024;
/// The largest request body read whole on the peer port, and the largest
/// `JoinInfo` (whole states are streamed, never read whole).
const MAX_MESSAGE_BODY: usize = 64 * 1024 * 1024;

type Svc = Arc<EtcdService>;
/// The member's service as the transport reaches it: filled in once the
/// member runs, and weak, so that a stopped member is freed (its service
/// holds the transport).
pub type SvcCell = Arc<OnceLock<Weak<EtcdService>>>;

/// How members reach each other: plain HTTP/1.1, or TLS with `tls`
/// (peer certificates checked against the peer CA, this member's
/// certificate presented) for `https://` peer URLs. One kept-alive
/// connection per peer and use, reopened when it breaks.
#[derive(Clone)]
pub struct PeerClient {
    tls: Option<(tokio_rustls::TlsConnector, Arc<rustls::ClientConfig>)>,
}

impl PeerClient {
    /// A client; `tls` is used for `https://` URLs.
    pub fn new(tls: Option<rustls::ClientConfig>) -> PeerClient {
        PeerClient {
            tls: tls.map(|cfg| {
                let cfg = Arc::new(cfg);
                (tokio_rustls::TlsConnector::from(Arc::clone(&cfg)), cfg)
            }),
        }
    }

    /// A connection to `base` (`http(s)://host:port`) sending bodies of type `B`.
    async fn connect<B>(&self, base: &str) -> Result<SendRequest<B>, String>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (https, rest) = match (base.strip_prefix("https://"), base.strip_prefix("http://")) {
            (Some(r), _) => (true, r),
            (_, Some(r)) => (false, r),
            _ => return Err(format!("bad peer URL {base}")),
        };
        let authority = rest.trim_end_matches('/').to_string();
        let tcp = tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(&authority))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let host = authority
            .rsplit_once(':')
            .map_or(authority.as_str(), |(h, _)| h)
            .trim_matches(['[', ']']);
        if https {
            let (connector, _) = self.tls.as_ref().ok_or("https:// peer URL without peer TLS flags")?;
            let name = rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
            let stream = tokio::time::timeout(Duration::from_secs(2), connector.connect(name, tcp))
                .await
                .map_err(|_| "TLS handshake timed out".to_string())?
                .map_err(|e| e.to_string())?;
            handshake(TokioIo::new(stream), authority).await
        } else {
            handshake(TokioIo::new(tcp), authority).await
        }
    }
}

/// An open HTTP/1.1 connection to one peer.
struct SendRequest<B> {
    tx: hyper::client::conn::http1::SendRequest<B>,
    authority: String,
}

async fn handshake<IO, B>(io: IO, authority: String) -> Result<SendRequest<B>, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (tx, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(SendRequest { tx, authority })
}

/// The header naming the sending member (its ID in hex), as etcd's
/// peers send it.
const FROM_HEADER: &str = "x-server-from";
/// The header naming the sender's cluster (its ID in hex), as etcd's.
const CLUSTER_HEADER: &str = "x-etcd-cluster-id";

/// Who this member is, as its peer requests say (0: not known yet, before
/// joining a cluster).
#[derive(Clone, Copy, Debug, Default)]
pub struct Me {
    /// The member's ID.
    pub id: u64,
    /// The cluster's ID.
    pub cluster: u64,
}

/// [`Me`], shared by a member's connections: learned for certain once the
/// member has opened its data (an added member's ID does not follow from
/// its flags).
#[derive(Clone, Debug, Default)]
struct MeCell(Arc<RwLock<Me>>);

impl MeCell {
    fn get(&self) -> Me {
        *self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Me {
    /// `req` with the headers naming this member and its cluster.
    fn stamp(self, mut req: hyper::http::request::Builder) -> hyper::http::request::Builder {
        if self.id != 0 {
            req = req.header(FROM_HEADER, format!("{:x}", self.id));
        }
        if self.cluster != 0 {
            req = req.header(CLUSTER_HEADER, format!("{:x}", self.cluster));
        }
        req
    }
}

/// One peer's connection, opened on first use and reopened after a failure.
struct PeerConn {
    base: String,
    client: PeerClient,
    me: MeCell,
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl PeerConn {
    fn new(base: &str, client: PeerClient, me: MeCell) -> PeerConn {
        PeerConn {
            base: base.trim_end_matches('/').to_string(),
            client,
            me,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// POSTs `body` to `path`; the status and body of the answer.
    async fn post(&self, path: &str, body: Vec<u8>, timeout: Duration) -> Result<(u16, Bytes), String> {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_none_or(|c| c.tx.is_closed()) {
            *guard = Some(self.client.connect(&self.base).await?);
        }
        let c = guard.as_mut().expect("connected above");
        let req = self
            .me
            .get()
            .stamp(hyper::Request::post(path).header(hyper::header::HOST, c.authority.as_str()));
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let result = tokio::time::timeout(timeout, async {
            c.tx.ready().await.map_err(|e| e.to_string())?;
            let resp = c.tx.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>((status, body))
        })
        .await
        .unwrap_or_else(|_| Err("peer did not answer in time".into()));
        if result.is_err() {
            *guard = None;
        }
        result
    }
}

/// Whether a peer answers, as the probes and sends to it find.
#[derive(Default)]
struct PeerHealth(std::sync::Mutex<Liveness>);

/// When a peer last answered, and since when without a failure between.
#[derive(Default)]
struct Liveness {
    up_since: Option<std::time::Instant>,
    last_ok: Option<std::time::Instant>,
}

impl PeerHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, Liveness> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// It answered; the first answer after a failure is logged.
    fn ok(&self, peer: u64) {
        let now = std::time::Instant::now();
        let mut l = self.lock();
        l.last_ok = Some(now);
        if l.up_since.is_none() {
            tracing::info!(peer = format_args!("{peer:x}"), "peer became active");
            l.up_since = Some(now);
        }
    }

    /// It did not answer; the first failure after answers is logged.
    fn failed(&self, peer: u64, what: &str) {
        if let Some(since) = self.lock().up_since.take() {
            tracing::warn!(
                peer = format_args!("{peer:x}"),
                active_for_s = since.elapsed().as_secs(),
                failed = what,
                "peer became inactive"
            );
        }
    }

    /// Since when it answers, if its last answer is recent.
    fn connected_since(&self) -> Option<std::time::Instant> {
        let l = self.lock();
        l.last_ok.filter(|last| last.elapsed() <= 3 * PROBE_EVERY)?;
        l.up_since
    }
}

/// Most raft messages queued for one peer.
const PEER_QUEUE_MSGS: usize = 4096;
/// Most bytes of raft messages queued for one peer (one message is always
/// taken, whatever its size, and a snapshot too: raft sends one at a time).
const PEER_QUEUE_BYTES: usize = 64 * 1024 * 1024;

/// One queued message: its bytes, and whether it is a snapshot.
type Queued = (Vec<u8>, bool);

/// A peer's bounded queue of encoded messages. When it is full (a slow or
/// unreachable follower), new messages are dropped and raft is told the
/// peer is unreachable, so it probes and sends again later, as etcd's
/// transport drops messages when its buffer is full.
#[derive(Clone)]
struct Queue {
    tx: mpsc::Sender<Queued>,
    /// Bytes queued and not yet taken by the sender task.
    bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Queue {
    fn new() -> (Queue, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(PEER_QUEUE_MSGS);
        (
            Queue {
                tx,
                bytes: Arc::default(),
            },
            rx,
        )
    }

    /// Queues `msg`; false if it was dropped (the queue is full).
    fn push(&self, msg: Vec<u8>, snapshot: bool) -> bool {
        use std::sync::atomic::Ordering;
        let len = msg.len();
        let queued = self.bytes.load(Ordering::Acquire);
        // A snapshot is not held to the byte bound: raft sends a peer one
        // at a time, and waits for its outcome.
        if !snapshot && queued > 0 && queued + len > PEER_QUEUE_BYTES {
            return false;
        }
        match self.tx.try_send((msg, snapshot)) {
            Ok(()) => {
                self.bytes.fetch_add(len, Ordering::AcqRel);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => false,
            // The sender task is gone (the peer is being replaced).
            Err(mpsc::error::TrySendError::Closed(_)) => true,
        }
    }

    /// Accounts for a message the sender task took.
    fn taken(bytes: &std::sync::atomic::AtomicUsize, len: usize) {
        bytes.fetch_sub(len, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Raft messages to other members over HTTP, and keep-alives forwarded
/// to the leader.
pub struct HttpTransport {
    /// This member and its cluster.
    me: MeCell,
    queues: RwLock<HashMap<u64, Queue>>,
    forward: RwLock<HashMap<u64, Arc<PeerConn>>>,
    health: RwLock<HashMap<u64, Arc<PeerHealth>>>,
    client: PeerClient,
    svc: SvcCell,
    runtime: tokio::runtime::Handle,
}

impl HttpTransport {
    /// Starts one sender task per peer (`id -> peer URL`) for member `me`.
    /// `svc` is filled in once the member runs; failures are reported to
    /// its raft node. Must be called within the tokio runtime.
    pub fn new(me: Me, peers: &HashMap<u64, String>, client: PeerClient, svc: SvcCell) -> HttpTransport {
        let t = HttpTransport {
            me: MeCell(Arc::new(RwLock::new(me))),
            queues: RwLock::new(HashMap::new()),
            forward: RwLock::new(HashMap::new()),
            health: RwLock::new(HashMap::new()),
            client,
            svc,
            runtime: tokio::runtime::Handle::current(),
        };
        for (&id, url) in peers {
            t.set_peer(id, Some(url.clone()));
        }
        t
    }
}

impl HttpTransport {
    /// The connection for forwarded requests to member `id`.
    fn conn_to(&self, id: u64) -> Result<Arc<PeerConn>, EtcdError> {
        let forward = self.forward.read().unwrap_or_else(|e| e.into_inner());
        forward.get(&id).cloned().ok_or(EtcdError::NoLeader)
    }

    /// POSTs `req` as JSON to `path` on member `leader`; its JSON answer.
    async fn forward_json<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        leader: u64,
        path: &str,
        req: &Req,
    ) -> Result<Resp, EtcdError> {
        let conn = self.conn_to(leader)?;
        let body = serde_json::to_vec(req).map_err(|e| EtcdError::Internal(e.to_string()))?;
        let (status, bytes) = conn
            .post(path, body, Duration::from_secs(3))
            .await
            .map_err(|_| EtcdError::Timeout)?;
        if status != 200 {
            return Err(EtcdError::NoLeader);
        }
        serde_json::from_slice(&bytes).map_err(|e| EtcdError::Internal(e.to_string()))
    }
}

impl Transport for HttpTransport {
    fn send(&self, to: u64, msg: Vec<u8>, snapshot: bool) {
        let queue = self.queues.read().unwrap_or_else(|e| e.into_inner()).get(&to).cloned();
        if let Some(q) = queue {
            if !q.push(msg, snapshot) {
                crate::metrics::peer_send_failed(to);
                tracing::debug!(
                    peer = format_args!("{to:x}"),
                    "raft message dropped: the peer's queue is full"
                );
                if let Some(member) = self.svc.get().and_then(Weak::upgrade) {
                    member.node().report_unreachable(to);
                    if snapshot {
                        // raft waits for a snapshot's outcome before it
                        // sends the peer anything else.
                        member.node().report_snapshot(to, false);
                    }
                }
            }
        }
    }

    fn set_identity(&self, member: u64, cluster: u64) {
        *self.me.0.write().unwrap_or_else(|e| e.into_inner()) = Me { id: member, cluster };
    }

    fn connected_since(&self, id: u64) -> Option<std::time::Instant> {
        let health = self.health.read().unwrap_or_else(|e| e.into_inner());
        health.get(&id)?.connected_since()
    }

    fn set_peer(&self, id: u64, url: Option<String>) {
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        let mut forward = self.forward.write().unwrap_or_else(|e| e.into_inner());
        let mut health = self.health.write().unwrap_or_else(|e| e.into_inner());
        // Dropping the old queue ends its sender task.
        queues.remove(&id);
        forward.remove(&id);
        health.remove(&id);
        if let Some(url) = url {
            let (queue, rx) = Queue::new();
            let alive = queue.tx.downgrade();
            let bytes = Arc::clone(&queue.bytes);
            queues.insert(id, queue);
            forward.insert(id, Arc::new(PeerConn::new(&url, self.client.clone(), self.me.clone())));
            let peer = Peer {
                me: self.me.clone(),
                to: id,
                base: url,
                client: self.client.clone(),
                health: Arc::default(),
            };
            health.insert(id, Arc::clone(&peer.health));
            self.runtime
                .spawn(probe_loop(peer.clone(), alive, Arc::clone(&self.svc)));
            self.runtime.spawn(send_loop(peer, rx, bytes, Arc::clone(&self.svc)));
        }
    }
}

/// The body of a message stream: frames as the sender task queues them.
type StreamBody = http_body_util::StreamBody<ReceiverStream<Result<Frame<Bytes>, Infallible>>>;

/// An open message stream to one peer: a `POST /raft/stream` whose body
/// never ends while the connection lasts. No answer per batch: a broken
/// connection is the only failure.
struct MessageStream {
    frames: mpsc::Sender<Result<Frame<Bytes>, Infallible>>,
    /// Finishes when the peer answers (it ends the stream) or the
    /// connection breaks.
    answer: tokio::task::JoinHandle<()>,
}

impl MessageStream {
    async fn open(peer: &Peer) -> Result<MessageStream, String> {
        let mut c = peer.client.connect::<StreamBody>(&peer.base).await?;
        let (frames, rx) = mpsc::channel(STREAM_QUEUE);
        let req = peer
            .me
            .get()
            .stamp(hyper::Request::post("/raft/stream").header(hyper::header::HOST, c.authority.as_str()))
            .body(http_body_util::StreamBody::new(ReceiverStream::new(rx)))
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(SEND_TIMEOUT, c.tx.ready())
            .await
            .map_err(|_| "peer not ready in time".to_string())?
            .map_err(|e| e.to_string())?;
        let answer = c.tx.send_request(req);
        let answer = tokio::spawn(async move {
            let _ = answer.await;
        });
        Ok(MessageStream { frames, answer })
    }

    /// Sends one chunk of length-prefixed messages; false if the stream is
    /// broken (or the peer takes nothing for [`SEND_TIMEOUT`]).
    async fn send(&self, chunk: Bytes) -> bool {
        if self.answer.is_finished() {
            return false;
        }
        matches!(
            tokio::time::timeout(SEND_TIMEOUT, self.frames.send(Ok(Frame::data(chunk)))).await,
            Ok(Ok(()))
        )
    }
}

impl Drop for MessageStream {
    fn drop(&mut self) {
        self.answer.abort();
    }
}

/// Appends `msg` to `out` as one length-prefixed frame.
fn put_frame(out: &mut Vec<u8>, msg: &[u8]) {
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
}

/// Who sends to whom, and how.
#[derive(Clone)]
struct Peer {
    me: MeCell,
    to: u64,
    base: String,
    client: PeerClient,
    health: Arc<PeerHealth>,
}

/// How often each peer is probed (its round trip measured, and whether
/// it answers noted).
const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Probes one peer every [`PROBE_EVERY`] while the peer's queue exists:
/// the round trip goes to `etcd_network_peer_round_trip_time_seconds`,
/// and whether it answered to the peer's health (the send path counts
/// failures). A peer that answers "removed" stops this member.
async fn probe_loop(peer: Peer, alive: mpsc::WeakSender<Queued>, svc: SvcCell) {
    let conn = PeerConn::new(&peer.base, peer.client.clone(), peer.me.clone());
    let mut first = true;
    while alive.upgrade().is_some() {
        let wait = if first { Duration::from_millis(500) } else { PROBE_EVERY };
        first = false;
        tokio::time::sleep(wait).await;
        let started = std::time::Instant::now();
        match conn.post("/raft/probing", Vec::new(), SEND_TIMEOUT).await {
            Ok((204, _)) => {
                crate::metrics::peer_round_trip(peer.to, started.elapsed());
                peer.health.ok(peer.to);
            }
            Ok((410, _)) => {
                tracing::warn!(peer = format_args!("{:x}", peer.to), "{REMOVED}: the peer says so");
                if let Some(member) = svc.get().and_then(Weak::upgrade) {
                    member.node().report_removed();
                }
                return;
            }
            _ => peer.health.failed(peer.to, "probe"),
        }
    }
}

/// One peer's sender: ordinary messages go on its message stream, batched
/// as they queue up; snapshots (large, rare) each go in a request of
/// their own. Failures are reported to raft, and the queue is emptied
/// while the peer is unreachable (raft resends what matters).
async fn send_loop(
    peer: Peer,
    mut rx: mpsc::Receiver<Queued>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    svc: SvcCell,
) {
    let to = peer.to;
    let mut stream: Option<MessageStream> = None;
    while let Some(first) = rx.recv().await {
        Queue::taken(&queued, first.0.len());
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => {
                    Queue::taken(&queued, m.0.len());
                    batch.push(m);
                }
                Err(_) => break,
            }
        }
        let mut chunk = Vec::with_capacity(batch.iter().map(|(m, _)| m.len() + 4).sum());
        let mut snaps = Vec::new();
        for (m, snapshot) in batch {
            if snapshot {
                snaps.push(m);
            } else {
                put_frame(&mut chunk, &m);
            }
        }
        let mut ok = true;
        if !chunk.is_empty() {
            if stream.is_none() {
                match MessageStream::open(&peer).await {
                    Ok(s) => stream = Some(s),
                    Err(e) => tracing::debug!(peer = format_args!("{to:x}"), error = %e, "no message stream"),
                }
            }
            let len = chunk.len();
            ok = match &stream {
                Some(s) => s.send(Bytes::from(chunk)).await,
                None => false,
            };
            if ok {
                crate::metrics::peer_sent(to, len);
                peer.health.ok(to);
            }
            if !ok {
                stream = None;
            }
        }
        let member = svc.get().and_then(Weak::upgrade);
        let node = member.as_ref().map(|svc| svc.node());
        for snap in snaps {
            let Some(source) = node.and_then(|n| n.snapshot_to_send(&snap)) else {
                // No longer on offer (a newer one replaced it): raft asks
                // for the newer one once told.
                if let Some(node) = &node {
                    node.report_snapshot(to, false);
                }
                continue;
            };
            // The state streams beside the message, on a task of its own,
            // so this peer's heartbeats and other messages keep flowing
            // while it goes (it may take minutes).
            let (peer, svc) = (peer.clone(), Arc::clone(&svc));
            tokio::spawn(async move {
                let sent = snapshots::send(&peer, &snap, source).await;
                if let Some(member) = svc.get().and_then(Weak::upgrade) {
                    member.node().report_snapshot(peer.to, sent);
                }
            });
        }
        if !ok {
            peer.health.failed(to, "message send");
            crate::metrics::peer_send_failed(to);
            if let Some(node) = &node {
                node.report_unreachable(to);
            }
            tracing::debug!(peer = format_args!("{to:x}"), "peer unreachable");
            tokio::time::sleep(Duration::from_millis(50)).await;
            while rx.try_recv().is_ok() {}
        }
    }
}

impl Forwarder for HttpTransport {
    fn keep_alive(&self, leader: u64, id: i64) -> Pin<Box<dyn Future<Output = Result<i64, EtcdError>> + Send + '_>> {
        Box::pin(async move {
            let r: LeaseKeepAliveResponse = self
                .forward_json(leader, "/raft/keepalive", &LeaseKeepAliveRequest { id })
                .await?;
            Ok(r.ttl)
        })
    }

    fn time_to_live(
        &self,
        leader: u64,
        req: LeaseTimeToLiveRequest,
    ) -> Pin<Box<dyn Future<Output = Result<LeaseTimeToLiveResponse, EtcdError>> + Send + '_>> {
        Box::pin(async move { self.forward_json(leader, "/raft/timetolive", &req).await })
    }

    fn hash_kv(
        &self,
        member: u64,
        revision: i64,
    ) -> Pin<Box<dyn Future<Output = Result<HashKvResponse, EtcdError>> + Send + '_>> {
        Box::pin(async move {
            let conn = self.conn_to(member)?;
            let body =
                serde_json::to_vec(&HashKvRequest { revision }).map_err(|e| EtcdError::Internal(e.to_string()))?;
            let (status, bytes) = conn
                .post("/members/hashkv", body, Duration::from_secs(30))
                .await
                .map_err(|_| EtcdError::Timeout)?;
            if status != 200 {
                // The peer's error, as the gateway writes errors.
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let code = v["code"].as_i64().unwrap_or(2) as i32;
                let msg = v["message"].as_str().unwrap_or("hashkv failed");
                return Err(EtcdError::from_wire(code, msg));
            }
            serde_json::from_slice(&bytes).map_err(|e| EtcdError::Internal(e.to_string()))
        })
    }
}

/// Decodes a JSON request body, refuses unless this member leads, and
/// answers with `f`'s JSON.
fn leader_only<Req: serde::de::DeserializeOwned, Resp: serde::Serialize>(
    svc: &Svc,
    body: &[u8],
    f: impl FnOnce(&Req) -> Resp,
) -> Response {
    let Ok(req) = serde_json::from_slice::<Req>(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if !svc.node().is_leader() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    (StatusCode::OK, serde_json::to_vec(&f(&req)).unwrap_or_default()).into_response()
}

/// Steps every whole frame at the start of `buf` into raft; returns how
/// many bytes they took, or `None` if a frame is too large to be one.
fn step_frames(svc: &Svc, buf: &[u8], max_frame: usize) -> Option<usize> {
    let mut off = 0;
    while buf.len() - off >= 4 {
        let n = u32::from_be_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if n > max_frame {
            return None;
        }
        if buf.len() - off < 4 + n {
            break;
        }
        svc.node().step(buf[off + 4..off + 4 + n].to_vec());
        off += 4 + n;
    }
    Some(off)
}

/// Who sent a peer request, as its `X-Server-From` header says.
#[derive(Debug, PartialEq, Eq)]
enum Sender {
    /// A member of this cluster (its ID in hex, the metrics' label).
    Member(String),
    /// A member removed from the cluster: refused, and told so.
    Removed,
    /// No header, or an ID this member does not know (yet): counted as
    /// "unknown", so that nobody outside can grow the label set.
    Unknown,
}

impl Sender {
    fn label(&self) -> &str {
        match self {
            Sender::Member(id) => id,
            Sender::Removed | Sender::Unknown => UNKNOWN,
        }
    }
}

fn sender(svc: &Svc, headers: &HeaderMap) -> Sender {
    let Some(id) = headers
        .get(FROM_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| u64::from_str_radix(v, 16).ok())
    else {
        return Sender::Unknown;
    };
    if svc.node().state().is_removed(id) {
        Sender::Removed
    } else if svc.member_list().members.iter().any(|m| m.id == id) {
        Sender::Member(format!("{id:x}"))
    } else {
        Sender::Unknown
    }
}

/// The `From` label of bytes from a sender that is not a known member.
const UNKNOWN: &str = "unknown";

/// What a removed member is told (etcd's words, with its status 410).
const REMOVED: &str = "the member has been permanently removed from the cluster";

fn removed() -> Response {
    (StatusCode::GONE, REMOVED).into_response()
}

/// `POST /raft/probing`: answers at once, for a peer measuring its round
/// trip (a removed member learns here that it was removed).
async fn probing(State(svc): State<Svc>, headers: HeaderMap) -> Response {
    if sender(&svc, &headers) == Sender::Removed {
        return removed();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /raft/message`: whole messages, one request each.
async fn raft_message(State(svc): State<Svc>, headers: HeaderMap, body: Bytes) -> Response {
    let from = sender(&svc, &headers);
    if from == Sender::Removed {
        return removed();
    }
    crate::metrics::peer_received(from.label(), body.len());
    match step_frames(&svc, &body, MAX_MESSAGE_BODY) {
        Some(n) if n == body.len() => StatusCode::NO_CONTENT.into_response(),
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// `POST /raft/stream`: a peer's message stream, stepped as frames
/// arrive, for as long as the peer keeps it open.
async fn raft_stream(State(svc): State<Svc>, headers: HeaderMap, body: axum::body::Body) -> Response {
    let mut from = sender(&svc, &headers);
    if from == Sender::Removed {
        return removed();
    }
    let mut checked = std::time::Instant::now();
    let mut data = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = data.next().await {
        let Ok(chunk) = chunk else {
            break;
        };
        if from == Sender::Unknown && checked.elapsed() >= Duration::from_secs(1) {
            // A stream opened while the cluster's first members were not
            // yet applied: the sender may be known now.
            from = sender(&svc, &headers);
            checked = std::time::Instant::now();
        }
        crate::metrics::peer_received(from.label(), chunk.len());
        if buf.is_empty() {
            // The usual case: whole frames in one chunk, no copy.
            match step_frames(&svc, &chunk, MAX_FRAME) {
                Some(n) => buf.extend_from_slice(&chunk[n..]),
                None => return StatusCode::BAD_REQUEST.into_response(),
            }
        } else {
            buf.extend_from_slice(&chunk);
            match step_frames(&svc, &buf, MAX_FRAME) {
                Some(n) => {
                    buf.drain(..n);
                }
                None => return StatusCode::BAD_REQUEST.into_response(),
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn keep_alive(State(svc): State<Svc>, body: Bytes) -> Response {
    leader_only(&svc, &body, |req: &LeaseKeepAliveRequest| svc.renew(req.id))
}

async fn time_to_live(State(svc): State<Svc>, body: Bytes) -> Response {
    leader_only(&svc, &body, |req: &LeaseTimeToLiveRequest| svc.time_to_live(req))
}

/// `POST /members/hashkv` (etcd's peer path): this member's HashKV at a
/// revision, for a peer's corruption check.
async fn peer_hash_kv(State(svc): State<Svc>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<HashKvRequest>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match svc.local_hash_kv(req.revision).await {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => crate::gateway::error_response(&e),
    }
}

/// Refuses a peer request from another cluster (`X-Etcd-Cluster-ID`
/// differs) with 412, as etcd does; requests without the header (a member
/// joining, which does not know the cluster yet) pass.
async fn same_cluster(State(svc): State<Svc>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let theirs = req
        .headers()
        .get(CLUSTER_HEADER)
        .map(|v| v.to_str().ok().and_then(|v| u64::from_str_radix(v, 16).ok()));
    let ours = svc.node().state().cluster_id;
    match theirs {
        Some(id) if id != Some(ours) => {
            tracing::warn!(
                path = %req.uri().path(),
                from = ?req.headers().get(FROM_HEADER),
                their_cluster = ?req.headers().get(CLUSTER_HEADER),
                our_cluster = format_args!("{ours:x}"),
                "peer request from another cluster refused"
            );
            (StatusCode::PRECONDITION_FAILED, "cluster ID mismatch").into_response()
        }
        _ => next.run(req).await,
    }
}

/// Serves only requests a current member sent (`X-Server-From` names one):
/// what a member asks of the leader on a client's behalf (keep-alives,
/// lease lookups) or for its own checks (HashKV) carries no client
/// credentials, so nobody else may ask it on the peer port.
async fn members_only(State(svc): State<Svc>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match sender(&svc, req.headers()) {
        Sender::Member(_) => next.run(req).await,
        Sender::Removed => removed(),
        Sender::Unknown => {
            tracing::warn!(
                path = %req.uri().path(),
                from = ?req.headers().get(FROM_HEADER),
                "peer request from a non-member refused"
            );
            (StatusCode::FORBIDDEN, "not a member of this cluster").into_response()
        }
    }
}

/// The peer port's routes.
pub fn router(svc: Svc) -> Router {
    let members_only_routes = Router::new()
        .route("/raft/keepalive", post(keep_alive))
        .route("/raft/timetolive", post(time_to_live))
        .route("/members/hashkv", post(peer_hash_kv))
        .route_layer(axum::middleware::from_fn_with_state(Arc::clone(&svc), members_only));
    Router::new()
        .route("/raft/message", post(raft_message))
        .route("/raft/stream", post(raft_stream))
        .route("/raft/probing", post(probing))
        .route("/raft/join", post(snapshots::join))
        .route("/raft/snapshot", post(snapshots::receive))
        .merge(members_only_routes)
        .route_layer(axum::middleware::from_fn_with_state(Arc::clone(&svc), same_cluster))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_MESSAGE_BODY))
        .with_state(svc)
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    #[test]
    fn a_full_peer_queue_drops_instead_of_growing() {
        let (q, mut rx) = Queue::new();
        for _ in 0..PEER_QUEUE_MSGS {
            assert!(q.push(vec![0; 10], false));
        }
        assert!(!q.push(vec![0; 10], false), "past the message bound");
        let (m, _) = rx.try_recv().unwrap();
        Queue::taken(&q.bytes, m.len());
        assert!(q.push(vec![0; 10], false), "room again once one is taken");

        let (q, mut rx) = Queue::new();
        assert!(
            q.push(vec![0; PEER_QUEUE_BYTES + 1], true),
            "one message is always taken"
        );
        assert!(!q.push(vec![0; 1], false), "past the byte bound");
        let (m, _) = rx.try_recv().unwrap();
        Queue::taken(&q.bytes, m.len());
        assert!(q.push(vec![0; 1], false));
    }
}
