"""Drives a Concord server with the PyPI etcd3gw client (the JSON gateway),
unchanged. Usage: python3 etcd3gw_check.py HOST PORT. Exits non-zero on the
first mismatch."""

import sys
import threading
import time

import etcd3gw

host, port = sys.argv[1], int(sys.argv[2])
c = etcd3gw.client(host=host, port=port)
assert c.api_path == "/v3/", c.api_path

assert c.put("foo", "bar") is True
assert c.get("foo") == [b"bar"]
c.put("svc/a", "1")
c.put("svc/b", "2")
assert sorted(v for v, _ in c.get_prefix("svc/")) == [b"1", b"2"]
assert c.replace("foo", "bar", "baz") is True
assert c.replace("foo", "bar", "qux") is False
assert c.get("foo") == [b"baz"]
assert c.delete("foo") is True
assert c.get("foo") == []

lease = c.lease(ttl=5)
c.put("eph", "x", lease=lease)
assert lease.keys() == [b"eph"], lease.keys()
assert 3 <= lease.ttl() <= 5, lease.ttl()
assert lease.refresh() == 5

events, cancel = c.watch("svc/a")


def writer():
    time.sleep(0.5)
    c.put("svc/a", "changed")


threading.Thread(target=writer).start()
for ev in events:
    assert ev["kv"]["key"] == b"svc/a" and ev["kv"]["value"] == b"changed", ev
    break
cancel()

prefix_events, cancel = c.watch_prefix("svc/")
c.delete("svc/b")
for ev in prefix_events:
    assert ev.get("type") == "DELETE" and ev["kv"]["key"] == b"svc/b", ev
    break
cancel()

assert lease.revoke() is True
assert c.get("eph") == []
assert c.status()["version"] == "3.4.0"
assert len(c.members()) == 1
print("etcd3gw: all checks passed")
