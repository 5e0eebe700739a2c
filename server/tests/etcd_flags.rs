//! A command line written for etcd starts Concord unchanged: kubeadm's
//! static-pod flags (its probes on --listen-metrics-urls), flags of etcd
//! 3.4-3.6 Concord does not implement (named in the log), Go's single-dash
//! spelling; a restriction Concord cannot honour stops the start.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http};

#[test]
fn a_kubeadm_manifest_starts_concord_and_its_probes_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let (client, peer, metrics) = (free_port(), free_port(), free_port());
    let c = format!("http://127.0.0.1:{client}");
    let p = format!("http://127.0.0.1:{peer}");
    let m = format!("http://127.0.0.1:{metrics}");
    let data = tmp.path().join("etcd");
    let log = tmp.path().join("log");
    let args: Vec<String> = [
        // kubeadm's manifest (TLS left out).
        &format!("--advertise-client-urls={c}"),
        &format!("--data-dir={}", data.display()),
        "--experimental-initial-corrupt-check=true",
        "--experimental-watch-progress-notify-interval=5s",
        &format!("--initial-advertise-peer-urls={p}"),
        &format!("--initial-cluster=node1={p}"),
        &format!("--listen-client-urls={c}"),
        &format!("--listen-metrics-urls={m}"),
        &format!("--listen-peer-urls={p}"),
        "--name=node1",
        "--snapshot-count=10000",
        // What other deployments pass, in each syntax etcd takes.
        "--max-wals",
        "5",
        "--enable-v2=true",
        "--logger=zap",
        "--log-outputs=stderr",
        "--auto-tls=false",
        "--unsafe-no-fsync",
        "--strict-reconfig-check",
        "true",
        "--feature-gates=InitialCorruptCheck=true",
        "--corrupt-check-time=0s",
        "-pre-vote",
        "--tls-min-version=TLS1.2",
        "--log-format=json",
        &format!("--log-outputs=stderr,{}", tmp.path().join("concord.log").display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut child = common::Reaped(
        Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(&args)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let probe = format!("127.0.0.1:{metrics}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // kubeadm's liveness and startup probe.
        if let Ok((200, body)) = http(&probe, "GET", "/health?exclude=NOSPACE&serializable=true", "") {
            assert_eq!(body, r#"{"health":"true"}"#);
            break;
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "concord exited: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(Instant::now() < deadline, "no probe answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http(&probe, "GET", "/readyz", "").unwrap(), (200, "ok\n".into()));
    assert_eq!(http(&probe, "GET", "/livez", "").unwrap(), (200, "ok\n".into()));
    let (status, metrics) = http(&probe, "GET", "/metrics", "").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("\netcd_server_has_leader 1\n"), "{metrics}");
    let fsyncs = |metrics: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with("etcd_disk_wal_fsync_duration_seconds_count "))
            .map(str::to_string)
    };
    let fsyncs_before = fsyncs(&metrics);
    // The probe port serves probes and metrics only.
    assert_eq!(http(&probe, "POST", "/v3/kv/range", "{}").unwrap().0, 404);
    let (status, _) = http(
        &format!("127.0.0.1:{client}"),
        "POST",
        "/v3/kv/put",
        r#"{"key":"YQ==","value":"Yg=="}"#,
    )
    .unwrap();
    assert_eq!(status, 200);
    // --unsafe-no-fsync: the put was logged without an fdatasync.
    let (_, metrics) = http(&probe, "GET", "/metrics", "").unwrap();
    assert!(fsyncs_before.is_some());
    assert_eq!(fsyncs(&metrics), fsyncs_before);
    drop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("ignoring etcd flags"))
        .unwrap_or_else(|| panic!("{text}"));
    // JSON lines, to stderr and to the file alike.
    let file = std::fs::read_to_string(tmp.path().join("concord.log")).unwrap();
    assert!(file.contains("ignoring etcd flags"), "{file}");
    for l in file.lines().chain(text.lines()) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        // zap's field names, as etcd's JSON logs have them.
        for key in ["level", "ts", "caller", "msg"] {
            assert!(v[key].is_string(), "{key}: {l}");
        }
    }
    for named in ["--max-wals=5", "--feature-gates=InitialCorruptCheck=true"] {
        assert!(line.contains(named), "{named} not named: {line}");
    }
    for implemented in [
        "--unsafe-no-fsync",
        "--strict-reconfig-check",
        "--tls-min-version",
        "--enable-v2",
    ] {
        assert!(!line.contains(implemented), "{implemented} is implemented: {line}");
    }
}

#[test]
fn a_restriction_concord_cannot_honour_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args([
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "--discovery",
            "https://discovery.etcd.io/3e86b59982e49066c5d813af1c2e2579",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("--discovery=https://discovery.etcd.io/3e86b59982e49066c5d813af1c2e2579: bootstrap by discovery"),
        "{err}"
    );
}

