//! TLS on the client port: etcdctl with a CA, a client certificate and key
//! against a TLS-only Concord; clients without a valid certificate refused
//! when `--client-cert-auth` is on; the certificate's common name as the
//! user on gRPC. Certificates are made here (rcgen), never committed.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use common::{err, ok, Server};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }
}

fn write(dir: &Path, name: &str, pem: &str) {
    std::fs::write(dir.join(name), pem).unwrap();
}

/// A CA, a server certificate for 127.0.0.1, client certificates for
/// `alice` and `root` from that CA, and one for `alice` from another CA.
fn make_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (cert, Issuer::new(p, key))
    };
    let (ca_cert, issuer) = ca("concord test CA");
    write(dir.path(), "ca.pem", &ca_cert.pem());
    write(dir.path(), "ca-key.pem", &issuer.key().serialize_pem());

    let mut sp = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    sp.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    sp.distinguished_name.push(DnType::CommonName, "concord");
    let sk = KeyPair::generate().unwrap();
    write(dir.path(), "server.pem", &sp.signed_by(&sk, &issuer).unwrap().pem());
    write(dir.path(), "server-key.pem", &sk.serialize_pem());

    for user in ["alice", "root"] {
        let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
        cp.distinguished_name.push(DnType::CommonName, user);
        let ck = KeyPair::generate().unwrap();
        write(
            dir.path(),
            &format!("{user}.pem"),
            &cp.signed_by(&ck, &issuer).unwrap().pem(),
        );
        write(dir.path(), &format!("{user}-key.pem"), &ck.serialize_pem());
    }

    // Client certificates valid for the host name client.example, one of
    // them revoked by the CA's revocation list.
    for (name, serial) in [("hosted", 1001u64), ("revoked", 1002)] {
        let mut cp = CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        cp.distinguished_name.push(DnType::CommonName, name);
        cp.serial_number = Some(rcgen::SerialNumber::from(serial));
        let ck = KeyPair::generate().unwrap();
        write(
            dir.path(),
            &format!("{name}.pem"),
            &cp.signed_by(&ck, &issuer).unwrap().pem(),
        );
        write(dir.path(), &format!("{name}-key.pem"), &ck.serialize_pem());
    }
    let now = time::OffsetDateTime::now_utc();
    let crl = rcgen::CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(1),
        next_update: now + time::Duration::days(1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(1002u64),
            revocation_time: now - time::Duration::minutes(1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap();
    write(dir.path(), "crl.pem", &crl.pem().unwrap());

    let (_, other) = ca("someone else's CA");
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name.push(DnType::CommonName, "alice");
    let ck = KeyPair::generate().unwrap();
    write(dir.path(), "rogue.pem", &cp.signed_by(&ck, &other).unwrap().pem());
    write(dir.path(), "rogue-key.pem", &ck.serialize_pem());
    Pki { dir }
}

/// etcdctl over TLS as the holder of `cert` (none: CA only).
fn etcdctl_tls(s: &Server, pki: &Pki, cert: Option<&str>, args: &[&str]) -> Output {
    etcdctl_tls_at(&s.endpoint, pki, cert, args)
}

/// etcdctl over TLS to `endpoint` (`host:port`) as the holder of `cert`.
fn etcdctl_tls_at(endpoint: &str, pki: &Pki, cert: Option<&str>, args: &[&str]) -> Output {
    let mut tls = vec!["--cacert".to_string(), pki.p("ca.pem")];
    if let Some(c) = cert {
        tls.extend([
            "--cert".into(),
            pki.p(&format!("{c}.pem")),
            "--key".into(),
            pki.p(&format!("{c}-key.pem")),
        ]);
    }
    tls.extend(["--dial-timeout".into(), "3s".into()]);
    let mut all: Vec<&str> = tls.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    common::etcdctl(&format!("https://{endpoint}"), &all)
}

/// `GET /health` over TLS with rustls as the client.
fn https_health(s: &Server, pki: &Pki, cert: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(pki.path("ca.pem")).unwrap();
    for c in rustls_pemfile_certs(&ca) {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = rustls_pemfile_certs(&std::fs::read(pki.path(&format!("{cert}.pem"))).unwrap());
    let key = {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::PrivateKeyDer::from_pem_file(pki.path(&format!("{cert}-key.pem"))).unwrap()
    };
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), "127.0.0.1".try_into().unwrap()).unwrap();
    let tcp = std::net::TcpStream::connect(&s.endpoint).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = tls.read_to_string(&mut out);
    out
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .map(Result::unwrap)
        .collect()
}

