//! Whole states between members, streamed: a raft snapshot's state beside
//! its message (`POST /raft/snapshot`), and a joining member's starting
//! state after its `JoinInfo` (`POST /raft/join`). Either is a frame (a
//! 4-byte big-endian length and the message) followed by a snapshot file,
//! read from the sender's database and written to the receiver's disk
//! 64 KiB at a time, so neither side holds it in memory, whatever its size.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use concord_core::storage::{SnapshotSource, SnapshotSpool};
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::{put_frame, removed, sender, Peer, PeerClient, Sender, StreamBody, Svc, MAX_FRAME, MAX_MESSAGE_BODY};

/// Time to send one snapshot's state: long enough for a few GiB between
/// members of one site.
const STATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The largest state a member accepts: twice its backend quota (a store
/// within quota encodes smaller), plus room for what is not the key space.
pub(super) fn state_limit(quota_backend_bytes: u64) -> u64 {
    quota_backend_bytes.saturating_mul(2).saturating_add(64 << 20)
}

/// `frame`, then `source` as a snapshot file, as a body's chunks: read on
/// a blocking thread, at most a few chunks ahead of the network.
fn body_chunks(frame: Vec<u8>, source: impl AsRef<SnapshotSource> + Send + 'static) -> StreamBody {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(8);
    tokio::task::spawn_blocking(move || {
        if tx.blocking_send(Ok(Frame::data(Bytes::from(frame)))).is_err() {
            return;
        }
        let sent = source
            .as_ref()
            .write(&mut |chunk| tx.blocking_send(Ok(Frame::data(Bytes::from(chunk)))).is_ok());
        if let Err(e) = sent {
            // The body ends short: the receiver's checksum refuses it.
            tracing::warn!(error = %e, "reading the state to send failed");
        }
    });
    http_body_util::StreamBody::new(ReceiverStream::new(rx))
}

/// A source owned by the body that streams it.
struct Owned(SnapshotSource);

impl AsRef<SnapshotSource> for Owned {
    fn as_ref(&self) -> &SnapshotSource {
        &self.0
    }
}

/// Sends the raft snapshot message `msg` with its state `source` to
/// `peer`; true once the peer has it durably.
pub(super) async fn send(peer: &Peer, msg: &[u8], source: Arc<SnapshotSource>) -> bool {
    let to = peer.to;
    let attempt = async {
        let mut c = peer.client.connect::<StreamBody>(&peer.base).await?;
        let mut frame = Vec::with_capacity(msg.len() + 4);
        put_frame(&mut frame, msg);
        let req = peer
            .me
            .get()
            .stamp(hyper::Request::post("/raft/snapshot").header(hyper::header::HOST, c.authority.as_str()))
            .body(body_chunks(frame, source))
            .map_err(|e| e.to_string())?;
        c.tx.ready().await.map_err(|e| e.to_string())?;
        let resp = c.tx.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&text)))
        }
    };
    let started = std::time::Instant::now();
    match tokio::time::timeout(STATE_TIMEOUT, attempt).await {
        Ok(Ok(())) => {
            tracing::info!(
                peer = format_args!("{to:x}"),
                secs = started.elapsed().as_secs_f64(),
                "snapshot sent"
            );
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(peer = format_args!("{to:x}"), error = %e, "snapshot not sent");
            false
        }
        Err(_) => {
            tracing::warn!(peer = format_args!("{to:x}"), "snapshot not sent in time");
            false
        }
    }
}

/// Reads the leading frame of `body` (at most `max` bytes); the frame and
/// what came after it in the same chunks.
async fn leading_frame<S, E>(body: &mut S, max: usize) -> Result<(Vec<u8>, Vec<u8>), String>
where
    S: tokio_stream::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut buf = Vec::new();
    loop {
        if buf.len() >= 4 {
            let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if n > max {
                return Err(format!("a leading message of {n} bytes (at most {max})"));
            }
            if buf.len() >= 4 + n {
                let rest = buf.split_off(4 + n);
                buf.drain(..4);
                return Ok((buf, rest));
            }
        }
        match body.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the body ended inside its leading message".into()),
        }
    }
}

/// Chunks received and not yet written to disk, per transfer: enough to
/// keep the disk busy while the network delivers the next ones.
const SPOOL_QUEUE: usize = 16;