#[test]
fn version_names_the_etcd_api_and_the_commit() {
    for flag in ["--version", "-version"] {
        let out = Command::new(env!("CARGO_BIN_EXE_concord")).arg(flag).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("concord Version: {}", env!("CARGO_PKG_VERSION")));
        assert_eq!(lines[1], "etcd API: 3.4.0");
        assert!(
            lines[2].starts_with("Git SHA: ") && lines[2].len() > "Git SHA: ".len(),
            "{text}"
        );
    }
}

/// Runs `cmd` (stderr to `log`) until its client port `ep` answers
/// `/health` true; then the member's name as `member list` gives it, and
/// its log, once it is stopped.
fn run_until_healthy(mut cmd: Command, ep: &str, log: &std::path::Path) -> (String, String) {
    let mut child = cmd.stderr(std::fs::File::create(log).unwrap()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http(ep, "GET", "/health", ""), Ok((200, _))) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(log).unwrap()
        );
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, members) = http(ep, "POST", "/v3/cluster/member/list", "{}").unwrap();
    let _ = child.kill();
    let _ = child.wait();
    (members, std::fs::read_to_string(log).unwrap())
}

#[test]
fn etcd_environment_variables_configure_concord() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = tmp.path().join("log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concord"));
    cmd.env("ETCD_NAME", "from-env")
        .env("ETCD_DATA_DIR", tmp.path().join("d"))
        .env("ETCD_LISTEN_CLIENT_URLS", &url)
        .env("ETCD_ADVERTISE_CLIENT_URLS", &url)
        .env("ETCD_MAX_WALS", "5")
        .env("ETCD_UNSUPPORTED_ARCH", "arm64");
    let (members, text) = run_until_healthy(cmd, &format!("127.0.0.1:{port}"), &log);
    assert!(members.contains(r#""name":"from-env""#), "{members}");
    assert!(text.contains("--max-wals=5"), "{text}");
    assert!(text.contains("ETCD_UNSUPPORTED_ARCH"), "{text}");
}

#[test]
fn an_etcd_config_file_replaces_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let config = tmp.path().join("etcd.yaml");
    // The shape of etcd's sample config file.
    std::fs::write(
        &config,
        format!(
            "name: 'from-file'\n\
             data-dir: {}\n\
             snapshot-count: 10000\n\
             max-wals: 5\n\
             listen-client-urls: {url}\n\
             advertise-client-urls: {url}\n\
             initial-cluster-state: 'new'\n\
             discovery:\n\
             enable-v2: true\n\
             log-outputs: [stderr]\n\
             client-transport-security:\n  cert-file:\n  client-cert-auth: false\n  auto-tls: false\n\
             peer-transport-security:\n  cert-file:\n  allowed-cn:\n",
            tmp.path().join("d").display()
        ),
    )
    .unwrap();
    let log = tmp.path().join("log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concord"));
    cmd.args(["--config-file", config.to_str().unwrap(), "--name", "from-flag"])
        .env("ETCD_NAME", "from-env");
    let (members, text) = run_until_healthy(cmd, &format!("127.0.0.1:{port}"), &log);
    assert!(members.contains(r#""name":"from-file""#), "{members}");
    assert!(text.contains("loaded the configuration file"), "{text}");
    assert!(text.contains("--max-wals=5"), "{text}");

    // A file that is not settings stops the start with a clear error.
    std::fs::write(&config, "- just\n- a list\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["--config-file", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an etcd config file"), "{err}");
}

/// Reads one HTTP/2 frame: (type, flags, stream, payload).
fn read_frame(s: &mut std::net::TcpStream) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head)?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload)?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Ok((head[3], head[4], stream, payload))
}

/// An HTTP/2 connection that has sent its preface and an empty SETTINGS.
fn h2_connect(endpoint: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(endpoint).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    s
}

