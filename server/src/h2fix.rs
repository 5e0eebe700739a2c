//! A client-side quirk made harmless: etcdctl 3.4's `endpoint status
//! --cluster` (and `endpoint health --cluster`) dial the member list's
//! client URLs with grpc-go, which then sends the whole URL,
//! `http://host:port`, as the HTTP/2 `:authority`. etcd's grpc-go server
//! does not look at it; the `h2` crate under our server refuses such a
//! stream as malformed. This wrapper sits on the read side of a client
//! connection: when the connection speaks HTTP/2, it decodes each header
//! block the client sends (HPACK), and once a block carries an authority
//! with a scheme, it re-encodes that block and every later one (literal
//! fields, no compression state) with the scheme cut off. Everything else
//! (the preface, DATA, SETTINGS, …) passes through unchanged, and HTTP/1
//! connections are not touched at all. A connection whose first header
//! block is fine is not looked at again (decoding every block would cost
//! more than the request itself).
//!
//! Everything the wrapper holds is bounded, and nothing a client sends can
//! make it panic: a frame longer than the server's largest, a header block
//! longer than [`MAX_BLOCK`], a block that is not well-formed HPACK (cut-off
//! integers, a table size update past [`TABLE_SIZE`]) or one that would
//! decode to more than [`DECODE_BUDGET`] bytes make it stop looking and
//! pass the connection on as it is: the HTTP/2 library judges it with its
//! own limits (frame size, header list size, CONTINUATION floods).
//!
//! On the write side, HTTP/2 output is held back for one turn of the
//! scheduler so that the answers of a batch of requests leave in one
//! system call (see the `AsyncWrite` implementation).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame payload the server accepts before settings say more.
const MAX_FRAME: usize = 16_384;
/// The longest header block (HEADERS and its CONTINUATION frames) looked
/// at; a longer one is passed on untouched.
pub const MAX_BLOCK: usize = 64 * 1024;
/// The most bytes a looked-at block may decode to (indexed fields can
/// expand a small block many times over).
pub const DECODE_BUDGET: usize = 256 * 1024;
/// The HPACK dynamic table size the server advertises (the protocol's
/// default): a client may not ask for a larger table.
const TABLE_SIZE: usize = 4096;

enum Mode {
    /// Waiting for enough bytes to tell HTTP/2 from HTTP/1.
    Sniff,
    /// HTTP/2: frames are parsed.
    Http2,
    /// Not HTTP/2 (or a frame we could not parse): bytes pass through.
    Passthrough,
}

/// A header block being collected (HEADERS + CONTINUATION frames).
struct Block {
    stream: [u8; 4],
    flags: u8,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The original frames, forwarded as they are unless rewriting.
    original: Vec<u8>,
}

/// See the module documentation.
pub struct AuthorityFix<S> {
    inner: S,
    mode: Mode,
    input: Vec<u8>,
    output: Vec<u8>,
    out_pos: usize,
    decoder: fluke_hpack::Decoder<'static>,
    block: Option<Block>,
    /// Once one block was rewritten, all later ones are too (the server's
    /// decoder then follows our encoding, not the client's).
    rewriting: bool,
    eof: bool,
    /// HTTP/2 output held back for one turn of the scheduler (see
    /// [`AsyncWrite`] below).
    held: Vec<u8>,
    /// Whether the connection already let other tasks run since it last
    /// asked to flush `held`.
    yielded: bool,
    /// The client spoke HTTP/2 (its preface was seen).
    http2: bool,
}

impl<S> AuthorityFix<S> {
    /// Wraps a client connection.
    pub fn new(inner: S) -> Self {
        let mut decoder = fluke_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        AuthorityFix {
            inner,
            mode: Mode::Sniff,
            input: Vec::new(),
            output: Vec::new(),
            out_pos: 0,
            decoder,
            block: None,
            rewriting: false,
            eof: false,
            held: Vec::new(),
            yielded: false,
            http2: false,
        }
    }

