//! Helpers for integration tests: real `concord` (and etcd) processes on
//! free loopback ports, each with its own temporary data directory, killed
//! when dropped.

#![allow(dead_code)]

pub mod cluster;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// etcdctl arguments that set up auth: `root` (password `rootpw`), `alice`
/// (`alicepw`) with role `app` = read and write on prefix `app/`; auth on.
pub const ALICE_SETUP: [&[&str]; 6] = [
    &["user", "add", "root:rootpw"],
    &["user", "add", "alice:alicepw"],
    &["role", "add", "app"],
    &["role", "grant-permission", "app", "readwrite", "app/", "--prefix=true"],
    &["user", "grant-role", "alice", "app"],
    &["auth", "enable"],
];

/// A server process under test.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`
    pub endpoint: String,
    pub data_dir: PathBuf,
    /// How it was started (program, arguments, environment), to restart it.
    program: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    quiet: bool,
    /// Serves TLS only: readiness is an open port, not `GET /health`.
    tls_only: bool,
    _tmp: Option<tempfile::TempDir>,
}

/// A plain HTTP/1.1 request; returns (status, body). Small and synchronous,
/// so tests need no HTTP client to check readiness.
pub fn http(endpoint: &str, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    request(endpoint, method, path, body, "")
}

/// A POST with an `Authorization` header (the gateway's token); returns (status, body).
pub fn http_auth(endpoint: &str, path: &str, body: &str, token: &str) -> (u16, String) {
    request(endpoint, "POST", path, body, token).unwrap()
}

