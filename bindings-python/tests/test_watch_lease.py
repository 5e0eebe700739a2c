"""Watches and leases, including what breaks: a member killed and
restarted in the middle of a watch, a lease whose member stays down."""

from __future__ import annotations

import threading
import time

import pytest

import concord
from conftest import Proc


def test_watch_events_in_order(client: concord.Client) -> None:
    w = client.watch("w/", prefix=True, prev_kv=True)
    client.put("w/a", "1")
    client.put("w/a", "2")
    client.delete("w/a")
    client.put("other", "x")
    events = [next(w) for _ in range(3)]
    assert [e.type for e in events] == ["PUT", "PUT", "DELETE"]
    assert [e.kv.key for e in events] == [b"w/a"] * 3
    assert events[1].prev_kv is not None and events[1].prev_kv.value == b"1"
    revs = [e.kv.mod_revision for e in events]
    assert revs == sorted(revs) and len(set(revs)) == 3
    assert w.get(timeout=0.2) is None
    w.cancel()
    assert w.canceled
    assert list(w) == []


def test_watch_history_filters_and_context(client: concord.Client) -> None:
    first = client.put("h", "1").revision
    client.put("h", "2")
    client.delete("h")
    with client.watch("h", start_revision=first, filters=["nodelete"]) as w:
        assert [e.kv.value for e in (next(w), next(w))] == [b"1", b"2"]
        assert w.get(timeout=0.2) is None
    assert w.canceled


def test_watch_cancel_from_another_thread(client: concord.Client) -> None:
    w = client.watch("t")
    out: list = []
    t = threading.Thread(target=lambda: out.extend(w))
    t.start()
    client.put("t", "1")
    deadline = time.monotonic() + 5
    while not out and time.monotonic() < deadline:
        time.sleep(0.01)
    w.cancel()
    t.join(5)
    assert not t.is_alive() and [e.kv.value for e in out] == [b"1"]


def test_watch_of_compacted_revision(client: concord.Client) -> None:
    for i in range(4):
        client.put("cw", str(i))
    rev = client.put("cw", "x").revision
    client.compact(rev, physical=True)
    with pytest.raises(concord.CompactedError) as e:
        next(client.watch("cw", start_revision=rev - 2))
    assert e.value.compact_revision == rev


def test_lease_calls(client: concord.Client) -> None:
    lease = client.lease(30)
    assert lease.granted_ttl == 30 and not lease.keep_alive and not lease.lost
    client.put("l/1", "a", lease=lease)
    client.put("l/2", "b", lease=lease.id)
    assert sorted(lease.keys()) == [b"l/1", b"l/2"]
    assert 28 <= lease.ttl() <= 30
    assert lease.refresh() == 30
    assert lease.id in client.leases()
    kv = client.get("l/1")
    assert kv is not None and kv.lease == lease.id
    lease.revoke()
    assert client.get_prefix("l/") == [] and lease.ttl() == -1
    with pytest.raises(concord.LeaseNotFoundError):
        lease.refresh()


def test_kept_alive_lease_outlives_its_ttl_and_is_revoked_at_exit(client: concord.Client) -> None:
    with client.lease(2, keep_alive=True) as lease:
        client.put("ka", "v", lease=lease)
        assert not lease.wait_lost(timeout=3.5)
        assert client.get("ka") is not None and not lease.lost
    assert client.get("ka") is None


def test_lease_revoked_elsewhere_is_lost(client: concord.Client) -> None:
    lease = client.lease(3, keep_alive=True)
    client.put("lk", "v", lease=lease)
    client.revoke_lease(lease.id)
    assert lease.wait_lost(timeout=5) and lease.lost
    assert client.get("lk") is None
    with pytest.raises(concord.LeaseLostError):
        with lease:
            pass


def test_watch_resumes_across_kill9_exactly_once(proc: Proc) -> None:
    c = concord.Client([proc.endpoint], timeout=20)
    w = c.watch("r/", prefix=True)
    expected = []
    for i in range(5):
        c.put(f"r/{i}", str(i))
        expected.append(str(i).encode())
    got = [next(w).kv.value for _ in range(3)]
    proc.kill9()
    proc.start()
    for i in range(5, 10):
        c.put(f"r/{i}", str(i))
        expected.append(str(i).encode())
    while len(got) < len(expected):
        e = w.get(timeout=15)
        assert e is not None, f"events stopped after {got}"
        got.append(e.kv.value)
    assert got == expected
    assert w.get(timeout=0.3) is None


def test_lease_lost_while_member_stays_down(proc: Proc) -> None:
    c = concord.Client([proc.endpoint], timeout=3)
    lease = c.lease(3, keep_alive=True)
    time.sleep(1.2)
    proc.kill9()
    t = time.monotonic()
    assert lease.wait_lost(timeout=10)
    assert 1.0 <= time.monotonic() - t <= 3.5 and lease.lost
    proc.start()
    with pytest.raises(concord.LeaseLostError) as e:
        with lease:
            pass
    assert e.value.lease_id == lease.id
