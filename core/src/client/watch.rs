//! Watches over the gateway's streamed `/v3/watch`, resumed after any break
//! without losing or repeating an event.
//!
//! The watcher remembers the next revision it owes the caller: one past the
//! last event delivered (or past the revision a progress notification or
//! the creation of a from-now watch vouched for). When the stream breaks
//! it opens a new one, on any member, starting exactly there, and drops
//! anything older should a member send it. Events arrive in whole answers
//! and a member never splits one revision over two answers (no
//! fragmenting is asked for), so a revision's events are delivered together.

use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use super::kv::{key_range_options, KeyRange};
use super::rt;
use super::stream::{Feed, Lines};
use super::{Client, Error};
use crate::api::error::{Code, EtcdError};
use crate::api::etcdserverpb::{
    watch_create_request::FilterType, watch_request, WatchCreateRequest, WatchRequest, WatchResponse,
};

/// The pause between attempts to reopen a broken watch, doubled up to a cap.
const REOPEN_START: Duration = Duration::from_millis(50);
const REOPEN_CAP: Duration = Duration::from_secs(1);

/// Options of a watch.
///
/// ```
/// use concord_core::client::WatchOptions;
/// let req = WatchOptions::new().prefix().start_revision(42).prev_kv().build("jobs/");
/// assert_eq!((req.range_end, req.start_revision), (b"jobs0".to_vec(), 42));
/// ```
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    range: KeyRange,
    req: WatchCreateRequest,
}

impl WatchOptions {
    /// Watch one key, from now on.
    pub fn new() -> WatchOptions {
        WatchOptions::default()
    }
    key_range_options!();
    /// Deliver events from this revision on (0: from now).
    pub fn start_revision(mut self, rev: i64) -> Self {
        self.req.start_revision = rev;
        self
    }
    /// Each event carries the key-value before it.
    pub fn prev_kv(mut self) -> Self {
        self.req.prev_kv = true;
        self
    }
    /// Deliver the server's progress notifications (answers without events).
    pub fn progress_notify(mut self) -> Self {
        self.req.progress_notify = true;
        self
    }
    /// Leave out put events.
    pub fn no_put(mut self) -> Self {
        self.req.filters.push(FilterType::Noput as i32);
        self
    }
    /// Leave out delete events.
    pub fn no_delete(mut self) -> Self {
        self.req.filters.push(FilterType::Nodelete as i32);
        self
    }
    /// etcd's create request for `key` with these options.
    pub fn build(self, key: impl Into<Vec<u8>>) -> WatchCreateRequest {
        let (key, range_end) = self.range.apply(key.into());
        WatchCreateRequest {
            key,
            range_end,
            ..self.req
        }
    }
}

/// A running watch. [`Watcher::next`] yields the server's answers that
/// carry events (and progress notifications, if asked for), in revision
/// order, each revision whole; it reopens broken streams by itself.
pub struct Watcher {
    client: Client,
    create: WatchCreateRequest,
    /// The first revision not yet delivered; 0 until known (a from-now
    /// watch learns it when created).
    next_rev: i64,
    body: Option<Lines>,
    done: bool,
    reopened: u64,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("next_revision", &self.next_rev)
            .field("reopened", &self.reopened)
            .finish_non_exhaustive()
    }
}

/// Whether a failure to open or read a watch may pass by itself.
fn transient(e: &Error) -> bool {
    match e {
        Error::DeadlineExceeded(_) | Error::Unavailable(_) | Error::Indeterminate(_) | Error::Decode(_) => true,
        Error::Etcd(e) => e.code() == Code::Unavailable,
        _ => false,
    }
}

impl Client {
    /// Starts watching `key` (or a range, see [`WatchOptions`]). Returns once
    /// a member has created the watch: every later change is delivered.
    pub async fn watch(&self, key: impl Into<Vec<u8>>, opts: WatchOptions) -> Result<Watcher, Error> {
        let create = opts.build(key);
        let mut w = Watcher {
            client: self.clone(),
            next_rev: create.start_revision.max(0),
            create,
            body: None,
            done: false,
            reopened: 0,
        };
        w.open(self.deadline()).await?;
        Ok(w)
    }
}

impl Watcher {
    /// The revision the watch resumes from if its stream breaks now.
    pub fn next_revision(&self) -> i64 {
        self.next_rev
    }

    /// How many times the stream was reopened.
    pub fn reopened(&self) -> u64 {
        self.reopened
    }

