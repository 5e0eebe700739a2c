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
    let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(&args)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let probe = format!("127.0.0.1:{metrics}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // kubeadm's liveness and startup probe.
        if let Ok((200, body)) = http(&probe, "GET", "/health?exclude=NOSPACE&serializable=true", "") {
            assert_eq!(body, r#"{"health":"true"}"#);
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
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
    let _ = child.kill();
    let _ = child.wait();
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
        assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{l}");
    }
    for named in [
        "--max-wals=5",
        "--enable-v2=true",
        "--unsafe-no-fsync=true",
        "--strict-reconfig-check=true",
        "--feature-gates=InitialCorruptCheck=true",
    ] {
        assert!(line.contains(named), "{named} not named: {line}");
    }
}

#[test]
fn a_restriction_concord_cannot_honour_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args([
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "--peer-cert-allowed-cn",
            "etcd-peer",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("--peer-cert-allowed-cn=etcd-peer: not implemented"),
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
