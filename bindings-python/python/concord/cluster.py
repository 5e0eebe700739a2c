"""``concord.Cluster``: several Concord members in this process, replicated
through raft as separate servers would be, for failover tests.

    with concord.Cluster(3) as cluster:
        c = cluster.client()
        c.put("k", "v")
        cluster.stop_member(cluster.leader())   # the others elect a new leader
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
import types
from typing import Any, Dict, List, Optional, Sequence, Type

from ._native import Client, Server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """``size`` members named ``m0``, ``m1``, ... with data in a temporary
    folder (removed at ``stop()``); ``args`` go to every member."""

    def __init__(self, size: int = 3, *, args: Sequence[str] = ()) -> None:
        if size < 1:
            raise ValueError("a cluster has at least one member")
        self._tmp = tempfile.TemporaryDirectory(prefix="concord-cluster-")
        self.names = [f"m{i}" for i in range(size)]
        self._ports = {n: _free_port() for n in self.names}
        self._peers = {n: f"http://127.0.0.1:{_free_port()}" for n in self.names}
        self._args = list(args)
        self._servers: Dict[str, Optional[Server]] = {n: None for n in self.names}
        errors: List[BaseException] = []

        def start(name: str) -> None:
            try:
                self._start(name)
            except BaseException as e:  # reported below, after every thread ended
                errors.append(e)

        # Members wait for each other: start them together.
        threads = [threading.Thread(target=start, args=(n,)) for n in self.names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.stop()
            raise errors[0]
        self._wait_published()

    def _wait_published(self, timeout: float = 20.0) -> None:
        """Waits until every member has published its name and client URLs
        (a member serves before the others learn them)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                members = Client(self.endpoints, timeout=2).members()
                if sorted(m.name for m in members) == sorted(self.names) and all(m.client_urls for m in members):
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("the members did not publish their names")
            time.sleep(0.05)

    def _start(self, name: str) -> None:
        initial = ",".join(f"{n}={u}" for n, u in self._peers.items())
        args = ["--initial-cluster", initial, "--listen-peer-urls", self._peers[name],
                "--initial-advertise-peer-urls", self._peers[name], *self._args]
        self._servers[name] = Server(f"{self._tmp.name}/{name}", self._ports[name], name=name, args=args)

    @property
    def endpoints(self) -> List[str]:
        """Every member's ``host:port``, running or not."""
        return [f"127.0.0.1:{self._ports[n]}" for n in self.names]

    def client(self, **kwargs: Any) -> Client:
        """A client of every member (it fails over between them)."""
        return Client(self.endpoints, **kwargs)

    def leader(self, timeout: float = 10.0) -> int:
        """The index of the leader, once the running members agree on one."""
        deadline = time.monotonic() + timeout
        while True:
            for i, name in enumerate(self.names):
                if self._servers[name] is None:
                    continue
                try:
                    st = Client(self.endpoints[i], timeout=1).status()
                except Exception:
                    continue
                if st.leader != 0 and st.leader == st.member_id:
                    return i
            if time.monotonic() > deadline:
                raise TimeoutError("no leader")
            time.sleep(0.05)

    def stop_member(self, index: int) -> None:
        """Stops one member (its data stays for ``start_member``)."""
        server = self._servers[self.names[index]]
        self._servers[self.names[index]] = None
        if server is not None:
            server.stop()

    def start_member(self, index: int) -> None:
        """Starts a stopped member again on its data and port."""
        if self._servers[self.names[index]] is None:
            self._start(self.names[index])

    def stop(self) -> None:
        """Stops every member and removes the data."""
        for i in range(len(self.names)):
            self.stop_member(i)
        self._tmp.cleanup()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[types.TracebackType]
    ) -> None:
        self.stop()