    /// Opens a stream at `next_rev` and reads the creation answer; one try
    /// (with the transport's failover) within `deadline`.
    async fn open(&mut self, deadline: rt::Instant) -> Result<(), Error> {
        let mut create = self.create.clone();
        create.start_revision = self.next_rev;
        let req = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
        };
        let body = Bytes::from(serde_json::to_vec(&req).map_err(|e| Error::InvalidArgument(e.to_string()))?);
        let resp = self.client.open_stream("/v3/watch", &body, deadline).await?;
        self.body = Some(Lines::new(resp));
        let first = match rt::until(deadline, self.read()).await {
            None => Err(Error::DeadlineExceeded("no watch creation answer".into())),
            Some(Ok(None)) => Err(Error::Unavailable("watch stream ended before creation".into())),
            Some(r) => r.map(Option::unwrap_or_default),
        };
        let first = match first {
            Ok(f) => f,
            Err(e) => {
                self.body = None;
                return Err(e);
            }
        };
        if first.canceled || first.compact_revision != 0 {
            self.done = true;
            return Err(self.cancel_error(&first));
        }
        if self.next_rev == 0 {
            self.next_rev = first.header.as_ref().map_or(0, |h| h.revision) + 1;
        }
        Ok(())
    }

    fn cancel_error(&self, resp: &WatchResponse) -> Error {
        if resp.compact_revision != 0 {
            Error::WatchCompacted {
                revision: self.next_rev,
                compact_revision: resp.compact_revision,
            }
        } else {
            Error::WatchCanceled(resp.cancel_reason.clone())
        }
    }

    /// The next streamed answer; `None` when the stream ended.
    async fn read(&mut self) -> Result<Option<WatchResponse>, Error> {
        match self.body.as_mut() {
            Some(body) => body.next("watch").await,
            None => Ok(None),
        }
    }

    /// Reopens the stream from `next_rev`, on any member, until it works
    /// or fails for good (compacted, refused).
    async fn reopen(&mut self) -> Result<(), Error> {
        let mut pause = REOPEN_START;
        loop {
            self.reopened += 1;
            match self.open(self.client.deadline()).await {
                Ok(()) => {
                    tracing::debug!(next_revision = self.next_rev, "watch resumed");
                    return Ok(());
                }
                Err(e) if transient(&e) => {
                    tracing::debug!(error = %e, "watch not resumed yet");
                    rt::sleep(pause).await;
                    pause = (pause * 2).min(REOPEN_CAP);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next answer with events (or a progress notification, if asked
    /// for). `None` after the watch ended with an error.
    pub async fn next(&mut self) -> Option<Result<WatchResponse, Error>> {
        if self.done {
            return None;
        }
        loop {
            if self.body.is_none() {
                if let Err(e) = self.reopen().await {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            match self.read().await {
                Ok(Some(mut resp)) => {
                    if resp.canceled || resp.compact_revision != 0 {
                        self.done = true;
                        return Some(Err(self.cancel_error(&resp)));
                    }
                    if resp.created {
                        continue;
                    }
                    if resp.events.is_empty() {
                        // A progress notification: every event up to its
                        // revision has been sent.
                        let rev = resp.header.as_ref().map_or(0, |h| h.revision);
                        self.next_rev = self.next_rev.max(rev + 1);
                        if self.create.progress_notify {
                            return Some(Ok(resp));
                        }
                        continue;
                    }
                    let from = self.next_rev;
                    resp.events
                        .retain(|e| e.kv.as_ref().is_none_or(|kv| kv.mod_revision >= from));
                    let Some(last) = resp.events.last().and_then(|e| e.kv.as_ref()).map(|kv| kv.mod_revision) else {
                        continue;
                    };
                    self.next_rev = last + 1;
                    return Some(Ok(resp));
                }
                Ok(None) => {
                    tracing::debug!(next_revision = self.next_rev, "watch stream ended; resuming");
                    self.body = None;
                }
                Err(Error::Etcd(EtcdError::InvalidAuthToken | EtcdError::AuthOldRevision)) => {
                    self.body = None;
                    let stale = self.client.transport.token();
                    if let Err(e) = self.client.transport.renew_token(stale, self.client.deadline()).await {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                Err(e) if transient(&e) => {
                    tracing::debug!(error = %e, next_revision = self.next_rev, "watch stream broke; resuming");
                    self.body = None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    /// The watch as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Result<WatchResponse, Error>> {
        futures_util::stream::unfold(self, |mut w| async move { w.next().await.map(|r| (r, w)) })
    }
}

/// A running watch as a handle usable from `&self` on any thread (or from
/// the browser's event loop): a background task reads the stream, with
/// [`Watcher`]'s resume, and hands the answers over in order.
/// [`Feed::cancel`], or dropping the handle, stops it.
pub type WatchHandle = Feed<WatchResponse>;

impl Client {
    /// Starts a watch like [`Client::watch`] and returns it as a handle
    /// whose answers are read from `&self`. On native targets this must be
    /// called within a tokio runtime.
    pub async fn watch_handle(&self, key: impl Into<Vec<u8>>, opts: WatchOptions) -> Result<WatchHandle, Error> {
        Ok(Feed::spawn(self.watch(key, opts).await?.into_stream()))
    }
}