    /// Moves every whole unit of `input` to `output`, rewritten as needed.
    fn process(&mut self) {
        loop {
            match self.mode {
                Mode::Sniff => {
                    let n = self.input.len().min(PREFACE.len());
                    if self.input[..n] != PREFACE[..n] {
                        self.mode = Mode::Passthrough;
                    } else if self.input.len() >= PREFACE.len() {
                        self.output.extend(self.input.drain(..PREFACE.len()));
                        self.mode = Mode::Http2;
                        self.http2 = true;
                    } else {
                        return;
                    }
                }
                Mode::Passthrough => {
                    self.output.append(&mut self.input);
                    return;
                }
                Mode::Http2 => {
                    if self.input.len() < 9 {
                        return;
                    }
                    let len =
                        usize::from(self.input[0]) << 16 | usize::from(self.input[1]) << 8 | usize::from(self.input[2]);
                    if len > MAX_FRAME {
                        // Not ours to buffer: the library refuses it.
                        self.give_up(Vec::new());
                        continue;
                    }
                    if self.input.len() < 9 + len {
                        return;
                    }
                    let frame: Vec<u8> = self.input.drain(..9 + len).collect();
                    self.frame(frame);
                }
            }
        }
    }

    fn frame(&mut self, frame: Vec<u8>) {
        let (kind, flags) = (frame[3], frame[4]);
        let stream = [frame[5], frame[6], frame[7], frame[8]];
        if self.block.is_some() && kind != CONTINUATION {
            // Only CONTINUATION may follow an open block: the library
            // refuses the connection; pass it on in order.
            return self.give_up(frame);
        }
        match kind {
            HEADERS => {
                let mut payload = &frame[9..];
                if flags & PADDED != 0 {
                    let Some((&pad, rest)) = payload.split_first() else {
                        return self.give_up(frame);
                    };
                    if usize::from(pad) > rest.len() {
                        return self.give_up(frame);
                    }
                    payload = &rest[..rest.len() - usize::from(pad)];
                }
                let mut priority = None;
                if flags & PRIORITY != 0 {
                    if payload.len() < 5 {
                        return self.give_up(frame);
                    }
                    priority = Some([payload[0], payload[1], payload[2], payload[3], payload[4]]);
                    payload = &payload[5..];
                }
                let block = Block {
                    stream,
                    flags,
                    priority,
                    fragment: payload.to_vec(),
                    original: frame.clone(),
                };
                if flags & END_HEADERS != 0 {
                    self.finish(block);
                } else {
                    self.block = Some(block);
                }
            }
            CONTINUATION if self.block.is_some() => {
                let mut block = self.block.take().expect("checked");
                if block.fragment.len() + frame.len() - 9 > MAX_BLOCK {
                    self.block = Some(block);
                    return self.give_up(frame);
                }
                block.fragment.extend_from_slice(&frame[9..]);
                block.original.extend_from_slice(&frame);
                if flags & END_HEADERS != 0 {
                    self.finish(block);
                } else {
                    self.block = Some(block);
                }
            }
            _ => self.output.extend_from_slice(&frame),
        }
    }

    /// Decodes a whole header block; forwards it as it was, or rewritten.
    fn finish(&mut self, block: Block) {
        if !well_formed(&block.fragment) {
            // Let the server judge it.
            return self.give_up(block.original);
        }
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut decoded = 0usize;
        let r = self.decoder.decode_with_cb(&block.fragment, |n, v| {
            decoded += n.len() + v.len();
            if decoded <= DECODE_BUDGET {
                headers.push((n.into_owned(), v.into_owned()));
            }
        });
        if r.is_err() || decoded > DECODE_BUDGET {
            return self.give_up(block.original);
        }
        let bad = headers
            .iter()
            .any(|(n, v)| n == b":authority" && v.windows(3).any(|w| w == b"://"));
        if !bad && !self.rewriting {
            // A client names the server the same way on every stream of a
            // connection (grpc-go fixes it per channel): after a good
            // first block nothing needs decoding any more.
            return self.give_up(block.original);
        }
        self.rewriting = true;
        let mut encoded = Vec::new();
        for (name, value) in &headers {
            let value: &[u8] = if name == b":authority" {
                match value.windows(3).position(|w| w == b"://") {
                    Some(i) => &value[i + 3..],
                    None => value,
                }
            } else {
                value
            };
            // Literal header field without indexing, new name, no Huffman.
            encoded.push(0);
            encode_string(&mut encoded, name);
            encode_string(&mut encoded, value);
        }
        self.emit(&block, &encoded);
    }