/// A TLS-only Concord with the test PKI's server certificate and `extra` flags.
fn tls_server(pki: &Pki, data: &tempfile::TempDir, extra: &[&str]) -> Server {
    let (cert, key) = (pki.p("server.pem"), pki.p("server-key.pem"));
    let mut args = vec![
        "--cert-file",
        cert.as_str(),
        "--key-file",
        key.as_str(),
        "--bcrypt-cost",
        "4",
    ];
    args.extend_from_slice(extra);
    Server::concord_tls(&data.path().join("d"), &args)
}

#[test]
fn tls_client_port_with_client_certificates() {
    let pki = make_pki();
    let data = tempfile::tempdir().unwrap();
    let ca = pki.p("ca.pem");
    let s = tls_server(&pki, &data, &["--trusted-ca-file", &ca, "--client-cert-auth"]);

    ok(etcdctl_tls(&s, &pki, Some("alice"), &["put", "foo", "bar"]));
    assert_eq!(
        ok(etcdctl_tls(
            &s,
            &pki,
            Some("alice"),
            &["get", "foo", "--print-value-only"]
        ))
        .trim(),
        "bar"
    );
    // No client certificate, or one from another CA: refused.
    err(etcdctl_tls(&s, &pki, None, &["get", "foo"]));
    err(etcdctl_tls(&s, &pki, Some("rogue"), &["get", "foo"]));
    // Plain HTTP on the TLS port gets nothing.
    assert!(common::http(&s.endpoint, "GET", "/health", "").map_or(true, |(st, _)| st != 200));
    // The gateway over TLS.
    assert!(https_health(&s, &pki, "alice").contains(r#"{"health":"true"}"#));

    // With auth on, the certificate's common name is the user on gRPC.
    for a in common::ALICE_SETUP {
        ok(etcdctl_tls(&s, &pki, Some("root"), a));
    }
    ok(etcdctl_tls(&s, &pki, Some("alice"), &["put", "app/x", "1"]));
    let e = err(etcdctl_tls(&s, &pki, Some("alice"), &["put", "other", "1"]));
    assert!(e.contains("permission denied"), "{e}");
    // root's certificate is root.
    ok(etcdctl_tls(&s, &pki, Some("root"), &["put", "other", "1"]));
    ok(etcdctl_tls(&s, &pki, Some("root"), &["user", "list"]));
    // A token still wins over the certificate.
    let e = err(etcdctl_tls(
        &s,
        &pki,
        Some("root"),
        &["--user", "alice:alicepw", "put", "other", "2"],
    ));
    assert!(e.contains("permission denied"), "{e}");
}

/// Starts concord with `args` and a fresh data directory, expecting it to
/// refuse to start; what it said.
fn refused_start(args: &[&str]) -> String {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["--data-dir", data.path().join("d").to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} started");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn https_url_needs_a_certificate() {
    let url = format!("https://127.0.0.1:{}", common::free_port());
    let stderr = refused_start(&["--listen-client-urls", &url]);
    assert!(stderr.contains("needs --cert-file and --key-file"), "{stderr}");
}

/// The PyPI etcd3 client (gRPC) with a user and password, over TLS:
/// refused without credentials and with a wrong password, allowed with the
/// right one within the user's permissions.
#[test]
fn etcd3_python_client_with_password_over_tls() {
    let pki = make_pki();
    let data = tempfile::tempdir().unwrap();
    let s = tls_server(&pki, &data, &[]);
    for a in common::ALICE_SETUP {
        ok(etcdctl_tls(&s, &pki, None, a));
    }
    let (host, port) = s.endpoint.split_once(':').unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/etcd3_auth_check.py");
    let out = std::process::Command::new("timeout")
        .args(["60", "python3", script, host, port, &pki.p("ca.pem")])
        .output()
        .expect("python3 runs (scripts/test installs etcd3)");
    assert!(
        out.status.success(),
        "etcd3 check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Members talk over peer TLS: each presents its certificate and checks
/// the others' against the peer CA (`--peer-client-cert-auth`).
#[tokio::test(flavor = "multi_thread")]
async fn members_replicate_over_peer_tls() {
    use concord_core::client::{Client, ClientOptions, GetOptions, PutOptions};
    let pki = make_pki();
    let (cert, key, ca) = (pki.p("server.pem"), pki.p("server-key.pem"), pki.p("ca.pem"));
    let extra = [
        "--peer-cert-file",
        cert.as_str(),
        "--peer-key-file",
        key.as_str(),
        "--peer-trusted-ca-file",
        ca.as_str(),
    ];
    let cluster = common::cluster::Cluster::start_with(3, &extra, "https");
    let eps = cluster.endpoints();
    let c = Client::connect(ClientOptions::new([eps[0].clone()])).await.unwrap();
    c.put("tls/x", "1", PutOptions::new()).await.unwrap();
    for ep in &eps {
        let r = Client::connect(ClientOptions::new([ep.clone()])).await.unwrap();
        assert_eq!(
            r.get("tls/x", GetOptions::new()).await.unwrap().kvs[0].value,
            b"1",
            "{ep}"
        );
    }
    // The peer port speaks TLS only: a plain request gets nowhere.
    let relay = cluster.members[0].relay.port;
    let plain = common::http(&format!("127.0.0.1:{relay}"), "POST", "/raft/message", "");
    assert!(
        plain.map_or(true, |(status, _)| status != 204),
        "plain HTTP on the peer port"
    );
    // With a peer CA, a peer must present a certificate it signed (not
    // only with --peer-client-cert-auth, as etcd): without one the
    // handshake fails; with one it gets through.
    let probe = |port: u16, cert: bool| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "--max-time",
            "10",
        ]);
        if cert {
            cmd.args(["--cert", &pki.p("alice.pem"), "--key", &pki.p("alice-key.pem")]);
        }
        let out = cmd
            .arg(format!("https://127.0.0.1:{port}/raft/probing"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let port = cluster.members[0].peer_port;
    assert_eq!(probe(port, false), "000", "a peer without a certificate got through");
    assert_eq!(probe(port, true), "204");
    // Said explicitly, a member accepts peers without one.
    let mut open = extra.to_vec();
    open.push("--peer-client-cert-auth=false");
    let one = common::cluster::Cluster::start_with(1, &open, "https");
    assert_eq!(probe(one.members[0].peer_port, false), "204");
}

/// The shared client (every binding's transport) over TLS: the CA from a
/// file or from PEM bytes, a client certificate when the member asks for
/// one; refused without the certificate, and by a server it cannot verify.
#[test]
fn shared_client_over_tls_with_a_client_certificate() {
    use concord_core::client::{BlockingClient, ClientOptions, GetOptions, Pem, PutOptions, TlsOptions};
    let pki = make_pki();
    let data = tempfile::tempdir().unwrap();
    let ca = pki.p("ca.pem");
    let s = tls_server(&pki, &data, &["--trusted-ca-file", &ca, "--client-cert-auth"]);
    let url = format!("https://{}", s.endpoint);
    let with = |tls: TlsOptions| BlockingClient::connect(ClientOptions::new([url.clone()]).tls(tls)).unwrap();

    let alice = TlsOptions::new()
        .ca(Pem::File(pki.path("ca.pem")))
        .identity(Pem::File(pki.path("alice.pem")), Pem::File(pki.path("alice-key.pem")));
    let c = with(alice);
    c.block_on(c.client().put("tls/k", "v", PutOptions::new())).unwrap();
    let bytes = |n: &str| Pem::Bytes(std::fs::read(pki.path(n)).unwrap());
    let from_bytes = TlsOptions::new()
        .ca(bytes("ca.pem"))
        .identity(bytes("alice.pem"), bytes("alice-key.pem"));
    let c = with(from_bytes);
    let got = c.block_on(c.client().get("tls/k", GetOptions::new())).unwrap();
    assert_eq!(got.kvs[0].value, b"v");

    // No client certificate: the handshake fails, the call reports it.
    let c = with(TlsOptions::new().ca(Pem::File(pki.path("ca.pem"))));
    let e = short_get(&c, "tls/k").expect_err("refused without a certificate");
    assert_eq!(e.kind(), concord_core::client::ErrorKind::Timeout, "{e}");
    // The platform's roots do not know the test CA.
    let c = with(TlsOptions::new().identity(Pem::File(pki.path("alice.pem")), Pem::File(pki.path("alice-key.pem"))));
    assert!(short_get(&c, "tls/k").is_err());
}

/// A get with a 1 s deadline.
fn short_get(c: &concord_core::client::BlockingClient, key: &str) -> Result<(), concord_core::client::Error> {
    let short = c.client().with_timeout(std::time::Duration::from_secs(1));
    c.block_on(short.get(key, concord_core::client::GetOptions::new()))
        .map(|_| ())
}

/// A TLS client: rustls with the test CA, presenting `cert` if given,
/// offering only `versions` and (if given) `suites`.
fn tls_client(
    pki: &Pki,
    cert: Option<&str>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    suites: Option<Vec<rustls::SupportedCipherSuite>>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile_certs(&std::fs::read(pki.path("ca.pem")).unwrap()) {
        roots.add(c).unwrap();
    }
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(s) = suites {
        provider.cipher_suites = s;
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match cert {
        Some(c) => {
            use rustls_pki_types::pem::PemObject;
            let chain = rustls_pemfile_certs(&std::fs::read(pki.path(&format!("{c}.pem"))).unwrap());
            let key = rustls_pki_types::PrivateKeyDer::from_pem_file(pki.path(&format!("{c}-key.pem"))).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    })
}

/// `GET /health` over TLS at `endpoint` with `cfg`: the TLS version and
/// suite agreed, or why the server refused.
fn tls_get(endpoint: &str, cfg: Arc<rustls::ClientConfig>) -> Result<(String, String), String> {
    let conn = rustls::ClientConnection::new(cfg, "127.0.0.1".try_into().unwrap()).unwrap();
    let tcp = std::net::TcpStream::connect(endpoint).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    tls.read_to_string(&mut out).map_err(|e| e.to_string())?;
    if !out.starts_with("HTTP/1.1 ") {
        return Err(format!("no HTTP answer: {out:?}"));
    }
    let version = format!("{:?}", tls.conn.protocol_version().unwrap());
    let suite = format!("{:?}", tls.conn.negotiated_cipher_suite().unwrap().suite());
    Ok((version, suite))
}

#[test]
fn tls_versions_cipher_suites_revocation_and_host_names_follow_the_flags() {
    use rustls::crypto::ring::cipher_suite as cs;
    use rustls::version::{TLS12, TLS13};
    let pki = make_pki();

    // TLS 1.3 only: a TLS 1.2 client is refused.
    let data = tempfile::tempdir().unwrap();
    let s = tls_server(&pki, &data, &["--tls-min-version", "TLS1.3"]);
    assert!(tls_get(&s.endpoint, tls_client(&pki, None, &[&TLS12], None)).is_err());
    assert_eq!(
        tls_get(&s.endpoint, tls_client(&pki, None, &[&TLS12, &TLS13], None))
            .unwrap()
            .0,
        "TLSv1_3"
    );
    drop(s);

    // TLS 1.2 with one suite (a CBC suite named too is not offered).
    let data = tempfile::tempdir().unwrap();
    let s = tls_server(
        &pki,
        &data,
        &[
            "--tls-max-version=TLS1.2",
            "--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ],
    );
    let other = vec![
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS13_AES_128_GCM_SHA256,
    ];
    assert!(tls_get(&s.endpoint, tls_client(&pki, None, &[&TLS12, &TLS13], Some(other))).is_err());
    assert_eq!(
        tls_get(&s.endpoint, tls_client(&pki, None, &[&TLS12, &TLS13], None)).unwrap(),
        (
            "TLSv1_2".to_string(),
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string()
        )
    );
    drop(s);

    // Client certificates: revoked ones and ones not valid for the allowed
    // host name are refused.
    let data = tempfile::tempdir().unwrap();
    let (ca, crl) = (pki.p("ca.pem"), pki.p("crl.pem"));
    let s = tls_server(
        &pki,
        &data,
        &[
            "--trusted-ca-file",
            &ca,
            "--client-cert-auth",
            "--client-crl-file",
            &crl,
            "--client-cert-allowed-hostname",
            "client.example",
        ],
    );
    let all = [&TLS12, &TLS13];
    assert!(tls_get(&s.endpoint, tls_client(&pki, Some("hosted"), &all, None)).is_ok());
    for refused in ["revoked", "alice"] {
        let r = tls_get(&s.endpoint, tls_client(&pki, Some(refused), &all, None));
        assert!(r.is_err(), "{refused}: {r:?}");
    }
    // etcdctl with the allowed certificate works end to end.
    ok(etcdctl_tls(&s, &pki, Some("hosted"), &["put", "k", "v"]));

    // A bad value stops the start, naming the problem.
    let stderr = refused_start(&["--cipher-suites=TLS_NOPE"]);
    assert!(stderr.contains("unknown cipher suite \"TLS_NOPE\""), "{stderr}");
    let stderr = refused_start(&["--tls-min-version=TLS1.3", "--tls-max-version=TLS1.2"]);
    assert!(stderr.contains("above --tls-max-version"), "{stderr}");
}

#[test]
fn the_peer_port_takes_only_allowed_common_names() {
    let pki = make_pki();
    let data = tempfile::tempdir().unwrap();
    let peer = format!("https://127.0.0.1:{}", common::free_port());
    let (cert, key, ca) = (pki.p("server.pem"), pki.p("server-key.pem"), pki.p("ca.pem"));
    let s = Server::concord_in(
        &data.path().join("d"),
        &[
            "--initial-cluster",
            &format!("m1={peer}"),
            "--name",
            "m1",
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--peer-cert-file",
            &cert,
            "--peer-key-file",
            &key,
            "--peer-trusted-ca-file",
            &ca,
            "--peer-client-cert-auth",
            "--peer-cert-allowed-cn",
            "root,concord",
        ],
    );
    let peer_ep = peer.trim_start_matches("https://");
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    assert!(tls_get(peer_ep, tls_client(&pki, Some("root"), &all, None)).is_ok());
    let r = tls_get(peer_ep, tls_client(&pki, Some("alice"), &all, None));
    assert!(r.is_err(), "alice's certificate: {r:?}");
    drop(s);
}

#[test]
fn auto_tls_serves_with_a_self_signed_certificate() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("d");
    let s = Server::concord_tls(&dir, &["--auto-tls"]);
    let out = common::etcdctl(
        &format!("https://{}", s.endpoint),
        &[
            "--insecure-transport=false",
            "--insecure-skip-tls-verify",
            "--dial-timeout",
            "3s",
            "put",
            "k",
            "v",
        ],
    );
    ok(out);
    assert!(dir.join("fixtures/client/cert.pem").exists());
    // Verified against a CA, the self-signed certificate is refused.
    let pki = make_pki();
    let r = tls_get(&s.endpoint, tls_client(&pki, None, &[&rustls::version::TLS13], None));
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn members_replicate_over_peer_auto_tls() {
    use concord_core::client::{Client, ClientOptions, GetOptions, PutOptions};
    let cluster = common::cluster::Cluster::start_with(3, &["--peer-auto-tls"], "https");
    let eps = cluster.endpoints();
    let c = Client::connect(ClientOptions::new([eps[0].clone()])).await.unwrap();
    c.put("auto/x", "1", PutOptions::new()).await.unwrap();
    for ep in &eps {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = Client::connect(ClientOptions::new([ep.clone()])).await.unwrap();
            let got = r.get("auto/x", GetOptions::new().serializable()).await.unwrap();
            if got.kvs.first().is_some_and(|kv| kv.value == b"1") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{ep} never got the write");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    for m in &cluster.members {
        assert!(m.dir.join("fixtures/peer/cert.pem").exists(), "{}", m.dir.display());
    }
}

/// `examples/systemd/concord.yml`, the sample production config, starts a
/// member once its addresses, data directory and certificate paths are
/// this machine's: every other setting is taken as written.
#[test]
fn the_sample_production_config_starts_a_member() {
    use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};
    let pki = make_pki();
    let tmp = tempfile::tempdir().unwrap();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/systemd/concord.yml");
    let mut doc = YamlLoader::load_from_str(&std::fs::read_to_string(sample).unwrap())
        .unwrap()
        .remove(0);
    let (client, peer, metrics) = (common::free_port(), common::free_port(), common::free_port());
    let s = |v: &str| Yaml::String(v.to_string());
    let Yaml::Hash(h) = &mut doc else {
        panic!("the sample is a mapping")
    };
    let mut set = |k: &str, v: String| {
        assert!(h.contains_key(&s(k)), "the sample sets {k}");
        h.insert(s(k), s(&v));
    };
    set("data-dir", tmp.path().join("m1").display().to_string());
    set("listen-client-urls", format!("https://127.0.0.1:{client}"));
    set("advertise-client-urls", format!("https://127.0.0.1:{client}"));
    set("listen-metrics-urls", format!("http://127.0.0.1:{metrics}"));
    set("listen-peer-urls", format!("https://127.0.0.1:{peer}"));
    set("initial-advertise-peer-urls", format!("https://127.0.0.1:{peer}"));
    set("initial-cluster", format!("member-1=https://127.0.0.1:{peer}"));
    for section in ["client-transport-security", "peer-transport-security"] {
        let Some(Yaml::Hash(t)) = h.get_mut(&s(section)) else {
            panic!("the sample has {section}")
        };
        t.insert(s("cert-file"), s(&pki.p("server.pem")));
        t.insert(s("key-file"), s(&pki.p("server-key.pem")));
        t.insert(s("trusted-ca-file"), s(&pki.p("ca.pem")));
    }
    let mut text = String::new();
    YamlEmitter::new(&mut text).dump(&doc).unwrap();
    let path = tmp.path().join("concord.yml");
    std::fs::write(&path, text).unwrap();

    let log = tmp.path().join("log");
    let mut child = common::Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .arg("--config-file")
            .arg(&path)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let probe = format!("127.0.0.1:{metrics}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // `/health` answers false at once while there is no leader.
    while !matches!(common::http(&probe, "GET", "/health", ""), Ok((200, _))) {
        assert!(
            child.0.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline,
            "the sample config does not start:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        common::http(&probe, "GET", "/readyz", "").unwrap(),
        (200, "ok\n".into())
    );
    let ep = format!("127.0.0.1:{client}");
    // Client certificates are required, as the sample says.
    assert!(!etcdctl_tls_at(&ep, &pki, None, &["put", "k", "v"]).status.success());
    ok(etcdctl_tls_at(&ep, &pki, Some("root"), &["put", "k", "v"]));
    let got = ok(etcdctl_tls_at(
        &ep,
        &pki,
        Some("root"),
        &["get", "k", "--print-value-only"],
    ));
    assert_eq!(got.trim(), "v");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.lines().all(|l| l.starts_with('{')),
        "JSON logs, as the sample asks:\n{log}"
    );
}

/// kubeadm's static-pod etcd flags, certificates and all (made here, on
/// loopback): the API server's way in (etcdctl with a client certificate
/// on either client URL) and the kubelet's probe on the metrics port.
#[test]
fn a_kubeadm_manifest_with_its_certificates_serves_etcdctl_over_tls() {
    let pki = make_pki();
    let tmp = tempfile::tempdir().unwrap();
    let (c1, c2, peer, metrics) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let (crt, key, ca) = (pki.p("server.pem"), pki.p("server-key.pem"), pki.p("ca.pem"));
    let args = [
        format!("--advertise-client-urls=https://127.0.0.1:{c2}"),
        format!("--cert-file={crt}"),
        "--client-cert-auth=true".into(),
        format!("--data-dir={}", tmp.path().join("etcd").display()),
        "--experimental-initial-corrupt-check=true".into(),
        "--experimental-watch-progress-notify-interval=5s".into(),
        format!("--initial-advertise-peer-urls=https://127.0.0.1:{peer}"),
        format!("--initial-cluster=node1=https://127.0.0.1:{peer}"),
        format!("--key-file={key}"),
        format!("--listen-client-urls=https://127.0.0.1:{c1},https://127.0.0.1:{c2}"),
        format!("--listen-metrics-urls=http://127.0.0.1:{metrics}"),
        format!("--listen-peer-urls=https://127.0.0.1:{peer}"),
        "--name=node1".into(),
        format!("--peer-cert-file={crt}"),
        "--peer-client-cert-auth=true".into(),
        format!("--peer-key-file={key}"),
        format!("--peer-trusted-ca-file={ca}"),
        "--snapshot-count=10000".into(),
        format!("--trusted-ca-file={ca}"),
    ];
    let log = tmp.path().join("log");
    let mut child = common::Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(&args)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // The kubelet's probe.
    let probe = format!("127.0.0.1:{metrics}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !matches!(
        common::http(&probe, "GET", "/health?exclude=NOSPACE&serializable=true", ""),
        Ok((200, _))
    ) {
        assert!(
            child.0.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (e1, e2) = (format!("127.0.0.1:{c1}"), format!("127.0.0.1:{c2}"));
    ok(etcdctl_tls_at(
        &e1,
        &pki,
        Some("root"),
        &["put", "/registry/pods/x", "v"],
    ));
    let got = ok(etcdctl_tls_at(
        &e2,
        &pki,
        Some("root"),
        &["get", "/registry/pods/x", "--print-value-only"],
    ));
    assert_eq!(got.trim(), "v");
    // Without a client certificate, or with one from another CA: refused.
    for cert in [None, Some("rogue")] {
        let out = etcdctl_tls_at(&e1, &pki, cert, &["get", "x"]);
        assert!(!out.status.success(), "{cert:?}");
    }
    let members = ok(etcdctl_tls_at(&e1, &pki, Some("root"), &["member", "list"]));
    assert!(members.contains(&format!("https://127.0.0.1:{peer}")), "{members}");
}

/// A client certificate made as many guides make it (`openssl x509 -req`
/// without extensions: X.509 v1) is refused, and the member says why and
/// how to make one it takes.
#[test]
fn a_v1_client_certificate_is_refused_with_a_hint() {
    let pki = make_pki();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(pki.dir.path())
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "v1-key.pem",
        "-subj",
        "/CN=alice",
        "-out",
        "v1.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "v1.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-out",
        "v1.pem",
        "-days",
        "1",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let url = format!("https://127.0.0.1:{port}");
    let log = tmp.path().join("log");
    let _child = common::Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(["--data-dir", tmp.path().join("d").to_str().unwrap()])
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args([
                "--cert-file",
                &pki.p("server.pem"),
                "--key-file",
                &pki.p("server-key.pem"),
            ])
            .args(["--trusted-ca-file", &pki.p("ca.pem"), "--client-cert-auth"])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let ep = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(&ep).is_err() {
        assert!(std::time::Instant::now() < deadline, "concord did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // etcdctl (Go) presents the v1 certificate; rustls would not load it.
    let out = etcdctl_tls_at(&ep, &pki, Some("v1"), &["get", "k"]);
    assert!(!out.status.success());
    ok(etcdctl_tls_at(&ep, &pki, Some("alice"), &["get", "k"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("rejected connection") && text.contains("X.509 v1") {
            assert!(text.contains("remote_addr"), "{text}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no warning with a hint:\n{text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
