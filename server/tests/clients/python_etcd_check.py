"""Drives a server with the PyPI python-etcd client (etcd's v2 keys API),
unchanged: the calls of its README and of the classic v2 guides. Usage:
python3 python_etcd_check.py HOST PORT. Exits non-zero on the first
mismatch."""

import sys
import threading

import etcd

host, port = sys.argv[1], int(sys.argv[2])
c = etcd.Client(host=host, port=port)

# set, get, overwrite with the previous node
r = c.write("/message", "Hello world")
assert r.action == "set" and r.value == "Hello world" and r.newKey, r
assert c.read("/message").value == "Hello world"
assert c.get("/message").value == "Hello world"
r = c.write("/message", "Hello etcd")
assert r._prev_node.value == "Hello world" and not r.newKey, r
assert r.etcd_index == r.modifiedIndex

# directories and recursive listings
c.write("/dir/a", "1")
c.write("/dir/b/c", "2")
c.write("/dir/_hidden", "h")
r = c.read("/dir", recursive=True)
assert r.dir and sorted(x.key for x in r.leaves) == ["/dir/a", "/dir/b/c"], list(r.leaves)
assert c.read("/dir/_hidden").value == "h"
c.write("/empty", None, dir=True)
assert c.read("/empty").dir and c.read("/empty")._children == []

# the errors, as python-etcd's exceptions
for call, exc in [
    (lambda: c.read("/nope"), etcd.EtcdKeyNotFound),
    (lambda: c.write("/dir/a", "x", prevExist=False), etcd.EtcdAlreadyExist),
    (lambda: c.test_and_set("/dir/a", "new", "wrong"), etcd.EtcdCompareFailed),
    (lambda: c.write("/dir/a/deeper", "x"), etcd.EtcdNotDir),
    (lambda: c.delete("/dir"), etcd.EtcdNotFile),
    (lambda: c.delete("/dir", dir=True), etcd.EtcdDirNotEmpty),
    (lambda: c.write("/dir", "x"), etcd.EtcdNotFile),
]:
    try:
        call()
    except exc:
        pass
    else:
        raise AssertionError(f"{exc.__name__} expected")

# compare-and-swap, update by index, compare-and-delete
r = c.test_and_set("/dir/a", "swapped", "1")
assert r.value == "swapped" and r.action == "compareAndSwap", r
r = c.read("/dir/a")
r.value = "updated"
assert c.update(r).value == "updated"
r = c.delete("/dir/a", prevValue="updated")
assert r.action == "compareAndDelete", r
r = c.delete("/dir", recursive=True)
assert r.action == "delete" and r.dir, r

# in-order keys
first = c.write("/queue", "job1", append=True)
c.write("/queue", "job2", append=True)
jobs = [x.value for x in c.read("/queue", sorted=True).children]
assert jobs == ["job1", "job2"], jobs
assert first.key.startswith("/queue/") and len(first.key) == len("/queue/") + 20, first.key

# watches: one that waits, one from an index, and a TTL's expiry
r = c.write("/w", "1")
c.write("/w", "2")
assert c.watch("/w", index=r.modifiedIndex + 1).value == "2"
threading.Timer(0.3, lambda: c.write("/w", "3")).start()
ev = c.watch("/w", timeout=10)
assert ev.value == "3", ev
c.write("/ttl", "x", ttl=1)
assert 0 < c.read("/ttl").ttl <= 1
ev = c.watch("/ttl", timeout=10)
assert ev.action == "expire", ev
try:
    c.read("/ttl")
    raise AssertionError("expired key still there")
except etcd.EtcdKeyNotFound:
    pass

# a refresh changes the TTL, not the value
c.write("/r", "keep", ttl=5)
r = c.refresh("/r", ttl=100)
assert r.value == "keep" and r.ttl > 5, r

# the history is 1000 events long
for i in range(1005):
    c.write("/many", str(i))
try:
    c.watch("/many", index=1, timeout=5)
    raise AssertionError("EtcdEventIndexCleared expected")
except etcd.EtcdEventIndexCleared:
    pass

# a lock made of in-order keys and watches
lock = etcd.Lock(c, "job")
lock.acquire(blocking=True, lock_ttl=10)
assert lock.is_acquired
lock.release()
assert not lock.is_acquired

# the cluster and its statistics
assert len(c.members) == 1, c.members
assert c.leader["name"], c.leader
assert c.stats["state"] == "StateLeader", c.stats
assert c.store_stats["setsSuccess"] > 0, c.store_stats
assert c.machines and c.machines[0].startswith("http"), c.machines
print("python-etcd: ok")
