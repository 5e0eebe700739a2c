//! The gateway's streaming calls over WebSocket (`GET /v3/watch`,
//! `GET /v3/lease/keepalive` with an upgrade), against Concord and, for the
//! shape of the messages, side by side with etcd 3.4's gateway.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{b64, http, mask_ids, Server};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

type Socket = WebSocket<TcpStream>;

/// Opens `ws://endpoint/path`, with extra request headers.
fn open(
    endpoint: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut req = format!("ws://{endpoint}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, HeaderValue::from_str(v).unwrap());
    }
    let tcp = TcpStream::connect(endpoint).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tungstenite::client(req, tcp).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => panic!("blocking socket interrupted"),
    })
}

fn send(ws: &mut Socket, v: Value) {
    ws.send(Message::Text(v.to_string().into())).unwrap();
}

/// The next JSON message (pings skipped).
fn recv(ws: &mut Socket) -> Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

fn put(endpoint: &str, key: &str, value: &str) {
    let body = json!({ "key": b64(key), "value": b64(value) }).to_string();
    let (status, out) = http(endpoint, "POST", "/v3/kv/put", &body).unwrap();
    assert_eq!(status, 200, "{out}");
}

/// One scripted watch session; the messages received, IDs masked.
fn watch_session(endpoint: &str) -> Vec<Value> {
    let (mut ws, _) = open(endpoint, "/v3/watch", &[]).unwrap();
    let mut seen = Vec::new();
    send(
        &mut ws,
        json!({ "create_request": { "key": b64("ws/a"), "watch_id": 7 } }),
    );
    seen.push(recv(&mut ws));
    // A second watcher on the same socket.
    send(
        &mut ws,
        json!({ "create_request": { "key": b64("ws/b"), "watch_id": 8 } }),
    );
    seen.push(recv(&mut ws));
    put(endpoint, "ws/a", "1");
    seen.push(recv(&mut ws));
    put(endpoint, "ws/b", "2");
    seen.push(recv(&mut ws));
    // Cancel the first: only the second's events come after.
    send(&mut ws, json!({ "cancel_request": { "watch_id": 7 } }));
    seen.push(recv(&mut ws));
    put(endpoint, "ws/a", "3");
    put(endpoint, "ws/b", "4");
    seen.push(recv(&mut ws));
    ws.close(None).unwrap();
    for v in &mut seen {
        mask_ids(v);
        if let Some(h) = v.pointer_mut("/result/header/revision") {
            *h = json!("<rev>");
        }
    }
    seen
}

#[test]
fn watch_over_a_socket_is_the_whole_stream_and_matches_etcd() {
    let concord = Server::concord();
    let ours = watch_session(&concord.endpoint);
    assert_eq!(ours[0]["result"]["created"], json!(true), "{ours:?}");
    assert_eq!(ours[0]["result"]["watch_id"], json!("7"));
    assert_eq!(ours[2]["result"]["events"][0]["kv"]["value"], json!(b64("1")));
    assert_eq!(ours[4]["result"]["canceled"], json!(true));
    assert_eq!(
        ours[5]["result"]["watch_id"],
        json!("8"),
        "the canceled watcher is silent"
    );
    assert_eq!(ours[5]["result"]["events"][0]["kv"]["value"], json!(b64("4")));
    let etcd = Server::etcd();
    let theirs = watch_session(&etcd.endpoint);
    assert_eq!(ours, theirs, "the same messages as etcd 3.4's gateway");
}

#[test]
fn a_lease_is_kept_alive_over_a_socket() {
    let s = Server::concord();
    let (_, out) = http(&s.endpoint, "POST", "/v3/lease/grant", r#"{"TTL": 2}"#).unwrap();
    let id = serde_json::from_str::<Value>(&out).unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut ws, _) = open(&s.endpoint, "/v3/lease/keepalive", &[]).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        send(&mut ws, json!({ "ID": id }));
        let r = recv(&mut ws);
        assert_eq!(r["result"]["ID"], json!(id), "{r}");
        assert_eq!(r["result"]["TTL"], json!("2"), "{r}");
        std::thread::sleep(Duration::from_millis(700));
    }
    let (_, ttl) = http(
        &s.endpoint,
        "POST",
        "/v3/lease/timetolive",
        &json!({ "ID": id }).to_string(),
    )
    .unwrap();
    let ttl: Value = serde_json::from_str(&ttl).unwrap();
    assert!(
        ttl["TTL"].as_str().unwrap().parse::<i64>().unwrap() > 0,
        "alive after 5 s: {ttl}"
    );
    // A bad message ends the stream with etcd's error line.
    ws.send(Message::Text("{not json".into())).unwrap();
    let r = recv(&mut ws);
    assert!(r["error"]["message"].is_string(), "{r}");
}

#[test]
fn a_browser_authenticates_with_the_bearer_subprotocol() {
    let s = Server::concord();
    http(
        &s.endpoint,
        "POST",
        "/v3/auth/user/add",
        r#"{"name":"root","password":"pw"}"#,
    )
    .unwrap();
    http(&s.endpoint, "POST", "/v3/auth/role/add", r#"{"name":"root"}"#).unwrap();
    http(
        &s.endpoint,
        "POST",
        "/v3/auth/user/grant",
        r#"{"user":"root","role":"root"}"#,
    )
    .unwrap();
    let (status, out) = http(&s.endpoint, "POST", "/v3/auth/enable", "{}").unwrap();
    assert_eq!(status, 200, "{out}");
    let (_, out) = http(
        &s.endpoint,
        "POST",
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"pw"}"#,
    )
    .unwrap();
    let token = serde_json::from_str::<Value>(&out).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Without a token, the socket is refused: no identity, no stream.
    match open(&s.endpoint, "/v3/watch", &[]) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        Err(e) => panic!("refused otherwise: {e}"),
        Ok(_) => panic!("an anonymous watch socket was opened while auth is on"),
    }

    // With it, as a browser sends it: subprotocols "Bearer, <token>".
    let (mut ws, resp) = open(
        &s.endpoint,
        "/v3/watch",
        &[("Sec-WebSocket-Protocol", &format!("Bearer, {token}"))],
    )
    .unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "Bearer");
    send(&mut ws, json!({ "create_request": { "key": b64("k") } }));
    let r = recv(&mut ws);
    assert_eq!(r["result"]["created"], json!(true), "{r}");
    assert!(r["result"]["canceled"].is_null(), "{r}");
}

#[test]
fn an_origin_not_allowed_by_cors_cannot_open_a_socket() {
    let s = Server::concord_with(&["--cors", "http://good.example"]);
    assert!(open(&s.endpoint, "/v3/watch", &[("Origin", "http://good.example")]).is_ok());
    assert!(open(&s.endpoint, "/v3/watch", &[]).is_ok(), "not a browser: no Origin");
    match open(&s.endpoint, "/v3/watch", &[("Origin", "http://evil.example")]) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
}