    /// Writes a rewritten header block as HEADERS (+ CONTINUATION) frames.
    fn emit(&mut self, block: &Block, encoded: &[u8]) {
        let mut first_payload = Vec::new();
        if let Some(p) = block.priority {
            first_payload.extend_from_slice(&p);
        }
        let room = MAX_FRAME - first_payload.len();
        let (head, mut rest) = encoded.split_at(encoded.len().min(room));
        first_payload.extend_from_slice(head);
        let mut flags = block.flags & (END_STREAM | PRIORITY);
        if rest.is_empty() {
            flags |= END_HEADERS;
        }
        self.push_frame(HEADERS, flags, block.stream, &first_payload);
        while !rest.is_empty() {
            let (chunk, more) = rest.split_at(rest.len().min(MAX_FRAME));
            rest = more;
            let flags = if rest.is_empty() { END_HEADERS } else { 0 };
            self.push_frame(CONTINUATION, flags, block.stream, chunk);
        }
    }

    fn push_frame(&mut self, kind: u8, flags: u8, stream: [u8; 4], payload: &[u8]) {
        let len = payload.len();
        self.output
            .extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
        self.output.extend_from_slice(&stream);
        self.output.extend_from_slice(payload);
    }

    /// Stops interpreting: what was held (an open block, then `pending`)
    /// and the rest of the connection pass through.
    fn give_up(&mut self, pending: Vec<u8>) {
        if let Some(open) = self.block.take() {
            self.output.extend_from_slice(&open.original);
        }
        self.output.extend_from_slice(&pending);
        self.mode = Mode::Passthrough;
    }
}

/// An HPACK integer with an `prefix`-bit prefix at the start of `buf`:
/// (value, bytes used); `None` if cut off or past `u32::MAX`.
fn hpack_int(buf: &[u8], prefix: u8) -> Option<(usize, usize)> {
    let max = (1usize << prefix) - 1;
    let mut v = usize::from(*buf.first()?) & max;
    if v < max {
        return Some((v, 1));
    }
    // At most four bytes after the prefix, as the decoder allows (a
    // longer integer is an error there, and an `unwrap` in a size update).
    for (i, &b) in buf[1..].iter().enumerate().take(4) {
        v += usize::from(b & 0x7f) << (7 * i);
        if v > u32::MAX as usize {
            return None;
        }
        if b & 0x80 == 0 {
            return Some((v, i + 2));
        }
    }
    None
}

/// The length of an HPACK string literal at the start of `buf`.
fn string_len(buf: &[u8]) -> Option<usize> {
    let (len, used) = hpack_int(buf, 7)?;
    (used + len <= buf.len()).then_some(used + len)
}

/// The length of a literal field (name index or literal name, then value).
fn literal_len(buf: &[u8], prefix: u8) -> Option<usize> {
    let (index, mut used) = hpack_int(buf, prefix)?;
    if index == 0 {
        used += string_len(&buf[used..])?;
    }
    Some(used + string_len(&buf[used..])?)
}

/// Whether `block` is whole HPACK representations with sane integers and
/// table size updates within [`TABLE_SIZE`]: the decoder is only given
/// blocks it handles without panicking.
fn well_formed(mut block: &[u8]) -> bool {
    while let Some(&b) = block.first() {
        let used = if b & 0x80 != 0 {
            hpack_int(block, 7).map(|(_, u)| u)
        } else if b & 0x40 != 0 {
            literal_len(block, 6)
        } else if b & 0x20 != 0 {
            hpack_int(block, 5)
                .filter(|(size, _)| *size <= TABLE_SIZE)
                .map(|(_, u)| u)
        } else {
            literal_len(block, 4)
        };
        match used {
            Some(u) => block = &block[u..],
            None => return false,
        }
    }
    true
}

