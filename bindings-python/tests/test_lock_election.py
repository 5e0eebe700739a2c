"""Locks and elections over the server's Lock and Election services:
against Concord (a process and embedded) and etcd 3.4 alike."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import List

import pytest

import concord
from concord import Compare, Op


def test_lock_mutual_exclusion_with_fencing(endpoint: str) -> None:
    clients = [concord.Client(endpoint, timeout=20) for _ in range(4)]
    clients[0].put("n", "0")
    inside: List[int] = []
    tokens: List[int] = []
    errors: List[BaseException] = []

    def worker(c: concord.Client) -> None:
        try:
            for _ in range(3):
                with c.lock("jobs", ttl=10) as lock:
                    assert lock.held and lock.key is not None and lock.key.startswith(b"jobs/")
                    inside.append(1)
                    assert len(inside) == 1, "two holders at once"
                    kv = c.get("n")
                    assert kv is not None
                    time.sleep(0.01)
                    r = c.txn(compare=[Compare.create_revision(lock.key) == lock.revision],
                              success=[Op.put("n", str(int(kv.value) + 1))])
                    assert r.succeeded
                    tokens.append(lock.revision)
                    inside.pop()
                assert not lock.held
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    n = clients[0].get("n")
    assert n is not None and n.value == b"12"
    assert len(set(tokens)) == 12 and sorted(tokens) == sorted(set(tokens))
    assert clients[0].get_prefix("jobs/") == []  # every holder released


def test_lock_timeout_and_release(endpoint: str) -> None:
    c = concord.Client(endpoint, timeout=20)
    held = c.lock("solo", ttl=10)
    held.acquire()
    other = c.lock("solo", ttl=10)
    t = time.monotonic()
    with pytest.raises(concord.TimeoutError):
        other.acquire(timeout=0.5)
    assert 0.4 <= time.monotonic() - t < 3 and not other.held
    held.release()
    other.acquire(timeout=5)
    assert other.held
    other.release()


def test_election(endpoint: str) -> None:
    c = concord.Client(endpoint, timeout=20)
    e1, e2 = c.election("leader", ttl=5), c.election("leader", ttl=5)
    assert e1.leader() is None
    observed = e1.observe()
    e1.campaign("one")
    assert e1.held and e1.revision > 0
    leader = e2.leader()
    assert leader is not None and leader.value == b"one"
    assert next(observed).value == b"one"
    e1.proclaim("uno")
    assert next(observed).value == b"uno"
    done = threading.Event()

    def second() -> None:
        e2.campaign("two")
        done.set()

    t = threading.Thread(target=second)
    t.start()
    assert not done.wait(0.5), "the second waits while the first leads"
    e1.resign()
    assert done.wait(10)
    assert next(observed).value == b"two"
    with pytest.raises(concord.Error) as err:
        e1.proclaim("stale")
    e2.resign()
    assert c.election("leader").leader() is None
    observed.cancel()
    t.join()
    assert err.value is not None


def test_async_lock_and_election(endpoint: str) -> None:
    async def main() -> None:
        c = concord.AsyncClient(endpoint, timeout=20)
        order: List[str] = []

        async def hold(name: str) -> None:
            async with c.lock("alock", ttl=10) as lock:
                order.append(f"in {name}")
                assert lock.revision > 0
                await asyncio.sleep(0.05)
                order.append(f"out {name}")

        await asyncio.gather(*(hold(str(i)) for i in range(5)))
        for i in range(0, 10, 2):
            assert order[i].startswith("in") and order[i + 1] == "out" + order[i][2:]
        e = c.election("ael", ttl=5)
        await e.campaign("a")
        kv = await e.leader()
        assert kv is not None and kv.value == b"a"
        obs = e.observe()
        assert (await obs.__anext__()).value == b"a"
        await e.proclaim("b")
        assert (await obs.__anext__()).value == b"b"
        await e.resign()
        assert await e.leader() is None
        obs.cancel()

    asyncio.run(main())


def test_pypi_etcd3_lock_works_beside_ours(endpoint: str) -> None:
    """PyPI etcd3's Lock (its own recipe on KV, over gRPC) keeps mutual
    exclusion on Concord as on etcd."""
    import etcd3

    host, port = endpoint.rsplit(":", 1)
    inside: List[int] = []
    bad: List[str] = []

    def worker() -> None:
        e = etcd3.client(host=host, port=int(port), timeout=20)
        for _ in range(3):
            with e.lock("pypi", ttl=10):
                inside.append(1)
                if len(inside) != 1:
                    bad.append("two holders")
                time.sleep(0.02)
                inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not bad and not any(t.is_alive() for t in threads)
