//! The watcher hub (etcd's synced/unsynced design).
//!
//! A *synced* watcher has seen everything up to the last revision the write
//! path announced ([`Hub::notify`], called after every applied batch) and
//! gets new events straight from it. An *unsynced* watcher (it starts in
//! the past, or its stream fell behind) is caught up by the sync thread
//! from the stored history, a chunk at a time; the last step of catching
//! up runs under the hub lock, so nothing announced meanwhile is missed or
//! sent twice. A stream that is full never blocks the write path: its
//! watchers just become unsynced. Memory is bounded by the per-stream queue
//! and the chunk size.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::mpsc;

use super::filter::{fragments, Selector};
use crate::api::error::EtcdError;
use crate::api::etcdserverpb::{ResponseHeader, WatchCreateRequest, WatchResponse};
use crate::api::mvccpb::{Event, KeyValue};

/// Responses a stream may have queued before its watchers fall behind
/// (etcd's channel length).
const STREAM_CAPACITY: usize = 128;
/// Responses a stream may have queued before its reader stops taking
/// requests (each request can add a control response): the client's
/// unread answers cannot grow without bound.
const CONTROL_LIMIT: usize = 2 * STREAM_CAPACITY;
/// Revisions read from the store per catch-up step…
const SYNC_CHUNK: i64 = 1000;
/// …and at most about this many bytes (whole revisions only).
const SYNC_BYTES: usize = 4 * 1024 * 1024;
/// How often the sync thread looks for unsynced watchers without being woken.
const SYNC_EVERY: Duration = Duration::from_millis(100);
/// etcd's watch ID meaning "no watcher" (progress responses).
pub const INVALID_WATCH_ID: i64 = -1;
/// Most watchers one stream may hold (etcd sets no limit; one client's
/// stream must not be able to grow the server without end). A client
/// that needs more opens another stream.
pub const MAX_WATCHERS_PER_STREAM: usize = 10_000;

/// Where catch-up reads from: the applied key space.
pub trait History: Send + Sync {
    /// Events with a revision in `from..=to`, in order, and the last
    /// revision they cover (less than `to` if `max_bytes` ran out first;
    /// a revision is never split).
    fn events(&self, from: i64, to: i64, max_bytes: usize) -> Result<(Vec<Event>, i64), EtcdError>;
    /// The key's value just before revision `rev` (for `prev_kv`), if still held.
    fn prev_kv(&self, key: &[u8], rev: i64) -> Option<KeyValue>;
    /// The compacted revision.
    fn compact_revision(&self) -> i64;
}

/// Hub settings.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Cluster fields every response header carries.
    pub header: ResponseHeader,
    /// How often watchers with `progress_notify` get an empty response.
    pub progress_interval: Duration,
    /// Responses of `fragment` watchers are split above this size.
    pub max_response_bytes: usize,
}

#[derive(Clone)]
struct Outbox {
    tx: mpsc::UnboundedSender<WatchResponse>,
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    /// Queues event responses if there is room for all of them.
    fn offer(&self, parts: Vec<WatchResponse>) -> bool {
        if self.queued.load(Ordering::Acquire) + parts.len() > STREAM_CAPACITY.max(parts.len()) {
            return false;
        }
        for p in parts {
            self.control(p);
        }
        true
    }

    /// True if no event response fits now.
    fn full(&self) -> bool {
        self.queued.load(Ordering::Acquire) >= STREAM_CAPACITY
    }

    /// Queues a control response (created, canceled, progress): always.
    fn control(&self, r: WatchResponse) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(r).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Wakes a stream's reader when its client has read answers, or is gone.
#[derive(Default)]
struct Room {
    notify: tokio::sync::Notify,
    closed: std::sync::atomic::AtomicBool,
}

/// The receiving end of one watch stream.
pub struct WatchReceiver {
    rx: mpsc::UnboundedReceiver<WatchResponse>,
    queued: Arc<AtomicUsize>,
    room: Arc<Room>,
}

impl Drop for WatchReceiver {
    fn drop(&mut self) {
        self.room.closed.store(true, Ordering::Release);
        self.room.notify.notify_waiters();
    }
}

impl WatchReceiver {
    /// The next response.
    pub async fn recv(&mut self) -> Option<WatchResponse> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next response.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<WatchResponse>> {
        let r = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(_)) = &r {
            if self.queued.fetch_sub(1, Ordering::AcqRel) <= CONTROL_LIMIT {
                self.room.notify.notify_waiters();
            }
        }
        r
    }
}

