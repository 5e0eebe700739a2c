//! Hub tests over an in-memory key space: live delivery, filters, cancel,
//! progress, compaction, and the history-to-live hand-over under
//! concurrent writes (no gap, no duplicate), including a slow consumer.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;

use super::*;
use crate::api::etcdserverpb::watch_create_request::FilterType;
use crate::api::etcdserverpb::{CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest};
use crate::mvcc::{MemBackend, Mvcc, NoLeases};

#[derive(Default)]
struct Mem {
    kv: Mutex<(Mvcc, MemBackend)>,
}

impl History for Mem {
    fn events(&self, from: i64, to: i64, max_bytes: usize) -> Result<(Vec<Event>, i64), EtcdError> {
        let g = self.kv.lock();
        // A small budget here makes catch-up take many steps.
        Ok(g.0.history(&g.1, from, to, max_bytes.min(2048))?)
    }

    fn prev_kv(&self, key: &[u8], rev: i64) -> Option<KeyValue> {
        let g = self.kv.lock();
        let req = RangeRequest {
            key: key.to_vec(),
            revision: rev - 1,
            ..Default::default()
        };
        g.0.range(&g.1, &req).ok()?.kvs.pop()
    }

    fn compact_revision(&self) -> i64 {
        self.kv.lock().0.compact_revision()
    }
}

impl Mem {
    fn put(&self, hub: &Hub, key: &str, value: &str) -> i64 {
        let (rev, events) = {
            let mut g = self.kv.lock();
            let (m, b) = &mut *g;
            let req = PutRequest {
                key: key.into(),
                value: value.into(),
                ..Default::default()
            };
            m.put(b, &mut NoLeases, &req).unwrap();
            (m.current_revision(), m.take_events())
        };
        hub.notify(rev, &events, self);
        rev
    }

    fn delete(&self, hub: &Hub, key: &str) {
        let (rev, events) = {
            let mut g = self.kv.lock();
            let (m, b) = &mut *g;
            m.delete_range(
                b,
                &mut NoLeases,
                &DeleteRangeRequest {
                    key: key.into(),
                    ..Default::default()
                },
            )
            .unwrap();
            (m.current_revision(), m.take_events())
        };
        hub.notify(rev, &events, self);
    }
}

fn hub(progress: Duration) -> Arc<Hub> {
    let header = ResponseHeader {
        cluster_id: 1,
        member_id: 2,
        revision: 0,
        raft_term: 3,
    };
    Arc::new(Hub::new(
        HubConfig {
            header,
            progress_interval: progress,
            max_response_bytes: 1 << 20,
        },
        1,
    ))
}

fn start_sync(hub: &Arc<Hub>, mem: &Arc<Mem>) -> thread::JoinHandle<()> {
    let (hub, mem) = (Arc::clone(hub), Arc::clone(mem));
    thread::spawn(move || hub.run_sync(&*mem))
}

fn next(rx: &mut WatchReceiver) -> Option<WatchResponse> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .ok()
            .flatten()
    })
}

fn create(key: &str, end: &str, start: i64) -> WatchCreateRequest {
    WatchCreateRequest {
        key: key.into(),
        range_end: end.into(),
        start_revision: start,
        ..Default::default()
    }
}

fn revs(r: &WatchResponse) -> Vec<i64> {
    r.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision).collect()
}

