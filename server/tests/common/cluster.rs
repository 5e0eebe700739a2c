//! A cluster of real `concord` processes on loopback, with a relay in
//! front of each member's peer port so tests can cut a member off.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{free_port, http};

/// A TCP relay: forwards connections to `target` until cut; while cut it
/// closes every connection it carries and refuses new ones.
pub struct Relay {
    pub port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (c, cs) = (Arc::clone(&cut), Arc::clone(&conns));
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                if c.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)) else {
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                {
                    let mut list = cs.lock().unwrap();
                    list.push(inbound.try_clone().unwrap());
                    list.push(outbound.try_clone().unwrap());
                }
                let (mut a, mut b) = (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                std::thread::spawn(move || pipe(&mut a, &mut b));
                let (mut a, mut b) = (outbound, inbound);
                std::thread::spawn(move || pipe(&mut a, &mut b));
            }
        });
        Relay { port, cut, conns }
    }

    /// Cuts the link (and every connection on it).
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Restores the link.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pipe(from: &mut TcpStream, to: &mut TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A member's flags: names, data directory, client URL, peer URLs (listen
/// and advertised), the initial cluster, then `extra`.
fn member_args(
    name: &str,
    dir: &std::path::Path,
    client: u16,
    listen_peer: &str,
    advertise_peer: &str,
    initial: &str,
    extra: &[&str],
) -> Vec<String> {
    let curl = format!("http://127.0.0.1:{client}");
    let mut args: Vec<String> = vec![
        "--name".into(),
        name.into(),
        "--data-dir".into(),
        dir.to_str().unwrap().into(),
        "--listen-client-urls".into(),
        curl.clone(),
        "--advertise-client-urls".into(),
        curl,
        "--listen-peer-urls".into(),
        listen_peer.into(),
        "--initial-advertise-peer-urls".into(),
        advertise_peer.into(),
        "--initial-cluster".into(),
        initial.into(),
        "--log-level".into(),
        "info".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// One member of a test cluster.
pub struct Member {
    pub name: String,
    /// `127.0.0.1:PORT` of its client port.
    pub endpoint: String,
    pub dir: PathBuf,
    pub log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// Carries all peer traffic into this member.
    pub relay: Relay,
    /// The port the member itself listens on for peers.
    pub peer_port: u16,
    /// Environment variables set for the member's next starts.
    pub envs: Vec<(String, String)>,
}

impl Member {
    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = super::server_command(env!("CARGO_BIN_EXE_concord"))
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the concord binary runs");
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    panic!("member did not stop on SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Restarts a stopped member with `extra` flags added to its own.
    pub fn start_with_flags(&mut self, extra: &[&str]) {
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.start();
    }

    /// Waits up to `within` for the process to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The running process's peak resident memory so far, in KiB (Linux's
    /// `VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Whether `GET /health` says healthy (a leader is known).
    pub fn healthy(&self) -> bool {
        matches!(http(&self.endpoint, "GET", "/health", ""), Ok((200, _)))
    }

    /// The member's own log output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the member's log contains `needle`; panics with the log
    /// once `timeout` has passed.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log_text();
            if log.contains(needle) {
                return;
            }
            assert!(Instant::now() < deadline, "no {needle:?} within {timeout:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cluster of `concord` processes.
pub struct Cluster {
    pub members: Vec<Member>,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` members with `extra` flags and waits until all are healthy.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with(n, extra, "http")
    }

    /// As [`Cluster::start`], with peer URLs of `scheme` (`https` needs the
    /// peer TLS flags in `extra`).
    pub fn start_with(n: usize, extra: &[&str], scheme: &str) -> Cluster {
        Cluster::start_seeded(n, extra, scheme, |_, _, _| {})
    }

    /// As [`Cluster::start`], each member's data directory first seeded
    /// from `snapshot` with `concord snapshot restore` (its name, data
    /// directory, the cluster's member list and its peer URL).
    pub fn start_restored(n: usize, snapshot: &std::path::Path, extra: &[&str]) -> Cluster {
        Cluster::start_seeded(n, extra, "http", |name, dir, (initial, peer_url)| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
                .args(["snapshot", "restore"])
                .arg(snapshot)
                .args(["--name", name, "--data-dir"])
                .arg(dir)
                .args(["--initial-cluster", initial, "--initial-advertise-peer-urls", peer_url])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "restore failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
    }

    fn start_seeded(
        n: usize,
        extra: &[&str],
        scheme: &str,
        seed: impl Fn(&str, &std::path::Path, (&str, &str)),
    ) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let mut specs = Vec::new();
        for i in 1..=n {
            let peer = free_port();
            let relay = Relay::start(peer);
            specs.push((format!("m{i}"), free_port(), peer, relay));
        }
        let initial: Vec<String> = specs
            .iter()
            .map(|(name, _, _, relay)| format!("{name}={scheme}://127.0.0.1:{}", relay.port))
            .collect();
        let initial = initial.join(",");
        let mut members = Vec::new();
        for (name, client, peer, relay) in specs {
            let dir = tmp.path().join(&name);
            let advertised = format!("{scheme}://127.0.0.1:{}", relay.port);
            seed(&name, &dir, (&initial, &advertised));
            let args = member_args(
                &name,
                &dir,
                client,
                &format!("{scheme}://127.0.0.1:{peer}"),
                &advertised,
                &initial,
                extra,
            );
            let mut m = Member {
                log: tmp.path().join(format!("{name}.log")),
                name,
                endpoint: format!("127.0.0.1:{client}"),
                dir,
                args,
                child: None,
                relay,
                peer_port: peer,
                envs: Vec::new(),
            };
            m.start();
            members.push(m);
        }
        let c = Cluster { members, _tmp: tmp };
        c.wait_healthy(Duration::from_secs(30));
        c
    }

    /// Prepares (does not start) a new member `name` that joins this running
    /// cluster (`--initial-cluster-state existing`); its index. Add it with
    /// MemberAdd (its peer URL is [`Cluster::peer_url`]) before starting it.
    pub fn prepare_member(&mut self, name: &str, extra: &[&str]) -> usize {
        let peer = free_port();
        let relay = Relay::start(peer);
        let client = free_port();
        let mut initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.relay.port))
            .collect();
        initial.push(format!("{name}=http://127.0.0.1:{}", relay.port));
        let dir = self._tmp.path().join(name);
        let mut extra = extra.to_vec();
        extra.extend(["--initial-cluster-state", "existing"]);
        let args = member_args(
            name,
            &dir,
            client,
            &format!("http://127.0.0.1:{peer}"),
            &format!("http://127.0.0.1:{}", relay.port),
            &initial.join(","),
            &extra,
        );
        self.members.push(Member {
            log: self._tmp.path().join(format!("{name}.log")),
            name: name.into(),
            endpoint: format!("127.0.0.1:{client}"),
            dir,
            args,
            child: None,
            relay,
            peer_port: peer,
            envs: Vec::new(),
        });
        self.members.len() - 1
    }

    /// The peer URL the others reach member `i` at.
    pub fn peer_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].relay.port)
    }

    /// Waits until every running member knows a leader.
    pub fn wait_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.members.iter().filter(|m| m.is_running()).all(Member::healthy) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for m in &self.members {
            eprintln!("--- {} log:\n{}", m.name, m.log_text());
        }
        panic!("cluster not healthy within {within:?}");
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.endpoint.clone()).collect()
    }

    /// The index of the member that leads, per the running members' status.
    pub fn leader(&self) -> Option<usize> {
        for m in self.members.iter().filter(|m| m.is_running()) {
            let Ok((200, body)) = http(&m.endpoint, "POST", "/v3/maintenance/status", "{}") else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let leader = v["leader"].as_str().unwrap_or("0");
            let me = v["header"]["member_id"].as_str().unwrap_or("");
            if leader != "0" && leader == me {
                return self.members.iter().position(|x| x.endpoint == m.endpoint);
            }
        }
        None
    }

    /// Waits for a leader among the running members; its index.
    pub fn wait_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(l) = self.leader() {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no leader within {within:?}");
    }
}