struct Watcher {
    sel: Selector,
    /// The next revision this watcher needs.
    start: i64,
    synced: bool,
    prev_kv: bool,
    progress_notify: bool,
    fragment: bool,
    last_sent: Instant,
}

struct Stream {
    outbox: Outbox,
    next_id: i64,
    watchers: BTreeMap<i64, Watcher>,
}

struct Inner {
    /// The last revision announced by the write path.
    notified_rev: i64,
    streams: HashMap<u64, Stream>,
    next_stream: u64,
    unsynced: usize,
    stopped: bool,
}

/// Every watcher of one member.
pub struct Hub {
    inner: Mutex<Inner>,
    wake: Condvar,
    cfg: HubConfig,
    /// The member's current raft term, for response headers.
    term: AtomicU64,
}

impl Hub {
    /// A hub whose history ends at `current_rev`.
    pub fn new(cfg: HubConfig, current_rev: i64) -> Self {
        Hub {
            inner: Mutex::new(Inner {
                notified_rev: current_rev,
                streams: HashMap::new(),
                next_stream: 1,
                unsynced: 0,
                stopped: false,
            }),
            wake: Condvar::new(),
            term: AtomicU64::new(cfg.header.raft_term),
            cfg,
        }
    }

    /// Response headers carry `term` from now on (a new raft term).
    pub fn set_term(&self, term: u64) {
        self.term.store(term, Ordering::Relaxed);
    }

