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
