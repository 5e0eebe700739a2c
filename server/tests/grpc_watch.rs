//! gRPC Watch with many watchers on one stream, driven by a tonic client
//! generated from the same proto: create (auto and client-chosen IDs),
//! events routed per watcher, cancel, progress request, fragments.

mod common;

use common::Server;
use concord_core::api::etcdserverpb::watch_request::RequestUnion;
use concord_core::api::etcdserverpb::{
    PutRequest, WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use concord_server::pb::etcdserverpb::kv_client::KvClient;
use concord_server::pb::etcdserverpb::watch_client::WatchClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

fn create(key: &str, end: &str, id: i64) -> WatchRequest {
    let c = WatchCreateRequest {
        key: key.into(),
        range_end: end.into(),
        watch_id: id,
        ..Default::default()
    };
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(c)),
    }
}

async fn next(s: &mut Streaming<WatchResponse>) -> WatchResponse {
    tokio::time::timeout(std::time::Duration::from_secs(10), s.message())
        .await
        .expect("in time")
        .unwrap()
        .unwrap()
}

/// Opens a Watch call whose requests come from `rx` (queue the first
/// before calling: a server may send its headers only with its first message).
async fn open_watch(url: String, rx: mpsc::Receiver<WatchRequest>) -> Streaming<WatchResponse> {
    WatchClient::connect(url)
        .await
        .unwrap()
        .watch(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner()
}

async fn put(kv: &mut KvClient<tonic::transport::Channel>, k: &str, v: Vec<u8>) {
    kv.put(PutRequest {
        key: k.into(),
        value: v,
        ..Default::default()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn many_watchers_on_one_stream() {
    let s = Server::concord();
    let url = format!("http://{}", s.endpoint);
    let mut kv = KvClient::connect(url.clone()).await.unwrap();
    let (tx, rx) = mpsc::channel(16);
    tx.send(create("a", "", 0)).await.unwrap();
    let mut stream = open_watch(url, rx).await;
    tx.send(create("b/", "b0", 100)).await.unwrap();
    tx.send(create("b/x", "", 0)).await.unwrap();
    let ids: Vec<i64> = [
        next(&mut stream).await,
        next(&mut stream).await,
        next(&mut stream).await,
    ]
    .iter()
    .inspect(|r| assert!(r.created && !r.canceled))
    .map(|r| r.watch_id)
    .collect();
    assert_eq!(ids, vec![0, 100, 1], "auto IDs count from 0, skipping none");

    put(&mut kv, "b/x", b"1".to_vec()).await; // rev 2: watchers 100 and 1
    put(&mut kv, "a", b"2".to_vec()).await; // rev 3: watcher 0
    let mut got: Vec<(i64, i64)> = Vec::new();
    for _ in 0..3 {
        let r = next(&mut stream).await;
        got.extend(
            r.events
                .iter()
                .map(|e| (r.watch_id, e.kv.as_ref().unwrap().mod_revision)),
        );
    }
    got.sort_unstable();
    assert_eq!(got, vec![(0, 3), (1, 2), (100, 2)]);

    tx.send(WatchRequest {
        request_union: Some(RequestUnion::CancelRequest(WatchCancelRequest { watch_id: 100 })),
    })
    .await
    .unwrap();
    let r = next(&mut stream).await;
    assert!(r.canceled && r.watch_id == 100);
    tx.send(WatchRequest {
        request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})),
    })
    .await
    .unwrap();
    let r = next(&mut stream).await;
    assert_eq!((r.watch_id, r.header.unwrap().revision), (-1, 3));
    put(&mut kv, "b/y", vec![]).await; // canceled watcher: nothing
    put(&mut kv, "b/x", vec![]).await; // rev 5: watcher 1 only
    let r = next(&mut stream).await;
    assert_eq!((r.watch_id, r.events.len()), (1, 1));
    assert_eq!(r.header.unwrap().revision, 5);
}

#[tokio::test]
async fn large_responses_are_fragmented_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::concord_in(&tmp.path().join("d"), &["--max-request-bytes", "10000"]);
    let url = format!("http://{}", s.endpoint);
    let mut kv = KvClient::connect(url.clone()).await.unwrap();
    // Six 3 KB puts (each under the limit), then a watcher replaying them:
    // its catch-up response holds about 18 KB of events.
    for i in 0..6 {
        put(&mut kv, &format!("f/{i}"), vec![b'x'; 3000]).await;
    }
    let (tx, rx) = mpsc::channel(4);
    let c = WatchCreateRequest {
        key: "f/".into(),
        range_end: "f0".into(),
        start_revision: 2,
        fragment: true,
        ..Default::default()
    };
    tx.send(WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(c)),
    })
    .await
    .unwrap();
    let mut stream = open_watch(url, rx).await;
    assert!(next(&mut stream).await.created);
    let mut parts = Vec::new();
    loop {
        let r = next(&mut stream).await;
        let more = r.fragment;
        parts.push(r);
        if !more {
            break;
        }
    }
    assert!(parts.len() >= 2, "split into fragments");
    let keys: Vec<Vec<u8>> = parts
        .iter()
        .flat_map(|p| p.events.iter().map(|e| e.kv.as_ref().unwrap().key.clone()))
        .collect();
    assert_eq!(keys, (0..6).map(|i| format!("f/{i}").into_bytes()).collect::<Vec<_>>());
}
