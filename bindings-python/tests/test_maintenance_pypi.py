"""PyPI etcd3's maintenance calls (gRPC) against Concord and etcd 3.4 alike:
alarms, defragment, hash, and a snapshot written to a file."""

from __future__ import annotations

import hashlib
import io
import subprocess

import pytest

from conftest import Proc, concord_bin


def etcd3_client(p: Proc):  # type: ignore[no-untyped-def]
    import etcd3

    host, port = p.endpoint.rsplit(":", 1)
    return etcd3.client(host=host, port=int(port), timeout=20)


def test_alarms_refuse_writes_until_disarmed(proc: Proc) -> None:
    e = etcd3_client(proc)
    assert list(e.list_alarms()) == []
    member = 0  # etcd3's default: the alarm is the cluster's
    raised = e.create_alarm(member_id=member)
    assert [(a.member_id, a.alarm_type) for a in raised] == [(member, 1)]
    assert [a.member_id for a in e.list_alarms()] == [member]
    assert [a.member_id for a in e.list_alarms(alarm_type="no space")] == [member]
    # etcd3 passes this gRPC error through as grpc's own exception.
    with pytest.raises(Exception) as info:
        e.put("k", "v")
    assert "database space exceeded" in str(info.value)
    e.delete("k")  # deletes still go through
    cleared = e.disarm_alarm(member_id=member)
    assert [a.member_id for a in cleared] == [member]
    assert list(e.list_alarms()) == []
    e.put("k", "v")
    assert e.get("k")[0] == b"v"


def test_defragment_hash_and_snapshot(proc: Proc) -> None:
    e = etcd3_client(proc)
    for i in range(200):
        e.put(f"k{i}", "x" * 1000)
    e.defragment()
    h1 = e.hash()
    assert isinstance(h1, int) and h1 == e.hash()
    buf = io.BytesIO()
    e.snapshot(buf)
    data = buf.getvalue()
    # Both write the content, then its SHA-256, to a multiple of 512 + 32.
    assert len(data) % 512 == 32
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    if proc.kind == "concord":
        path = f"{proc.tmp}/snap.db"
        with open(path, "wb") as f:
            f.write(data)
        out = subprocess.run([concord_bin(), "snapshot", "status", path, "-w", "json"],
                             check=True, capture_output=True, text=True).stdout
        assert '"revision":201' in out.replace(" ", "")