/// An HPACK string: 7-bit-prefix length (no Huffman), then the bytes.
fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    let mut n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend_from_slice(s);
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.output.len() {
                let n = buf.remaining().min(this.output.len() - this.out_pos);
                buf.put_slice(&this.output[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.output.len() {
                    this.output.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // Whatever could not be parsed goes as it is.
                this.output.append(&mut this.input);
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if matches!(this.mode, Mode::Passthrough) && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut tmp = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if rb.filled().is_empty() {
                        this.eof = true;
                    } else {
                        this.input.extend_from_slice(rb.filled());
                        this.process();
                    }
                }
            }
        }
    }
}

/// Most HTTP/2 output held back before it is written regardless.
const HOLD_BYTES: usize = 64 * 1024;

impl<S: AsyncWrite + Unpin> AuthorityFix<S> {
    /// Writes what is held to the connection.
    fn drain_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.held) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.held.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn holding(&self) -> bool {
        self.http2
    }

    /// Writes what is held once it has grown to [`HOLD_BYTES`]; what to
    /// answer the caller if that cannot finish now.
    fn make_room(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Result<usize>>> {
        if self.held.len() < HOLD_BYTES {
            return None;
        }
        match self.drain_held(cx) {
            Poll::Ready(Ok(())) => None,
            Poll::Ready(Err(e)) => Some(Poll::Ready(Err(e))),
            Poll::Pending => Some(Poll::Pending),
        }
    }
}