fn request(endpoint: &str, method: &str, path: &str, body: &str, token: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(endpoint)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: {token}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {endpoint}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn wait_healthy(endpoint: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((200, _)) = http(endpoint, "GET", "/health", "") {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("server at {endpoint} exited early: {status}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server at {endpoint} did not become healthy");
}

fn wait_listening(endpoint: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(endpoint).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("server at {endpoint} exited early: {status}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server at {endpoint} did not listen");
}

/// Starts a server built by `make` (fresh ports each time). A port picked
/// free can be taken by someone else before the server binds it (another
/// test's connection); the server then exits at once, and a new pick is tried.
fn first_start(make: impl Fn() -> Server) -> Server {
    for attempt in 1.. {
        let mut s = make();
        match s.try_start() {
            Ok(()) => return s,
            Err(e) if attempt < 3 => eprintln!("{e}; trying other ports"),
            Err(e) => panic!("{e}"),
        }
    }
    unreachable!("the loop returns or panics")
}

impl Server {
    /// Starts `concord` with a fresh data directory.
    pub fn concord() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Server::concord_in(&dir, &[]);
        s._tmp = Some(tmp);
        s
    }

    /// Starts `concord` with a fresh data directory and extra flags.
    pub fn concord_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Server::concord_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts `concord` on `data_dir` with extra flags.
    pub fn concord_in(data_dir: &Path, extra: &[&str]) -> Server {
        Server::concord_env(data_dir, extra, &[])
    }

    /// Starts `concord` on `data_dir` with extra flags and environment.
    pub fn concord_env(data_dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::concord_scheme(data_dir, "http", extra, envs)
    }

    /// Starts `concord` serving only TLS (`https://` client URL) with extra flags.
    pub fn concord_tls(data_dir: &Path, extra: &[&str]) -> Server {
        Server::concord_scheme(data_dir, "https", extra, &[])
    }

    fn concord_scheme(data_dir: &Path, scheme: &str, extra: &[&str], envs: &[(&str, &str)]) -> Server {
        first_start(|| Server::concord_on_free_port(data_dir, scheme, extra, envs))
    }

    fn concord_on_free_port(data_dir: &Path, scheme: &str, extra: &[&str], envs: &[(&str, &str)]) -> Server {
        let endpoint = format!("127.0.0.1:{}", free_port());
        let url = format!("{scheme}://{endpoint}");
        let mut args: Vec<String> = vec![
            "--data-dir".into(),
            data_dir.to_str().unwrap().into(),
            "--listen-client-urls".into(),
            url.clone(),
            "--advertise-client-urls".into(),
            url,
            "--log-level".into(),
            "warn".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Server {
            child: None,
            endpoint,
            data_dir: data_dir.to_path_buf(),
            program: env!("CARGO_BIN_EXE_concord").into(),
            args,
            envs: envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            quiet: false,
            tls_only: scheme == "https",
            _tmp: None,
        }
    }

    /// Starts Debian's etcd 3.4 with a fresh data directory.
    pub fn etcd() -> Server {
        Server::etcd_with(&[])
    }

    /// Starts Debian's etcd 3.4 with a fresh data directory and extra flags.
    pub fn etcd_with(extra: &[&str]) -> Server {
        first_start(|| Server::etcd_on_free_ports(extra))
    }

    fn etcd_on_free_ports(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("etcd");
        let (c, p) = (free_port(), free_port());
        let endpoint = format!("127.0.0.1:{c}");
        let curl = format!("http://{endpoint}");
        let purl = format!("http://127.0.0.1:{p}");
        let mut args: Vec<String> = ["--name", "ref", "--data-dir", dir.to_str().unwrap()]
            .into_iter()
            .map(String::from)
            .collect();
        args.extend([
            "--listen-client-urls".into(),
            curl.clone(),
            "--advertise-client-urls".into(),
            curl,
            "--listen-peer-urls".into(),
            purl.clone(),
            "--initial-advertise-peer-urls".into(),
            purl.clone(),
            "--initial-cluster".into(),
            format!("ref={purl}"),
            "--log-level".into(),
            "error".into(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        Server {
            child: None,
            endpoint,
            data_dir: dir,
            program: "etcd".into(),
            args,
            envs: Vec::new(),
            quiet: true,
            tls_only: false,
            _tmp: Some(tmp),
        }
    }

    /// Starts the process (again: same port, same data) and waits until it is healthy.
    pub fn start(&mut self) {
        if let Err(e) = self.try_start() {
            panic!("{e}");
        }
    }

    /// [`Server::start`], reporting an early exit instead of panicking.
    fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "already running");
        let mut cmd = server_command(&self.program);
        cmd.args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(if self.quiet { Stdio::null() } else { Stdio::inherit() });
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{} runs (scripts/test installs etcd-server): {e}", self.program));
        let ready = if self.tls_only {
            wait_listening(&self.endpoint, &mut child)
        } else {
            wait_healthy(&self.endpoint, &mut child)
        };
        ready?;
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`, then start again on the same port and data.
    pub fn restart(&mut self) {
        self.kill9();
        self.start();
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("server did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs Debian's etcdctl (API v3) against `endpoint`.
pub fn etcdctl(endpoint: &str, args: &[&str]) -> Output {
    etcdctl_stdin(endpoint, args, "")
}

/// Runs etcdctl with `stdin` as its input.
pub fn etcdctl_stdin(endpoint: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "--command-timeout", "10s"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Debian's etcdctl is installed (scripts/test installs etcd-client)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// etcdctl's stdout, asserting success.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "etcdctl failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// etcdctl's stderr, asserting failure.
pub fn err(out: Output) -> String {
    assert!(
        !out.status.success(),
        "etcdctl should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// A streamed HTTP response (chunked), read line by line: the gateway's
/// watch and keep-alive answers are one JSON object per line.
pub struct HttpStream {
    reader: std::io::BufReader<TcpStream>,
    buf: Vec<u8>,
    done: bool,
}

impl HttpStream {
    /// POSTs `body` to `path` and reads the status line and headers.
    pub fn post(endpoint: &str, path: &str, body: &str) -> (u16, HttpStream) {
        HttpStream::post_auth(endpoint, path, body, "")
    }

    /// As [`HttpStream::post`], with an `Authorization` header unless `token` is empty.
    pub fn post_auth(endpoint: &str, path: &str, body: &str, token: &str) -> (u16, HttpStream) {
        use std::io::BufRead;
        let mut s = TcpStream::connect(endpoint).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let auth = if token.is_empty() {
            String::new()
        } else {
            format!("Authorization: {token}\r\n")
        };
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {endpoint}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reader = std::io::BufReader::new(s);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status = status_line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
        }
        (
            status,
            HttpStream {
                reader,
                buf: Vec::new(),
                done: false,
            },
        )
    }

    /// The next line (without the newline); `None` when the stream ended.
    /// Panics if nothing arrives within 10 s.
    pub fn next_line(&mut self) -> Option<String> {
        use std::io::BufRead;
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&line[..line.len() - 1]).to_string());
            }
            if self.done {
                return None;
            }
            let mut size = String::new();
            self.reader.read_line(&mut size).expect("a chunk within 10 s");
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                self.done = true;
                continue;
            }
            let mut chunk = vec![0; n + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next line as JSON.
    pub fn next_json(&mut self) -> Option<serde_json::Value> {
        self.next_line()
            .map(|l| serde_json::from_str(&l).unwrap_or_else(|_| panic!("not JSON: {l}")))
    }
}

/// Base64 as the gateway encodes bytes.
pub fn b64(s: impl AsRef<[u8]>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Blanks the fields that differ between two members by nature (their
/// random IDs and Raft term), so answers of two servers compare as a whole.
pub fn mask_ids(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if matches!(k.as_str(), "cluster_id" | "member_id" | "raft_term") {
                    *x = serde_json::Value::String("<masked>".into());
                } else {
                    mask_ids(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(mask_ids),
        _ => {}
    }
}

/// A command for a server a test starts, made to die with the test
/// process even when that process aborts (a crashed test binary must not
/// leave members running on the machine): `setpriv --pdeathsig KILL`
/// (util-linux) sets Linux's parent-death signal, which the server keeps
/// across exec. The signal fires when the spawning thread ends, so spawn
/// from the test's own thread.
pub fn server_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    if Path::new("/usr/bin/setpriv").exists() {
        let mut cmd = Command::new("/usr/bin/setpriv");
        cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// `name{labels}` -> value, and name -> TYPE, of a scrape.
pub fn scrape(
    endpoint: &str,
) -> (
    std::collections::BTreeMap<String, f64>,
    std::collections::BTreeMap<String, String>,
) {
    let (status, text) = http(endpoint, "GET", "/metrics", "").unwrap();
    assert_eq!(status, 200, "{text}");
    let mut values = std::collections::BTreeMap::new();
    let mut types = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap();
            values.insert(series.to_string(), value.parse().unwrap());
        }
    }
    (values, types)
}

/// A child process killed (and reaped) when dropped, even when a test
/// panics.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Status, content type and body of a raw request.
pub fn raw(endpoint: &str, method: &str, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(endpoint).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

/// An HTTP answer: status, headers (names lower-cased), body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// A request with a form-encoded body (etcd's v2 API, as curl's `-d`
/// sends it) and optional extra header lines.
pub fn form(endpoint: &str, method: &str, path: &str, body: &str, extra: &str) -> Reply {
    try_form(endpoint, method, path, body, extra).unwrap_or_else(|e| panic!("{method} {path} to {endpoint}: {e}"))
}

/// [`form`], or the connection's error (a member not listening yet).
pub fn try_form(endpoint: &str, method: &str, path: &str, body: &str, extra: &str) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect(endpoint)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {endpoint}\r\n{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    Ok(Reply { status, headers, body })
}
