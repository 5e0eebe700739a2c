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
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (cert, Issuer::new(p, key))
    };
    let (ca_cert, issuer) = ca("concord test CA");
    write(dir.path(), "ca.pem", &ca_cert.pem());

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
    common::etcdctl(&format!("https://{}", s.endpoint), &all)
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

#[test]
fn https_url_needs_a_certificate() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["--data-dir", data.path().join("d").to_str().unwrap()])
        .args([
            "--listen-client-urls",
            &format!("https://127.0.0.1:{}", common::free_port()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
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
        "--peer-client-cert-auth",
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
