"""The package as a user meets it: stubs that match the module (mypy's
stubtest), examples that type-check under `mypy --strict` and run, help
text, and the pytest fixtures it registers."""

from __future__ import annotations

import subprocess
import sys

import concord
from conftest import ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_stubs_match_the_module() -> None:
    r = run("-m", "mypy.stubtest", "concord._native")
    assert r.returncode == 0, r.stdout + r.stderr


def test_examples_pass_mypy_strict() -> None:
    r = run("-m", "mypy", "--strict", "--no-incremental", str(ROOT / "examples" / "python"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_async_example_runs(concord_server: concord.Server) -> None:
    r = run(str(ROOT / "examples" / "python" / "async_workers.py"), concord_server.endpoint)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sorted(lines[:6]) == sorted([f"PUT services/w{i}" for i in range(3)] + [f"DELETE services/w{i}" for i in range(3)])


def test_help_teaches_the_api() -> None:
    assert "watch" in (concord.Client.watch.__doc__ or "")
    assert "keep_alive" in (concord.Client.lease.__doc__ or "")
    assert issubclass(concord.TimeoutError, TimeoutError) and issubclass(concord.LeaseLostError, concord.Error)


def test_fixture(concord_client: concord.Client) -> None:
    concord_client.put("fixture", "ok")
    kv = concord_client.get("fixture")
    assert kv is not None and kv.value == b"ok"
