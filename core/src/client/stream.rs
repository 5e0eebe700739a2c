//! What the streaming calls (watch, election observe) share: reading a
//! streamed gateway answer line by line, and [`Feed`], a background task's
//! answers handed out from `&self` on any thread.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use super::rt;
use super::transport::StreamLine;
use super::Error;

#[cfg(not(target_arch = "wasm32"))]
type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;
#[cfg(target_arch = "wasm32")]
type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>>>>;

/// A streamed answer: one `{"result": …}` or `{"error": …}` per line.
pub(crate) struct Lines {
    body: BodyStream,
    buf: Vec<u8>,
}

impl Lines {
    pub(crate) fn new(resp: reqwest::Response) -> Lines {
        Lines {
            body: Box::pin(resp.bytes_stream()),
            buf: Vec::new(),
        }
    }

    /// The next message; `None` when the stream ended. A broken stream is
    /// `Error::Unavailable`, an error line the member's error.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self, what: &str) -> Result<Option<T>, Error> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let parsed: StreamLine<T> =
                    serde_json::from_slice(&line).map_err(|e| Error::Decode(format!("{what}: {e}")))?;
                if let Some(e) = parsed.error {
                    return Err(Error::Etcd(e.into_etcd()));
                }
                return Ok(parsed.result);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(Error::Unavailable(format!("{what} stream broke: {e}"))),
                None => return Ok(None),
            }
        }
    }
}

/// How many answers a [`Feed`] holds for its reader before its task stops
/// reading (the member keeps the rest: a slow reader loses nothing).
const FEED_BUFFER: usize = 16;

/// A background task's answers, read from `&self` on any thread (or from
/// the browser's event loop). [`Feed::cancel`], or dropping the feed,
/// stops the task.
#[derive(Debug)]
pub struct Feed<T> {
    answers: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Result<T, Error>>>,
    /// Sent to (or dropped): the background task stops.
    stop: tokio::sync::watch::Sender<bool>,
}

/// [`Feed::next_timeout`] found no answer within the time given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no answer within the time given")]
pub struct Elapsed;

impl<T: rt::MaybeSend + 'static> Feed<T> {
    /// Runs `source` in the background, handing each answer it yields to
    /// the feed's readers, until it ends or the feed is canceled.
    pub fn spawn<S>(source: S) -> Feed<T>
    where
        S: Stream<Item = Result<T, Error>> + rt::MaybeSend + 'static,
    {
        let (tx, rx) = tokio::sync::mpsc::channel(FEED_BUFFER);
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        rt::spawn(async move {
            let mut source = std::pin::pin!(source);
            let forward = async {
                while let Some(answer) = source.next().await {
                    if tx.send(answer).await.is_err() {
                        return;
                    }
                }
            };
            let stopped = async {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            futures_util::future::select(std::pin::pin!(forward), std::pin::pin!(stopped)).await;
        });
        Feed {
            answers: tokio::sync::Mutex::new(rx),
            stop,
        }
    }
}

impl<T> Feed<T> {
    /// The next answer, in order; `None` once the feed is canceled or has
    /// ended (after an error, which comes first).
    pub async fn next(&self) -> Option<Result<T, Error>> {
        if self.is_canceled() {
            return None;
        }
        let answer = self.answers.lock().await.recv().await;
        if self.is_canceled() {
            return None;
        }
        answer
    }

    /// Like [`Feed::next`], waiting at most `d`. Nothing is lost when the
    /// time runs out: the answer is kept for the next call.
    pub async fn next_timeout(&self, d: Duration) -> Result<Option<Result<T, Error>>, Elapsed> {
        rt::until(rt::Instant::now() + d, self.next()).await.ok_or(Elapsed)
    }

    /// Stops the feed: pending and later calls of `next` answer `None`.
    /// Idempotent.
    pub fn cancel(&self) {
        self.stop.send_replace(true);
        if let Ok(mut rx) = self.answers.try_lock() {
            rx.close();
        }
    }

    /// Whether [`Feed::cancel`] was called.
    pub fn is_canceled(&self) -> bool {
        *self.stop.borrow()
    }
}
