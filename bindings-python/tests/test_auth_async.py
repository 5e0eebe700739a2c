"""Auth, asyncio, and the process-level promises: Ctrl-C interrupts a
blocked watch, a forked child gets a working client, the interpreter exits
cleanly with clients, watches and keep-alives still running."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import concord
from conftest import Proc


def setup_auth(c: concord.Client) -> None:
    c.auth.user_add("root", "rootpw")
    c.auth.user_grant_role("root", "root")
    c.auth.user_add("alice", "alicepw")
    c.auth.role_add("app")
    c.auth.role_grant_permission("app", "readwrite", "app/", prefix=True)
    c.auth.user_grant_role("alice", "app")
    c.auth.enable()


def test_auth(endpoint: str) -> None:
    admin = concord.Client(endpoint)
    setup_auth(admin)
    root = concord.Client(endpoint, user="root", password="rootpw")
    assert sorted(root.auth.user_list()) == ["alice", "root"]
    assert "app" in root.auth.role_list()
    assert root.auth.user_get("alice") == ["app"]
    assert root.auth.role_get("app") == [("readwrite", b"app/", b"app0")]
    alice = concord.Client(endpoint, user="alice", password="alicepw")
    alice.put("app/x", "1")
    with pytest.raises(concord.PermissionDeniedError):
        alice.put("other", "1")
    with pytest.raises(concord.AuthenticationFailedError):
        concord.Client(endpoint, user="alice", password="wrong")
    with pytest.raises(concord.Error):
        admin.get("app/x")  # no token while auth is on
    root.auth.role_revoke_permission("app", "app/", prefix=True)
    # Any auth change invalidates earlier tokens; the client renews its own.
    with pytest.raises(concord.PermissionDeniedError):
        alice.get("app/x")
    root.auth.user_change_password("alice", "new")
    root.auth.user_revoke_role("alice", "app")
    root.auth.user_delete("alice")
    root.auth.role_delete("app")
    root.auth.disable()
    assert admin.get("app/x") is not None


def test_token_expiring_mid_watch_loses_nothing() -> None:
    p = Proc("concord", ["--auth-token-ttl", "1"])
    try:
        setup_auth(concord.Client(p.endpoint))
        alice = concord.Client(p.endpoint, user="alice", password="alicepw", timeout=20)
        w = alice.watch("app/", prefix=True)
        alice.put("app/0", "0")
        assert next(w).kv.value == b"0"
        time.sleep(2.5)  # the token has expired
        p.kill9()  # the stream breaks; the watch must come back with a new token
        p.start()
        for i in range(1, 4):
            alice.put(f"app/{i}", str(i))
        assert [next(w).kv.value for _ in range(3)] == [b"1", b"2", b"3"]
    finally:
        p.stop()


def test_async_surface(endpoint: str) -> None:
    async def main() -> None:
        async with concord.AsyncClient([endpoint]) as c:
            r = await c.put("a/1", "x")
            assert r.revision > 0
            kv = await c.get("a/1")
            assert kv is not None and kv.value == b"x"
            assert [k.key for k in await c.get_prefix("a/")] == [b"a/1"]
            t = await c.txn(compare=[concord.Compare.value("a/1") == "x"], success=[concord.Op.delete("a/1")])
            assert t.succeeded and await c.get("a/1") is None
            assert (await c.status()).leader != 0 and len(await c.members()) == 1
            w = await c.watch("a/", prefix=True)
            await c.put("a/2", "y")
            ev = await w.__anext__()
            assert (ev.type, ev.kv.value) == ("PUT", b"y")
            w.cancel()
            assert [e async for e in w] == []
            async with c.lease(2, keep_alive=True) as lease:
                await c.put("a/l", "v", lease=lease)
                assert not await lease.wait_lost(timeout=3)
                assert sorted(await lease.keys()) == [b"a/l"]
            assert await c.get("a/l") is None
            plain = await c.lease(10)
            assert 8 <= await plain.ttl() <= 10
            await plain.revoke()
            with pytest.raises(concord.FutureRevisionError):
                await c.get("a/2", revision=10_000)

    asyncio.run(main())


def test_async_hundred_tasks_on_one_client(endpoint: str) -> None:
    async def main() -> None:
        c = concord.AsyncClient([endpoint], timeout=20)
        watches = [c.watch(f"t/{i}/", prefix=True) for i in range(50)]
        for w in watches:
            await w

        async def writer(i: int) -> None:
            for j in range(10):
                await c.put(f"t/{i}/{j}", str(j))

        async def reader(i: int) -> list:
            return [(await watches[i].__anext__()).kv.value for _ in range(10)]

        results = await asyncio.gather(*[writer(i) for i in range(50)], *[reader(i) for i in range(50)])
        for got in results[50:]:
            assert got == [str(j).encode() for j in range(10)]
        assert len(await c.get_prefix("t/")) == 500

    asyncio.run(main())


def run_python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def test_ctrl_c_interrupts_a_blocked_watch(concord_server: concord.Server) -> None:
    p = run_python(f"""
        import concord, sys
        c = concord.Client("{concord_server.endpoint}")
        w = c.watch("never")
        print("ready", flush=True)
        try:
            for e in w:
                pass
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
    """)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == b"ready"
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=5)
    assert p.returncode == 3, err
    assert b"interrupted" in out


def test_fork_and_interpreter_exit(concord_server: concord.Server) -> None:
    p = run_python(f"""
        import asyncio, os, concord
        c = concord.Client("{concord_server.endpoint}")
        c.put("fork", "parent")
        w = c.watch("fork")
        lease = c.lease(5, keep_alive=True)
        pid = os.fork()
        if pid == 0:
            child = concord.Client("{concord_server.endpoint}")
            child.put("fork", "child")
            os._exit(0 if child.get("fork").value == b"child" else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert next(w).kv.value == b"child"
        a = concord.AsyncClient("{concord_server.endpoint}")
        async def main():
            await a.put("async", "1")
        asyncio.run(main())
        print("done", flush=True)
        # exit with the client, a watch, a keep-alive and an async client alive
    """)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err.decode()
    assert out.strip() == b"done"


def test_exit_right_after_asyncio_calls_never_crashes(concord_server: concord.Server) -> None:
    """An interpreter that exits while a runtime thread is still finishing
    an asyncio call must not abort (9% of such exits did, in pairs, before
    the module waited for those threads at `atexit`)."""
    code = f"""
        import asyncio, concord
        a = concord.AsyncClient("{concord_server.endpoint}")
        async def main():
            await asyncio.gather(*(a.put(f"exit{{i}}", "1") for i in range(4)))
        asyncio.run(main())
        print("done", flush=True)
    """
    for _ in range(15):
        pair = [run_python(code), run_python(code)]
        for p in pair:
            out, err = p.communicate(timeout=20)
            assert p.returncode == 0, err.decode()
            assert out.strip() == b"done"