/// Writes the rest of `body` after `first` into `spool` and finishes it.
/// The file is written from a blocking thread, so a large transfer holds
/// up no async worker; the queue between them is bounded, so a disk
/// slower than the network slows the sender down instead of filling
/// memory. The spool is finished only once the whole body arrived: a
/// transfer cut short (an error, or the request dropped) leaves no file.
async fn spool_rest<S, E>(spool: SnapshotSpool, first: &[u8], body: &mut S) -> Result<PathBuf, String>
where
    S: tokio_stream::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // `None` marks the end of the body; a queue closed without it, a
    // transfer that did not complete.
    let (tx, mut rx) = mpsc::channel::<Option<Bytes>>(SPOOL_QUEUE);
    let writer = tokio::task::spawn_blocking(move || {
        let mut spool = spool;
        loop {
            match rx.blocking_recv() {
                Some(Some(chunk)) => spool.write(&chunk).map_err(|e| e.to_string())?,
                Some(None) => return spool.finish().map_err(|e| e.to_string()),
                None => return Err(String::from("the transfer was cut short")),
            }
        }
    });
    let fed = async {
        let _ = tx.send(Some(Bytes::copy_from_slice(first))).await;
        while let Some(chunk) = body.next().await {
            if tx.send(Some(chunk.map_err(|e| e.to_string())?)).await.is_err() {
                break; // the writer failed: its error is the answer
            }
        }
        let _ = tx.send(None).await;
        Ok::<(), String>(())
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|e| e.to_string())?;
    fed?;
    written
}

/// `POST /raft/snapshot`: a raft snapshot message and its state. The
/// state is spooled to disk (checked, durable) before the message is
/// stepped, so raft never sees a snapshot this member does not hold.
pub(super) async fn receive(State(svc): State<Svc>, headers: HeaderMap, body: axum::body::Body) -> Response {
    let from = sender(&svc, &headers);
    if from == Sender::Removed {
        return removed();
    }
    let mut data = body.into_data_stream();
    let (msg, rest) = match leading_frame(&mut data, MAX_FRAME).await {
        Ok(x) => x,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let limit = state_limit(svc.config().quota_backend_bytes);
    let spool = match svc.node().receive_snapshot(&msg, limit) {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let started = std::time::Instant::now();
    match spool_rest(spool, &rest, &mut data).await {
        Ok(path) => {
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            crate::metrics::peer_received(from.label(), bytes as usize);
            tracing::info!(
                bytes,
                secs = started.elapsed().as_secs_f64(),
                "snapshot state received from the leader"
            );
            svc.node().step(msg);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "snapshot state not received");
            (StatusCode::BAD_REQUEST, e).into_response()
        }
    }
}

/// `POST /raft/join` with a JSON list of peer URLs: the joining member's
/// ID, the cluster's, and the state to start from (`concordpb.JoinInfo`
/// as the leading frame, then a snapshot file).
pub(super) async fn join(State(svc): State<Svc>, body: Bytes) -> Response {
    let Ok(peer_urls) = serde_json::from_slice::<Vec<String>>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match svc.node().join_info(peer_urls).await {
        Ok(answer) => {
            let mut frame = Vec::with_capacity(answer.info.len() + 4);
            put_frame(&mut frame, &answer.info);
            let body = body_chunks(frame, Owned(answer.snapshot));
            (StatusCode::OK, axum::body::Body::new(body)).into_response()
        }
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

/// Asks the members at `peers` (peer URLs) for what a member with
/// `my_peer_urls` needs to join; the first that answers wins. Returns the
/// encoded `JoinInfo` and the snapshot file spooled into `dir`.
pub async fn fetch_join(
    client: &PeerClient,
    peers: &[String],
    my_peer_urls: &[String],
    dir: &Path,
    quota_backend_bytes: u64,
) -> Result<(Vec<u8>, PathBuf), String> {
    let body = serde_json::to_vec(my_peer_urls).map_err(|e| e.to_string())?;
    let mut last = String::from("no member to ask");
    for _ in 0..20 {
        for p in peers {
            match join_once(client, p, &body, dir, quota_backend_bytes).await {
                Ok(x) => return Ok(x),
                Err(e) => last = format!("{p}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}

async fn join_once(
    client: &PeerClient,
    base: &str,
    body: &[u8],
    dir: &Path,
    quota_backend_bytes: u64,
) -> Result<(Vec<u8>, PathBuf), String> {
    let mut c = client.connect::<Full<Bytes>>(base.trim_end_matches('/')).await?;
    let req = hyper::Request::post("/raft/join")
        .header(hyper::header::HOST, c.authority.as_str())
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| e.to_string())?;
    let attempt = async {
        c.tx.ready().await.map_err(|e| e.to_string())?;
        let resp = c.tx.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let mut data = resp.into_body().into_data_stream();
        if !status.is_success() {
            let mut text = Vec::new();
            while let Some(Ok(chunk)) = data.next().await {
                text.extend_from_slice(&chunk);
                if text.len() > 4096 {
                    break;
                }
            }
            return Err(format!("{} {}", status.as_u16(), String::from_utf8_lossy(&text)));
        }
        let (info, rest) = leading_frame(&mut data, MAX_MESSAGE_BODY).await?;
        let spool =
            SnapshotSpool::create(dir, "join.snap", state_limit(quota_backend_bytes)).map_err(|e| e.to_string())?;
        let path = spool_rest(spool, &rest, &mut data).await?;
        Ok((info, path))
    };
    tokio::time::timeout(STATE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err("the member did not send its state in time".into()))
}