    fn header(&self, revision: i64) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            revision,
            raft_term: self.term.load(Ordering::Relaxed),
            ..self.cfg.header
        })
    }

    /// Opens a watch stream (one gRPC Watch call or one gateway request).
    pub fn open(self: &Arc<Self>) -> (WatchStream, WatchReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let room = Arc::new(Room::default());
        let mut inner = self.inner.lock();
        let id = inner.next_stream;
        inner.next_stream += 1;
        inner.streams.insert(
            id,
            Stream {
                outbox: Outbox {
                    tx,
                    queued: Arc::clone(&queued),
                },
                next_id: 0,
                watchers: BTreeMap::new(),
            },
        );
        (
            WatchStream {
                hub: Arc::clone(self),
                id,
                queued: Arc::clone(&queued),
                room: Arc::clone(&room),
            },
            WatchReceiver { rx, queued, room },
        )
    }

    /// Announces that everything up to `rev` is applied, with the changes
    /// of that batch. Called by the write path, after the batch is visible
    /// to readers.
    pub fn notify(&self, rev: i64, events: &[Event], history: &dyn History) {
        let mut inner = self.inner.lock();
        inner.notified_rev = rev;
        if events.is_empty() {
            return;
        }
        let mut fell_behind = 0;
        for stream in inner.streams.values_mut() {
            let full = stream.outbox.full();
            for (&watch_id, w) in stream.watchers.iter_mut().filter(|(_, w)| w.synced) {
                if !full && self.offer_events(&stream.outbox, w, watch_id, events, rev, rev, history) {
                    w.start = w.start.max(rev + 1);
                    continue;
                }
                // No room: if it wanted any of this batch, it catches up
                // from the store later, starting with this batch.
                let wanted = events
                    .iter()
                    .any(|e| w.sel.wants(e) && e.kv.as_ref().is_some_and(|kv| kv.mod_revision >= w.start));
                if wanted {
                    let batch_start = events
                        .iter()
                        .filter_map(|e| e.kv.as_ref())
                        .map(|kv| kv.mod_revision)
                        .min();
                    w.synced = false;
                    w.start = w.start.max(batch_start.unwrap_or(rev));
                    fell_behind += 1;
                }
            }
        }
        if fell_behind > 0 {
            inner.unsynced += fell_behind;
            self.wake.notify_one();
        }
    }

    /// The events of `events` the watcher wants, from revision `from` to `to`.
    fn select(&self, w: &Watcher, events: &[Event], from: i64, to: i64, history: &dyn History) -> Vec<Event> {
        events
            .iter()
            .filter(|e| {
                let rev = e.kv.as_ref().map_or(0, |kv| kv.mod_revision);
                rev >= from && rev <= to && w.sel.wants(e)
            })
            .map(|e| {
                let mut e = e.clone();
                if w.prev_kv {
                    if let Some(kv) = &e.kv {
                        e.prev_kv = history.prev_kv(&kv.key, kv.mod_revision);
                    }
                }
                e
            })
            .collect()
    }

    /// Offers the watcher the events of `events` it wants, from its start
    /// up to `to`, as one response headed `header_rev`. False if the stream
    /// had no room (then nothing was sent); true also when nothing matched.
    #[allow(clippy::too_many_arguments)]
    fn offer_events(
        &self,
        outbox: &Outbox,
        w: &mut Watcher,
        watch_id: i64,
        events: &[Event],
        to: i64,
        header_rev: i64,
        history: &dyn History,
    ) -> bool {
        let evs = self.select(w, events, w.start, to, history);
        if evs.is_empty() {
            return true;
        }
        let resp = WatchResponse {
            header: self.header(header_rev),
            watch_id,
            events: evs,
            ..Default::default()
        };
        self.deliver(outbox, w, resp)
    }

    fn deliver(&self, outbox: &Outbox, w: &mut Watcher, resp: WatchResponse) -> bool {
        let parts = if w.fragment {
            fragments(resp, self.cfg.max_response_bytes)
        } else {
            vec![resp]
        };
        let ok = outbox.offer(parts);
        if ok {
            w.last_sent = Instant::now();
        }
        ok
    }

    /// Runs the sync thread's loop until [`Hub::stop`].
    pub fn run_sync(&self, history: &dyn History) {
        let mut last_progress = Instant::now();
        loop {
            {
                let mut inner = self.inner.lock();
                if inner.stopped {
                    return;
                }
                if inner.unsynced == 0 {
                    let wait = SYNC_EVERY.min(self.cfg.progress_interval);
                    self.wake.wait_for(&mut inner, wait);
                }
                if inner.stopped {
                    return;
                }
            }
            self.sync_once(history);
            if last_progress.elapsed() >= self.cfg.progress_interval {
                self.progress_notify();
                last_progress = Instant::now();
            }
        }
    }

    /// Stops the sync thread.
    pub fn stop(&self) {
        self.inner.lock().stopped = true;
        self.wake.notify_all();
    }

    /// One catch-up step for every unsynced watcher.
    fn sync_once(&self, history: &dyn History) {
        let (upto, from) = {
            let inner = self.inner.lock();
            if inner.unsynced == 0 {
                return;
            }
            let from = inner
                .streams
                .values()
                .flat_map(|s| s.watchers.values())
                .filter(|w| !w.synced)
                .map(|w| w.start)
                .min();
            match from {
                Some(f) => (inner.notified_rev, f),
                None => return,
            }
        };
        let compact = history.compact_revision();
        let read_from = from.max(compact).max(1);
        let to = upto.min(read_from.saturating_add(SYNC_CHUNK - 1));
        let (events, to) = if read_from <= to {
            match history.events(read_from, to, SYNC_BYTES) {
                Ok(read) => read,
                // Compacted meanwhile: the next step sees the new compaction.
                Err(_) => return,
            }
        } else {
            (Vec::new(), to)
        };

        let mut inner = self.inner.lock();
        let compact = history.compact_revision();
        let notified = inner.notified_rev;
        let mut resolved = 0;
        for stream in inner.streams.values_mut() {
            let mut canceled = Vec::new();
            for (&watch_id, w) in stream.watchers.iter_mut().filter(|(_, w)| !w.synced) {
                if w.start >= compact && stream.outbox.full() {
                    continue; // the stream is full: next step
                }
                if w.start < compact {
                    stream.outbox.control(WatchResponse {
                        header: Some(ResponseHeader {
                            revision: 0,
                            ..self.cfg.header
                        }),
                        watch_id,
                        canceled: true,
                        compact_revision: compact,
                        ..Default::default()
                    });
                    canceled.push(watch_id);
                    continue;
                }
                if w.start < read_from || (w.start > to && to < upto) {
                    continue; // not covered by the chunk read: next step
                }
                if !self.offer_events(&stream.outbox, w, watch_id, &events, to, upto, history) {
                    continue; // still full: try again next step
                }
                w.start = w.start.max(to + 1);
                if to < upto {
                    continue;
                }
                // Caught up with the snapshot; what was announced since is
                // read now, under the lock, so the hand-over has no gap.
                if notified > upto {
                    let (tail, covered) = match history.events(upto + 1, notified, usize::MAX) {
                        Ok(read) => read,
                        Err(_) => continue,
                    };
                    if !self.offer_events(&stream.outbox, w, watch_id, &tail, covered, covered, history) {
                        continue;
                    }
                    w.start = covered + 1;
                    if covered < notified {
                        continue; // the history source stopped short: next step
                    }
                }
                w.synced = true;
                resolved += 1;
            }
            for id in canceled {
                stream.watchers.remove(&id);
                resolved += 1;
            }
        }
        inner.unsynced -= resolved;
    }

    /// Sends an empty response to every synced watcher that asked for
    /// progress notifications and has had nothing for an interval.
    fn progress_notify(&self) {
        let mut inner = self.inner.lock();
        let rev = inner.notified_rev;
        let header = self.header(rev);
        for stream in inner.streams.values_mut() {
            for (&watch_id, w) in stream.watchers.iter_mut() {
                if w.synced && w.progress_notify && w.last_sent.elapsed() >= self.cfg.progress_interval {
                    let resp = WatchResponse {
                        header,
                        watch_id,
                        ..Default::default()
                    };
                    if stream.outbox.offer(vec![resp]) {
                        w.last_sent = Instant::now();
                    }
                }
            }
        }
    }

    /// Number of watchers (all streams).
    pub fn watcher_count(&self) -> usize {
        self.inner.lock().streams.values().map(|s| s.watchers.len()).sum()
    }

    /// Streams, watchers, and how far behind the unsynced ones are.
    pub fn stats(&self) -> HubStats {
        let inner = self.inner.lock();
        let mut stats = HubStats {
            streams: inner.streams.len(),
            ..HubStats::default()
        };
        for w in inner.streams.values().flat_map(|s| s.watchers.values()) {
            stats.watchers += 1;
            if !w.synced {
                stats.unsynced += 1;
                let behind = u64::try_from(inner.notified_rev + 1 - w.start).unwrap_or(0);
                stats.max_lag = stats.max_lag.max(behind);
            }
        }
        stats
    }
}

