"""`concord.Cluster`: three members in this process; the client fails
over when a follower or the leader stops, and a watch carries on."""

from __future__ import annotations

import concord


def test_failover_in_an_embedded_cluster() -> None:
    with concord.Cluster(3) as cluster:
        c = cluster.client(timeout=20)
        c.put("k/0", "v")
        w = c.watch("k/", prefix=True)
        assert sorted(m.name for m in c.members()) == ["m0", "m1", "m2"]
        leader = cluster.leader()
        follower = (leader + 1) % 3
        cluster.stop_member(follower)
        c.put("k/1", "v")
        cluster.start_member(follower)
        cluster.stop_member(leader)
        assert cluster.leader() != leader
        c.put("k/2", "v")
        cluster.start_member(leader)
        assert [kv.key for kv in c.get_prefix("k/")] == [b"k/0", b"k/1", b"k/2"]
        assert [next(w).kv.key for _ in range(2)] == [b"k/1", b"k/2"]
        # The restarted member serves, with every write.
        again = concord.Client(cluster.endpoints[leader], timeout=20)
        assert len(again.get_prefix("k/")) == 3
