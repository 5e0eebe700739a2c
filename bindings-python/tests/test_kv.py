"""KV, transactions, status and members: every call against Concord (a
process and embedded) and etcd 3.4."""

from __future__ import annotations

import pytest

import concord
from concord import Compare, Op


def test_put_get_delete(client: concord.Client) -> None:
    r = client.put("k", "v1")
    assert r.revision > 1 and r.prev_kv is None
    r = client.put(b"k", b"v2", prev_kv=True)
    assert r.prev_kv is not None and r.prev_kv.value == b"v1"
    kv = client.get("k")
    assert kv is not None
    assert (kv.key, kv.value, kv.version, kv.lease) == (b"k", b"v2", 2, 0)
    assert kv.mod_revision == r.revision and kv.create_revision < kv.mod_revision
    assert client.get("missing") is None
    old = client.get("k", revision=kv.create_revision)
    assert old is not None and old.value == b"v1"
    assert client.get("k", serializable=True) == kv
    assert client.delete("k") == 1
    assert client.delete("k") == 0
    assert client.get("k") is None
    # NULs and non-UTF-8 bytes travel as they are.
    client.put(b"bin\x00key", b"\x00\xff\xfe")
    got = client.get(b"bin\x00key")
    assert got is not None and got.value == b"\x00\xff\xfe"


def test_prefix_and_ranges(client: concord.Client) -> None:
    for k, v in [("p/b", "2"), ("p/a", "1"), ("p/c", "3"), ("q", "x")]:
        client.put(k, v)
    assert [kv.key for kv in client.get_prefix("p/")] == [b"p/a", b"p/b", b"p/c"]
    assert [kv.key for kv in client.get_prefix("p/", order="descend")] == [b"p/c", b"p/b", b"p/a"]
    assert [kv.value for kv in client.get_prefix("p/", sort="value", order="descend", limit=2)] == [b"3", b"2"]
    assert all(kv.value == b"" for kv in client.get_prefix("p/", keys_only=True))
    r = client.get_range("p/a", "p/c")
    assert [kv.key for kv in r.kvs] == [b"p/a", b"p/b"] and r.count == 2 and not r.more
    r = client.get_range("p/", prefix=True, limit=1)
    assert (len(r.kvs), r.count, r.more) == (1, 3, True)
    r = client.get_range("p/", prefix=True, count_only=True)
    assert (r.kvs, r.count) == ([], 3)
    with pytest.raises(concord.InvalidArgumentError):
        client.get_range("p/", "p0", prefix=True)
    with pytest.raises(ValueError):
        client.get_prefix("p/", sort="color")
    d = client.delete_range("p/a", "p/c", prev_kv=True)
    assert d.deleted == 2 and sorted(kv.key for kv in d.prev_kvs) == [b"p/a", b"p/b"]
    assert client.delete_prefix("p/") == 1
    assert client.get_prefix("p/") == []


def test_txn(client: concord.Client) -> None:
    client.put("cfg", "on")
    kv = client.get("cfg")
    assert kv is not None
    r = client.txn(
        compare=[Compare.value("cfg") == "on", Compare.mod_revision("cfg") == kv.mod_revision, Compare.version("cfg") > 0],
        success=[Op.put("cfg", "off", prev_kv=True), Op.get("cfg"), Op.delete("gone"),
                 Op.txn(compare=[Compare.version("x") == 0], success=[Op.put("x", "1")])],
        failure=[Op.get("cfg")],
    )
    assert r.succeeded
    put, get, delete, nested = r.responses
    assert isinstance(put, concord.PutResult) and put.prev_kv is not None and put.prev_kv.value == b"on"
    assert isinstance(get, concord.RangeResult) and get.kvs[0].value == b"off"
    assert isinstance(delete, concord.DeleteResult) and delete.deleted == 0
    assert isinstance(nested, concord.TxnResult) and nested.succeeded
    assert client.get("x") is not None
    r = client.txn(compare=[Compare.value("cfg") != "off"], success=[Op.put("cfg", "no")], failure=[Op.get("cfg")])
    assert not r.succeeded
    only = r.responses[0]
    assert isinstance(only, concord.RangeResult) and only.kvs[0].value == b"off"
    r = client.txn(compare=[Compare.create_revision("x", prefix=True) < 1_000_000, Compare.lease("x") == 0])
    assert r.succeeded and r.responses == []


def test_status_members_compact(client: concord.Client) -> None:
    st = client.status()
    assert st.version.startswith("3.") and st.leader != 0 and st.revision >= 1 and st.db_size > 0
    members = client.members()
    assert len(members) == 1 and members[0].client_urls and members[0].id == st.member_id
    for i in range(5):
        client.put("c", str(i))
    rev = client.put("c", "last").revision
    client.compact(rev - 2, physical=True)
    with pytest.raises(concord.CompactedError) as e:
        client.get("c", revision=rev - 4)
    assert e.value.code == 11 and "compacted" in e.value.message
    with pytest.raises(concord.FutureRevisionError):
        client.get("c", revision=rev + 100)


def test_errors_keep_etcd_codes(client: concord.Client) -> None:
    with pytest.raises(concord.InvalidArgumentError) as e:
        client.put("", "v")
    assert e.value.message == "etcdserver: key is not provided" and e.value.code == 3
    assert isinstance(e.value, concord.Error) and isinstance(e.value, ValueError)
    with pytest.raises(concord.LeaseNotFoundError):
        client.put("k", "v", lease=0x1234)
    with pytest.raises(TypeError):
        client.put(1, "v")  # type: ignore[arg-type]


def test_unreachable_is_unavailable_or_timeout() -> None:
    from conftest import free_port

    c = concord.Client([f"127.0.0.1:{free_port()}"], timeout=0.5)
    with pytest.raises((concord.UnavailableError, concord.TimeoutError)) as e:
        c.get("k")
    if isinstance(e.value, concord.TimeoutError):
        assert isinstance(e.value, TimeoutError)