#[test]
fn live_events_filters_prev_kv_cancel() {
    let (hub, mem) = (hub(Duration::from_secs(600)), Arc::new(Mem::default()));
    let (ws, mut rx) = hub.open();
    ws.create(&create("a", "b", 0), 1);
    let created = next(&mut rx).unwrap();
    assert!(created.created && created.watch_id == 0);
    assert_eq!(created.header.unwrap().revision, 1);
    assert_eq!(created.header.unwrap().member_id, 2);
    ws.create(
        &WatchCreateRequest {
            key: "a1".into(),
            prev_kv: true,
            filters: vec![FilterType::Noput as i32],
            ..Default::default()
        },
        1,
    );
    assert_eq!(next(&mut rx).unwrap().watch_id, 1);

    mem.put(&hub, "a1", "x"); // rev 2
    mem.put(&hub, "zz", "y"); // rev 3: not watched
    mem.delete(&hub, "a1"); // rev 4
    let r = next(&mut rx).unwrap();
    assert_eq!((r.watch_id, revs(&r)), (0, vec![2]));
    assert_eq!(r.header.unwrap().revision, 2);
    let r = next(&mut rx).unwrap();
    assert_eq!((r.watch_id, revs(&r)), (0, vec![4]));
    let r = next(&mut rx).unwrap();
    assert_eq!((r.watch_id, revs(&r)), (1, vec![4]), "NOPUT drops the put");
    assert_eq!(r.events[0].prev_kv.as_ref().unwrap().value, b"x");

    ws.cancel(0);
    let r = next(&mut rx).unwrap();
    assert!(r.canceled && r.watch_id == 0);
    ws.cancel(99); // unknown: no answer
    ws.create(&create("a", "", 0), 4);
    ws.create(
        &WatchCreateRequest {
            key: "a".into(),
            watch_id: 1,
            ..Default::default()
        },
        4,
    );
    assert!(next(&mut rx).unwrap().created);
    let dup = next(&mut rx).unwrap();
    assert!(dup.created && dup.canceled && dup.watch_id == 1);
    assert_eq!(
        dup.cancel_reason,
        "mvcc: duplicate watch ID provided on the WatchStream"
    );
    ws.progress();
    let p = next(&mut rx).unwrap();
    assert_eq!((p.watch_id, p.header.unwrap().revision), (INVALID_WATCH_ID, 4));
    drop(ws);
    assert_eq!(hub.watcher_count(), 0);
}

#[test]
fn history_is_replayed_then_live_follows_without_gap_or_duplicate() {
    let (hub, mem) = (hub(Duration::from_secs(600)), Arc::new(Mem::default()));
    let sync = start_sync(&hub, &mem);
    for i in 0..300 {
        mem.put(&hub, &format!("k{}", i % 7), "v");
    }
    let writer = {
        let (hub, mem) = (Arc::clone(&hub), Arc::clone(&mem));
        thread::spawn(move || {
            for i in 0..3000 {
                mem.put(&hub, &format!("k{}", i % 7), "v");
            }
        })
    };
    // Created in the past while writes go on: history, then live.
    let (ws, mut rx) = hub.open();
    ws.create(&create("k", "l", 2), mem.kv.lock().0.current_revision());
    assert!(next(&mut rx).unwrap().created);
    let mut seen = Vec::new();
    while seen.last() != Some(&3301) {
        let r = next(&mut rx).expect("events keep coming");
        assert!(!r.events.is_empty());
        seen.extend(revs(&r));
    }
    writer.join().unwrap();
    assert_eq!(seen, (2..=3301).collect::<Vec<_>>());
    hub.stop();
    sync.join().unwrap();
}

#[test]
fn a_slow_consumer_never_blocks_writers_and_loses_nothing() {
    let (hub, mem) = (hub(Duration::from_secs(600)), Arc::new(Mem::default()));
    let sync = start_sync(&hub, &mem);
    let (ws, mut rx) = hub.open();
    ws.create(&create("k", "l", 0), 1);
    // Nobody reads while 5,000 writes happen: far more than the stream holds.
    for i in 0..5000 {
        mem.put(&hub, &format!("k{}", i % 3), "v");
    }
    let mut seen = Vec::new();
    let mut responses = 0;
    while seen.last() != Some(&5001) {
        let r = next(&mut rx).expect("catch-up delivers everything");
        responses += 1;
        seen.extend(revs(&r));
    }
    assert_eq!(seen, (2..=5001).collect::<Vec<_>>());
    assert!(responses <= 5000);
    hub.stop();
    sync.join().unwrap();
}

#[test]
fn a_compacted_start_cancels_the_watcher() {
    let (hub, mem) = (hub(Duration::from_secs(600)), Arc::new(Mem::default()));
    let sync = start_sync(&hub, &mem);
    for _ in 0..5 {
        mem.put(&hub, "k", "v");
    }
    {
        let mut g = mem.kv.lock();
        let (m, b) = &mut *g;
        m.compact(
            b,
            &CompactionRequest {
                revision: 4,
                physical: true,
            },
        )
        .unwrap();
    }
    let (ws, mut rx) = hub.open();
    ws.create(&create("k", "", 2), 6);
    assert!(next(&mut rx).unwrap().created);
    let r = next(&mut rx).unwrap();
    assert!(r.canceled);
    assert_eq!(r.compact_revision, 4);
    assert_eq!(r.header.unwrap().revision, 0);
    // At the compaction revision itself history is still there.
    ws.create(&create("k", "", 4), 6);
    assert!(next(&mut rx).unwrap().created);
    assert_eq!(revs(&next(&mut rx).unwrap()), vec![4, 5, 6]);
    hub.stop();
    sync.join().unwrap();
}

