"""Servers for the tests: a real `concord` process, the embedded
`concord.Server`, and Debian's etcd 3.4 (the same tests, minus what only
Concord does). Ports are free ones; data lives in temporary folders."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

import concord

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def concord_bin() -> str:
    if os.environ.get("CONCORD_BIN"):
        return os.environ["CONCORD_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "debug" / "concord")


class Proc:
    """A server process on a free port; restartable on the same data."""

    def __init__(self, kind: str, extra: Optional[List[str]] = None) -> None:
        self.kind = kind
        self.extra = extra or []
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.tmp = tempfile.mkdtemp(prefix=f"pytest-{kind}-")
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.start()

    def argv(self) -> List[str]:
        url = f"http://{self.endpoint}"
        common = ["--data-dir", f"{self.tmp}/data", "--listen-client-urls", url, "--advertise-client-urls", url]
        if self.kind == "etcd":
            peer = f"http://127.0.0.1:{free_port()}"
            return ["etcd", "--name", "default", *common, "--listen-peer-urls", peer,
                    "--initial-advertise-peer-urls", peer, "--initial-cluster", f"default={peer}", *self.extra]
        return [concord_bin(), *common, "--bcrypt-cost", "4", *self.extra]

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=open(f"{self.tmp}/log", "ab"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as r:
                    if b"true" in r.read():
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not start: {Path(self.tmp, 'log').read_text()[-2000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(params=["concord", "embedded", "etcd"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server of each kind: the same test runs against all three."""
    if request.param == "embedded":
        with concord.Server() as s:
            yield s.endpoint
        return
    p = Proc(request.param)
    try:
        yield p.endpoint
    finally:
        p.stop()


@pytest.fixture(params=["concord", "etcd"])
def proc(request: pytest.FixtureRequest) -> Iterator[Proc]:
    """A server process (to kill and restart): Concord and etcd."""
    p = Proc(request.param)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def client(endpoint: str) -> Iterator[concord.Client]:
    with concord.Client([endpoint], timeout=10) as c:
        yield c