/// What a [`Hub`] holds at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Open watch streams.
    pub streams: usize,
    /// Watchers on them.
    pub watchers: usize,
    /// Watchers still catching up from history (etcd:
    /// `etcd_debugging_mvcc_slow_watcher_total`).
    pub unsynced: usize,
    /// Revisions the furthest-behind unsynced watcher still has to catch up.
    pub max_lag: u64,
}

/// One watch stream: many watchers, one ordered response queue. Dropping
/// it cancels its watchers.
pub struct WatchStream {
    hub: Arc<Hub>,
    id: u64,
    queued: Arc<AtomicUsize>,
    room: Arc<Room>,
}

impl WatchStream {
    /// Resolves once the stream's client has read enough of its answers
    /// that another request may be taken (see [`CONTROL_LIMIT`]), or has
    /// gone (its receiver dropped).
    pub async fn has_room(&self) {
        loop {
            let notified = self.room.notify.notified();
            if self.queued.load(Ordering::Acquire) < CONTROL_LIMIT || self.room.closed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Creates a watcher. The answer (created, or canceled with a reason)
    /// is queued on the stream before any of its events.
    ///
    /// `current_rev` is the applied revision as the caller saw it: a
    /// watcher without a start revision begins after everything applied,
    /// announced to the hub or not.
    pub fn create(&self, req: &WatchCreateRequest, current_rev: i64) {
        let hub = &self.hub;
        let mut inner = hub.inner.lock();
        let rev = inner.notified_rev.max(current_rev);
        let Some(stream) = inner.streams.get_mut(&self.id) else {
            return;
        };
        let watch_id = if req.watch_id != 0 {
            req.watch_id
        } else {
            while stream.watchers.contains_key(&stream.next_id) {
                stream.next_id += 1;
            }
            stream.next_id
        };
        let refused = if stream.watchers.contains_key(&watch_id) || watch_id < 0 {
            Some("mvcc: duplicate watch ID provided on the WatchStream".to_string())
        } else if stream.watchers.len() >= MAX_WATCHERS_PER_STREAM {
            Some(format!(
                "too many watchers on this stream (at most {MAX_WATCHERS_PER_STREAM}): open another stream"
            ))
        } else {
            None
        };
        if let Some(reason) = refused {
            stream.outbox.control(WatchResponse {
                header: hub.header(rev),
                watch_id,
                created: true,
                canceled: true,
                cancel_reason: reason,
                ..Default::default()
            });
            return;
        }
        if req.watch_id == 0 {
            stream.next_id += 1;
        }
        let (start, synced) = match req.start_revision {
            s if s <= 0 => (rev + 1, true),
            s if s > rev => (s, true),
            s => (s, false),
        };
        stream.outbox.control(WatchResponse {
            header: hub.header(rev),
            watch_id,
            created: true,
            ..Default::default()
        });
        stream.watchers.insert(
            watch_id,
            Watcher {
                sel: Selector::new(req.key.clone(), req.range_end.clone(), &req.filters),
                start,
                synced,
                prev_kv: req.prev_kv,
                progress_notify: req.progress_notify,
                fragment: req.fragment,
                last_sent: Instant::now(),
            },
        );
        if !synced {
            inner.unsynced += 1;
            hub.wake.notify_one();
        }
    }

    /// Refuses a create request: answered created and canceled with `reason`
    /// (and the watch ID asked for, or -1), no watcher made.
    pub fn refuse(&self, req: &WatchCreateRequest, current_rev: i64, reason: String) {
        let inner = self.hub.inner.lock();
        let rev = inner.notified_rev.max(current_rev);
        let Some(stream) = inner.streams.get(&self.id) else {
            return;
        };
        stream.outbox.control(WatchResponse {
            header: self.hub.header(rev),
            watch_id: if req.watch_id != 0 {
                req.watch_id
            } else {
                INVALID_WATCH_ID
            },
            created: true,
            canceled: true,
            cancel_reason: reason,
            ..Default::default()
        });
    }

    /// Cancels a watcher; an unknown ID gets no answer (as etcd).
    pub fn cancel(&self, watch_id: i64) {
        let mut inner = self.hub.inner.lock();
        let rev = inner.notified_rev;
        let Some(stream) = inner.streams.get_mut(&self.id) else {
            return;
        };
        if let Some(w) = stream.watchers.remove(&watch_id) {
            stream.outbox.control(WatchResponse {
                header: self.hub.header(rev),
                watch_id,
                canceled: true,
                ..Default::default()
            });
            if !w.synced {
                inner.unsynced -= 1;
            }
        }
    }

    /// Answers a progress request: if every watcher of the stream is synced,
    /// one response with watch ID -1 and the current revision (etcd 3.4).
    pub fn progress(&self) {
        let inner = self.hub.inner.lock();
        let Some(stream) = inner.streams.get(&self.id) else {
            return;
        };
        if stream.watchers.values().all(|w| w.synced) {
            stream.outbox.control(WatchResponse {
                header: self.hub.header(inner.notified_rev),
                watch_id: INVALID_WATCH_ID,
                ..Default::default()
            });
        }
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        let mut inner = self.hub.inner.lock();
        if let Some(stream) = inner.streams.remove(&self.id) {
            let unsynced = stream.watchers.values().filter(|w| !w.synced).count();
            inner.unsynced -= unsynced;
        }
    }
}

#[cfg(test)]
mod tests;