#[test]
fn progress_notifications_reach_quiet_watchers() {
    let (hub, mem) = (hub(Duration::from_millis(100)), Arc::new(Mem::default()));
    let sync = start_sync(&hub, &mem);
    let (ws, mut rx) = hub.open();
    ws.create(
        &WatchCreateRequest {
            key: "k".into(),
            progress_notify: true,
            ..Default::default()
        },
        1,
    );
    assert!(next(&mut rx).unwrap().created);
    mem.put(&hub, "other", "v");
    let p = next(&mut rx).unwrap();
    assert!(p.events.is_empty() && !p.created);
    assert_eq!(p.header.unwrap().revision, 2);
    hub.stop();
    sync.join().unwrap();
}

#[test]
fn stats_count_streams_watchers_and_the_catch_up_lag() {
    let (hub, mem) = (hub(Duration::from_secs(600)), Arc::new(Mem::default()));
    for i in 0..10 {
        mem.put(&hub, &format!("k{i}"), "v");
    }
    assert_eq!(hub.stats(), HubStats::default());
    let (a, _rx_a) = hub.open();
    let (b, _rx_b) = hub.open();
    let now = mem.kv.lock().0.current_revision();
    a.create(&create("k", "l", 0), now);
    // From revision 3 while the store is at 11, with no sync thread
    // running: it stays behind by 11 + 1 - 3 revisions.
    b.create(&create("k", "l", 3), now);
    b.create(&create("x", "", 0), now);
    let s = hub.stats();
    assert_eq!(
        (s.streams, s.watchers, s.unsynced, s.max_lag),
        (2, 3, 1, now as u64 - 2)
    );
    drop(b);
    assert_eq!(
        hub.stats(),
        HubStats {
            streams: 1,
            watchers: 1,
            unsynced: 0,
            max_lag: 0
        }
    );
    drop(a);
}

#[test]
fn a_client_that_reads_nothing_is_not_read_either() {
    let (hub, mem) = (hub(Duration::from_secs(600)), Arc::new(Mem::default()));
    let (ws, mut rx) = hub.open();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let room = |ws: &WatchStream| {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(100), ws.has_room())
                .await
                .is_ok()
        })
    };
    assert!(room(&ws));
    // Every create queues an answer nobody reads.
    for i in 0..CONTROL_LIMIT {
        ws.create(&create(&format!("k{i}"), "", 0), mem.kv.lock().0.current_revision());
    }
    assert!(!room(&ws), "the reader must wait");
    // The client reads one answer: there is room again.
    assert!(next(&mut rx).unwrap().created);
    assert!(room(&ws));
    for i in 0..4 {
        ws.create(&create(&format!("x{i}"), "", 0), 1);
    }
    assert!(!room(&ws));
    // The client goes away: the reader is let go, to find the stream closed.
    drop(rx);
    assert!(room(&ws));
}

#[test]
fn a_stream_holds_a_bounded_number_of_watchers() {
    let hub = hub(Duration::from_secs(600));
    let (ws, mut rx) = hub.open();
    let reader = std::thread::spawn(move || {
        let mut last = None;
        for _ in 0..=MAX_WATCHERS_PER_STREAM {
            last = next(&mut rx);
        }
        last.unwrap()
    });
    for _ in 0..=MAX_WATCHERS_PER_STREAM {
        ws.create(&create("k", "", 0), 1);
    }
    let r = reader.join().unwrap();
    assert!(r.created && r.canceled, "{r:?}");
    assert!(r.cancel_reason.contains("too many watchers"), "{}", r.cancel_reason);
    assert_eq!(hub.watcher_count(), MAX_WATCHERS_PER_STREAM);
}
