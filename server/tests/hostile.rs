//! What a hostile client sends on the client port must not grow the
//! server: HTTP/2 CONTINUATION floods and HPACK bombs (the connection
//! wrapper in front of the HTTP/2 library buffers and decodes nothing past
//! small bounds; the library then refuses the connection).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::Server;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn rss_mib(endpoint: &str) -> f64 {
    common::scrape(endpoint).0["process_resident_memory_bytes"] / 1024.0 / 1024.0
}

/// Sends `bytes` until the server stops reading or closes; how much went.
fn flood(c: &mut TcpStream, chunk: &[u8], total: usize) -> usize {
    let mut sent = 0;
    while sent < total {
        if c.write_all(chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    sent
}

/// Waits until the server has handled everything sent on `c`: it answers
/// a PING sent last (frames are handled in order), or closes.
fn processed(c: &mut TcpStream) {
    use std::io::Read;
    if c.write_all(&frame(0x6, 0, 0, b"12345678")).is_err() {
        return;
    }
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 9];
    loop {
        if c.read_exact(&mut head).is_err() {
            return; // closed
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        if c.read_exact(&mut payload).is_err() {
            return;
        }
        if head[3] == 0x6 && head[4] & 0x1 != 0 {
            return;
        }
    }
}

#[test]
fn a_continuation_flood_does_not_grow_the_server() {
    let s = Server::concord();
    let before = rss_mib(&s.endpoint);
    let mut c = TcpStream::connect(&s.endpoint).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(PREFACE).unwrap();
    c.write_all(&frame(0x4, 0, 0, &[])).unwrap();
    // HEADERS without END_HEADERS, then CONTINUATION after CONTINUATION.
    c.write_all(&frame(0x1, 0, 1, &[0x82])).unwrap();
    let cont = frame(0x9, 0, 1, &[0x82; 16_384]);
    let mut batch = Vec::new();
    for _ in 0..64 {
        batch.extend_from_slice(&cont);
    }
    let sent = flood(&mut c, &batch, 400 << 20);
    processed(&mut c);
    let after = rss_mib(&s.endpoint);
    eprintln!(
        "CONTINUATION flood: {} MiB sent, RSS {before:.1} -> {after:.1} MiB",
        sent >> 20
    );
    assert!(after - before < 48.0, "RSS grew from {before:.1} to {after:.1} MiB");
    assert_eq!(common::http(&s.endpoint, "GET", "/health", "").unwrap().0, 200);
}

#[test]
fn an_hpack_bomb_does_not_grow_the_server() {
    let s = Server::concord();
    let before = rss_mib(&s.endpoint);
    let mut conns = Vec::new();
    for _ in 0..20 {
        // A 4000-byte entry into the dynamic table, then referenced ~12,000
        // times: 16 KiB that would decode to about 48 MB.
        let mut block = vec![0x40, 0x01, b'x', 0x7f];
        let mut n = 4000 - 127;
        while n >= 128 {
            block.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        block.push(n as u8);
        block.extend(std::iter::repeat_n(b'v', 4000));
        block.extend(std::iter::repeat_n(0xbe, 16_384 - block.len()));
        let mut c = TcpStream::connect(&s.endpoint).unwrap();
        c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(PREFACE);
        let _ = c.write_all(&frame(0x4, 0, 0, &[]));
        let _ = c.write_all(&frame(0x1, 0x4 | 0x1, 1, &block));
        conns.push(c);
    }
    for c in &mut conns {
        processed(c);
    }
    let after = rss_mib(&s.endpoint);
    eprintln!("HPACK bombs: RSS {before:.1} -> {after:.1} MiB");
    assert!(after - before < 48.0, "RSS grew from {before:.1} to {after:.1} MiB");
    assert_eq!(common::http(&s.endpoint, "GET", "/health", "").unwrap().0, 200);
}

/// One HTTP/1.1 request on a kept-alive connection; (status, body).
fn keep_alive_request(c: &mut TcpStream, path: &str, body: &str) -> (u16, String) {
    use std::io::{BufRead, BufReader, Read};
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    let mut len = 0;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut out = vec![0; len];
    r.read_exact(&mut out).unwrap();
    (status, String::from_utf8_lossy(&out).into())
}

/// Idle sockets cannot take the descriptors the write path needs: with an
/// open-file limit of 512 and 560 idle connections tried (more than the
/// 256 it serves), the member still writes 78 MiB (the log opens a new
/// segment file, which failed with EMFILE before the limit) and
/// defragments, and a new client gets in once the idle ones go.
/// `CONCORD_TEST_IDLE_CONNECTIONS=10000` tries 10,000 against a limit of
/// 8,192 instead.
#[test]
fn idle_connections_cannot_starve_the_write_path() {
    let tries: usize = std::env::var("CONCORD_TEST_IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(560);
    let nofile = if tries > 560 { 8192 } else { 512 };
    let _ = rlimit::increase_nofile_limit(tries as u64 + 4096);
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let log = tmp.path().join("log");
    let _server = common::Reaped(
        std::process::Command::new("prlimit")
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg(env!("CARGO_BIN_EXE_concord"))
            .arg("--data-dir")
            .arg(tmp.path().join("d"))
            .args(["--listen-client-urls", &format!("http://{endpoint}")])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", common::free_port()),
            ])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !matches!(common::http(&endpoint, "GET", "/health", ""), Ok((200, _))) {
        assert!(std::time::Instant::now() < deadline, "not healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut kept = TcpStream::connect(&endpoint).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let put = r#"{"key":"aw==","value":"dg=="}"#;
    assert_eq!(keep_alive_request(&mut kept, "/v3/kv/put", put).0, 200);
    // Idle sockets: each sends one byte so it is past the silent-socket
    // check, then nothing more.
    let t0 = std::time::Instant::now();
    // More than the member's descriptors: without a limit it would run
    // out of them. Past the limit, connections are not accepted (their
    // SYNs wait in the kernel), so each try gives up quickly.
    let addr: std::net::SocketAddr = endpoint.parse().unwrap();
    let mut idle = Vec::new();
    for i in 0..tries {
        if i % 500 == 499 {
            // The kept connection stays in use (an idle one is closed
            // after the header timeout, and a large flood takes a while).
            assert_eq!(keep_alive_request(&mut kept, "/v3/kv/range", put).0, 200);
        }
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(20)) {
            let _ = s.write_all(b"G");
            idle.push(s);
        }
    }
    eprintln!("{} idle sockets connected in {:?}", idle.len(), t0.elapsed());
    assert!(idle.len() >= nofile / 2, "the flood did not reach the limit");
    // 78 MiB of writes: the log moves to a new segment, a new file.
    let big = format!(r#"{{"key":"Yg==","value":"{}"}}"#, "eHh4".repeat(1 << 18));
    for i in 0..100 {
        let (status, body) = keep_alive_request(&mut kept, "/v3/kv/put", &big);
        assert_eq!(status, 200, "put {i} with the sockets held: {body}");
    }
    let (status, body) = keep_alive_request(&mut kept, "/v3/maintenance/defragment", "{}");
    assert_eq!(status, 200, "defragment with the sockets held: {body}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("client connection limit reached"), "{text}");
    drop(idle);
    let wait = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((200, _)) = common::http(&endpoint, "POST", "/v3/kv/range", r#"{"key":"aw=="}"#) {
            break;
        }
        assert!(std::time::Instant::now() < wait, "no new client got in");
        std::thread::sleep(Duration::from_millis(50));
    }
}
