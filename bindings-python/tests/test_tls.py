"""The package over TLS: a CA file or PEM bytes, a client certificate for
a member run with --client-cert-auth; refused without the certificate."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest

import concord
from conftest import concord_bin, free_port


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(p / "ca-key.pem"), "-out",
                str(p / "ca.pem"), "-days", "2", "-subj", "/CN=test CA")
        (p / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        (p / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
        for name in ["server", "client"]:
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(p / f"{name}-key.pem"), "-out",
                    str(p / f"{name}.csr"), "-subj", f"/CN={name}")
            openssl("x509", "-req", "-in", str(p / f"{name}.csr"), "-CA", str(p / "ca.pem"), "-CAkey",
                    str(p / "ca-key.pem"), "-CAcreateserial", "-out", str(p / f"{name}.pem"), "-days", "2",
                    "-extfile", str(p / f"{name}.ext"))
        yield p


@pytest.fixture
def tls_server(pki: Path) -> Iterator[Tuple[str, Path]]:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen([concord_bin(), "--data-dir", f"{data}/d", "--listen-client-urls", url,
                                 "--advertise-client-urls", url, "--cert-file", str(pki / "server.pem"),
                                 "--key-file", str(pki / "server-key.pem"), "--trusted-ca-file", str(pki / "ca.pem"),
                                 "--client-cert-auth"], stderr=subprocess.DEVNULL)
        try:
            yield url, pki
        finally:
            proc.terminate()
            proc.wait(10)


def test_client_certificate_and_ca(tls_server: Tuple[str, Path]) -> None:
    url, pki = tls_server
    kw = dict(ca_file=str(pki / "ca.pem"), cert_file=str(pki / "client.pem"), key_file=str(pki / "client-key.pem"))
    deadline = time.monotonic() + 20
    while True:
        try:
            c = concord.Client(url, timeout=2, **kw)  # type: ignore[arg-type]
            c.put("tls", "yes")
            break
        except concord.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    kv = c.get("tls")
    assert kv is not None and kv.value == b"yes"
    with_pem = concord.Client(url, ca_pem=(pki / "ca.pem").read_bytes(), cert_file=kw["cert_file"],
                              key_file=kw["key_file"])
    assert with_pem.get("tls") is not None
    # No client certificate: the member refuses the connection.
    with pytest.raises((concord.UnavailableError, concord.TimeoutError)):
        concord.Client(url, ca_file=kw["ca_file"], timeout=1).get("tls")
    # A CA file that is not there: a clear error before anything is sent.
    with pytest.raises(concord.InvalidArgumentError) as e:
        concord.Client(url, ca_file=str(pki / "nope.pem"))
    assert "nope.pem" in str(e.value)
    with pytest.raises(concord.InvalidArgumentError):
        concord.Client(url, cert_file=kw["cert_file"])  # a key must go with it