#[test]
fn http2_stream_limit_and_keepalive_pings_follow_the_flags() {
    let s = common::Server::concord_with(&[
        "--max-concurrent-streams=7",
        "--grpc-keepalive-interval=300ms",
        "--grpc-keepalive-timeout=500ms",
    ]);
    let mut conn = h2_connect(&s.endpoint);
    // The server's SETTINGS: MAX_CONCURRENT_STREAMS (0x3) is ours.
    let (kind, _, _, payload) = read_frame(&mut conn).unwrap();
    assert_eq!(kind, 4, "SETTINGS first");
    let settings: Vec<(u16, u32)> = payload
        .chunks(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect();
    assert!(settings.contains(&(3, 7)), "{settings:?}");
    // Idle, the server pings (PING, 0x6, without ACK); unanswered, it
    // closes the connection soon after the timeout.
    let started = Instant::now();
    let mut pinged = None;
    loop {
        match read_frame(&mut conn) {
            Ok((6, flags, _, _)) if flags & 1 == 0 => {
                pinged.get_or_insert(started.elapsed());
            }
            Ok(_) => {}
            Err(_) => break,
        }
        assert!(started.elapsed() < Duration::from_secs(8), "the connection stays open");
    }
    let pinged = pinged.expect("the server pinged");
    assert!(pinged < Duration::from_secs(3), "{pinged:?}");
    // A bad duration stops the start with its value named.
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["--grpc-keepalive-timeout=soon", "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("soon"), "{out:?}");
}

/// Flags etcd 3.5 and 3.6 added to 3.4's (the names, from their
/// `server/etcdmain/config.go` and `server/embed/config.go`, including
/// the legacy names etcd accepts and ignores).
const ETCD_35_36_FLAGS: &[&str] = &[
    "backend-bbolt-freelist-type",
    "bootstrap-defrag-threshold-megabytes",
    "client-cert-file",
    "client-key-file",
    "cluster-active-size",
    "cluster-remove-delay",
    "cluster-sync-interval",
    "compact-hash-check-time",
    "compaction-batch-limit",
    "compaction-sleep-interval",
    "config",
    "config-file",
    "corrupt-check-time",
    "discovery-cacert",
    "discovery-cert",
    "discovery-dial-timeout",
    "discovery-insecure-skip-tls-verify",
    "discovery-insecure-transport",
    "discovery-keepalive-time",
    "discovery-keepalive-timeout",
    "discovery-key",
    "discovery-password",
    "discovery-request-timeout",
    "discovery-token",
    "discovery-user",
    "distributed-tracing-address",
    "distributed-tracing-instance-id",
    "distributed-tracing-sampling-rate",
    "distributed-tracing-service-name",
    "downgrade-check-time",
    "enable-distributed-tracing",
    "enable-grpc-gateway",
    "enable-log-rotation",
    "experimental-bootstrap-defrag-threshold-megabytes",
    "experimental-compact-hash-check-enabled",
    "experimental-compact-hash-check-time",
    "experimental-compaction-sleep-interval",
    "experimental-distributed-tracing-address",
    "experimental-distributed-tracing-instance-id",
    "experimental-distributed-tracing-sampling-rate",
    "experimental-distributed-tracing-service-name",
    "experimental-downgrade-check-time",
    "experimental-enable-distributed-tracing",
    "experimental-enable-lease-checkpoint-persist",
    "experimental-memory-mlock",
    "experimental-snapshot-catchup-entries",
    "experimental-stop-grpc-service-on-defrag",
    "experimental-txn-mode-write-with-shared-buffer",
    "experimental-warning-unary-request-duration",
    "force",
    "log-format",
    "log-rotation-config-json",
    "max-learners",
    "max-result-buffer",
    "max-retry-attempts",
    "memory-mlock",
    "peer-client-cert-file",
    "peer-client-key-file",
    "peer-election-timeout",
    "peer-heartbeat-interval",
    "peer-skip-client-san-verification",
    "raft-read-timeout",
    "raft-write-timeout",
    "retry-interval",
    "self-signed-cert-validity",
    "snapshot",
    "snapshot-catchup-entries",
    "socket-reuse-address",
    "socket-reuse-port",
    "tls-max-version",
    "tls-min-version",
    "unsafe-no-fsync",
    "v",
    "v2-deprecation",
    "version",
    "vv",
    "warning-apply-duration",
    "warning-unary-request-duration",
    "watch-progress-notify-interval",
];

/// Whether concord's command line takes `--{flag}=` (an empty value):
/// not refused by the etcd-flag filter, and not unknown to clap (a value
/// clap finds invalid still means the flag is known).
fn takes(flag: &str) -> Result<(), String> {
    if ["version", "config-file"].contains(&flag) {
        return Ok(()); // read by main before anything else (tested above)
    }
    let args = vec![std::ffi::OsString::from("concord"), format!("--{flag}=").into()];
    let (kept, _) = concord_server::etcd_flags::strip(args).map_err(|e| e.to_string())?;
    match <concord_server::config::Config as clap::Parser>::try_parse_from(kept) {
        Err(e) if e.kind() == clap::error::ErrorKind::UnknownArgument => Err(e.to_string()),
        _ => Ok(()),
    }
}

#[test]
fn every_flag_of_etcd_3_4_3_5_and_3_6_is_taken() {
    // 3.4's from Debian's etcd itself.
    let help = Command::new("etcd")
        .arg("--help")
        .output()
        .expect("etcd 3.4 (Debian's etcd-server) is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&help.stdout),
        String::from_utf8_lossy(&help.stderr)
    );
    let etcd34: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .map(|l| l.split([' ', '=']).next().unwrap())
        .collect();
    assert!(etcd34.len() >= 70, "{text}");
    let refused: Vec<String> = etcd34
        .iter()
        .chain(ETCD_35_36_FLAGS)
        .filter_map(|f| takes(f).err().map(|e| format!("--{f}: {e}")))
        .collect();
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
}