/// On HTTP/2 connections, output is held back for one turn of the
/// scheduler before it is written: the server answers each request from
/// its own task, and each answer wakes the connection, which would
/// otherwise write every answer with a system call of its own. Letting the
/// other woken tasks run first gathers the answers of a batch of writes
/// into one `writev`. HTTP/1 output is written at once.
impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.holding() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        if let Some(blocked) = this.make_room(cx) {
            return blocked;
        }
        this.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.holding() {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        if let Some(blocked) = this.make_room(cx) {
            return blocked;
        }
        let mut n = 0;
        for b in bufs {
            this.held.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.held.is_empty() && !this.yielded {
            // Back of the run queue: the tasks woken with this one add
            // their answers first.
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match this.drain_held(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        this.yielded = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.drain_held(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Feeds `data` (after the HTTP/2 preface when `preface`) through the
/// wrapper in pieces of the sizes `cuts` gives, checking its bounds: what
/// the fuzz target `h2fix` runs.
#[doc(hidden)]
pub fn fuzz(data: &[u8], preface: bool) {
    let mut fix = AuthorityFix::new(());
    let mut input = if preface { PREFACE.to_vec() } else { Vec::new() };
    input.extend_from_slice(data);
    let cut = 1 + data.first().map_or(0, |&b| usize::from(b)) * 7;
    for piece in input.chunks(cut) {
        fix.input.extend_from_slice(piece);
        fix.process();
        assert!(fix.input.len() <= 9 + MAX_FRAME, "input buffer over its bound");
        fix.output.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn run(input: &[u8]) -> Vec<u8> {
        let mut fix = AuthorityFix::new(());
        fix.input.extend_from_slice(input);
        fix.process();
        fix.output
    }

    #[test]
    fn rewrites_a_url_authority_and_later_blocks() {
        let mut enc = fluke_hpack::Encoder::new();
        let bad = enc.encode(vec![
            (&b":method"[..], &b"POST"[..]),
            (b":authority", b"http://127.0.0.1:2379"),
            (b"x", b"1"),
        ]);
        let good = enc.encode(vec![(&b":authority"[..], &b"127.0.0.1:2379"[..]), (b"x", b"1")]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, b"")); // SETTINGS: untouched
        input.extend(frame(HEADERS, END_HEADERS, 1, &bad));
        input.extend(frame(0x0, END_STREAM, 1, b"body")); // DATA: untouched
        input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &good));
        let out = run(&input);
        assert!(out.starts_with(PREFACE));
        // Decode what the server would see.
        let mut dec = fluke_hpack::Decoder::new();
        let mut rest = &out[PREFACE.len()..];
        let mut blocks = Vec::new();
        let mut kinds = Vec::new();
        while rest.len() >= 9 {
            let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
            kinds.push((rest[3], rest[4]));
            if rest[3] == HEADERS {
                blocks.push(dec.decode(&rest[9..9 + len]).unwrap());
            }
            rest = &rest[9 + len..];
        }
        assert_eq!(
            kinds,
            vec![
                (0x4, 0),
                (HEADERS, END_HEADERS),
                (0x0, END_STREAM),
                (HEADERS, END_HEADERS | END_STREAM)
            ]
        );
        let auth = |b: &Vec<(Vec<u8>, Vec<u8>)>| b.iter().find(|(n, _)| n == b":authority").unwrap().1.clone();
        assert_eq!(auth(&blocks[0]), b"127.0.0.1:2379");
        assert_eq!(auth(&blocks[1]), b"127.0.0.1:2379");
        assert_eq!(blocks[0].len(), 3);
    }

    #[test]
    fn leaves_good_connections_and_http1_alone() {
        let mut enc = fluke_hpack::Encoder::new();
        let good = enc.encode(vec![(&b":authority"[..], &b"127.0.0.1:2379"[..])]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &good));
        // Not decoded after a good first block: a later block, even one
        // this could not parse, passes as it is.
        input.extend(frame(HEADERS, END_HEADERS, 3, &[0xff, 0xff, 0xff]));
        assert_eq!(run(&input), input);
        let mut fix = AuthorityFix::new(());
        fix.input.extend_from_slice(&input);
        fix.process();
        assert!(matches!(fix.mode, Mode::Passthrough));
        let http1 = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(run(http1), http1.to_vec());
    }

    /// A connection that counts the writes reaching it.
    #[derive(Default)]
    struct Counting {
        data: Vec<u8>,
        writes: usize,
    }

    impl AsyncWrite for Counting {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.writes += 1;
            self.data.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn http2_output_is_held_one_turn_then_written_together() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut fix = AuthorityFix::new(Counting::default());
        fix.http2 = true;
        let mut p = Pin::new(&mut fix);
        assert!(matches!(p.as_mut().poll_write(&mut cx, b"one "), Poll::Ready(Ok(4))));
        assert!(p.as_mut().poll_flush(&mut cx).is_pending(), "held for one turn");
        assert!(matches!(p.as_mut().poll_write(&mut cx, b"two"), Poll::Ready(Ok(3))));
        assert!(matches!(p.as_mut().poll_flush(&mut cx), Poll::Ready(Ok(()))));
        assert_eq!(fix.inner.data, b"one two");
        assert_eq!(fix.inner.writes, 1, "both answers in one write");
        // HTTP/1 output goes straight through.
        let mut fix = AuthorityFix::new(Counting::default());
        let mut p = Pin::new(&mut fix);
        assert!(matches!(
            p.as_mut().poll_write(&mut cx, b"HTTP/1.1 200 OK"),
            Poll::Ready(Ok(15))
        ));
        assert_eq!(fix.inner.writes, 1);
    }

    #[test]
    fn long_strings_use_multibyte_lengths() {
        let mut out = Vec::new();
        encode_string(&mut out, &[b'a'; 300]);
        let mut dec = fluke_hpack::Decoder::new();
        let mut block = vec![0u8];
        encode_string(&mut block, b"n");
        block.extend(out);
        assert_eq!(dec.decode(&block).unwrap()[0].1.len(), 300);
    }

    /// A connection that opens with the preface and a block of `frames`.
    fn h2(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut input = PREFACE.to_vec();
        for f in frames {
            input.extend_from_slice(f);
        }
        input
    }

    #[test]
    fn malformed_hpack_is_passed_on_without_a_panic() {
        // A table size update cut off after its first byte (the decoder
        // unwraps it), one past the table size, an overlong integer.
        for block in [
            &[0x3f][..],
            &[0x3f, 0xe1, 0x7f],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0x40, 0x05],
        ] {
            let input = h2(&[frame(HEADERS, END_HEADERS, 1, block)]);
            assert_eq!(run(&input), input, "{block:?}");
        }
    }

    #[test]
    fn a_continuation_flood_is_not_buffered() {
        let mut fix = AuthorityFix::new(());
        fix.input.extend_from_slice(&h2(&[frame(HEADERS, 0, 1, &[0x82])]));
        fix.process();
        let mut passed = fix.output.len();
        fix.output.clear();
        for _ in 0..200 {
            fix.input
                .extend_from_slice(&frame(CONTINUATION, 0, 1, &[0x82; MAX_FRAME]));
            fix.process();
            assert!(fix.input.len() <= 9 + MAX_FRAME);
            assert!(fix.block.as_ref().is_none_or(|b| b.fragment.len() <= MAX_BLOCK));
            passed += fix.output.len();
            fix.output.clear();
        }
        assert!(matches!(fix.mode, Mode::Passthrough));
        assert_eq!(
            passed,
            PREFACE.len() + 10 + 200 * (9 + MAX_FRAME),
            "everything passes on, in order"
        );
    }

    #[test]
    fn an_hpack_bomb_is_not_expanded() {
        // One 4000-byte entry in the dynamic table, then referenced over
        // and over: 16 KiB of block would decode to 64 MB.
        let mut block = vec![0x40, 0x01, b'x', 0x7f];
        let mut n = 4000 - 127;
        while n >= 128 {
            block.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        block.push(n as u8);
        block.extend(std::iter::repeat_n(b'v', 4000));
        block.extend(std::iter::repeat_n(0xbe, MAX_FRAME - block.len()));
        let input = h2(&[frame(HEADERS, END_HEADERS, 1, &block)]);
        let mut fix = AuthorityFix::new(());
        fix.input.extend_from_slice(&input);
        fix.process();
        assert_eq!(fix.output, input, "passed on untouched for the library to refuse");
        assert!(matches!(fix.mode, Mode::Passthrough));
    }

    /// Found by the `h2fix` fuzz target: a table size update whose integer
    /// takes five bytes after its prefix passed the pre-check and reached
    /// an `unwrap` in the decoder.
    #[test]
    fn an_overlong_size_update_is_passed_on_not_decoded() {
        for block in [
            &[0x3f, 0x80, 0x80, 0x80, 0x80, 0x00][..],
            &[0x3f, 0xe1, 0x9f, 0x80, 0x80, 0x00],
            &[0x20, 0x3f, 0x80, 0x80, 0x80, 0x80, 0x01],
        ] {
            let input = h2(&[frame(HEADERS, END_HEADERS, 1, block)]);
            assert_eq!(run(&input), input);
        }
    }

    #[test]
    fn oversized_frames_are_not_buffered() {
        let mut fix = AuthorityFix::new(());
        fix.input.extend_from_slice(&h2(&[]));
        fix.input
            .extend_from_slice(&[0xff, 0xff, 0xff, 0x0, 0x0, 0, 0, 0, 1, 1, 2, 3]);
        fix.process();
        assert!(fix.input.is_empty() && matches!(fix.mode, Mode::Passthrough));
    }

    proptest::proptest! {
        /// Whatever arrives, in whatever pieces: no panic, bounded buffers,
        /// and (no authority to fix in random bytes) the bytes unchanged.
        #[test]
        fn any_input_passes_unchanged_and_bounded(
            frames in proptest::collection::vec(
                (0u8..12, proptest::num::u8::ANY, 0u32..4, proptest::collection::vec(proptest::num::u8::ANY, 0..64)),
                0..40,
            ),
            cuts in proptest::collection::vec(1usize..200, 1..10),
        ) {
            let mut input = PREFACE.to_vec();
            for (kind, flags, stream, payload) in &frames {
                input.extend_from_slice(&frame(*kind, *flags, *stream, payload));
            }
            let mut fix = AuthorityFix::new(());
            let mut out = Vec::new();
            let mut rest = &input[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = cuts[i % cuts.len()].min(rest.len());
                i += 1;
                fix.input.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                fix.process();
                proptest::prop_assert!(fix.input.len() <= 9 + MAX_FRAME);
                out.append(&mut fix.output);
            }
            out.append(&mut fix.input);
            if let Some(b) = fix.block.take() {
                out.extend_from_slice(&b.original);
            }
            if !fix.rewriting {
                proptest::prop_assert_eq!(out, input);
            }
        }

        /// HPACK blocks of any bytes: never a panic.
        #[test]
        fn any_header_block_is_safe(block in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let input = h2(&[frame(HEADERS, END_HEADERS, 1, &block)]);
            let out = run(&input);
            proptest::prop_assert!(out.len() >= PREFACE.len());
        }
    }
}
