"""pytest fixtures on the embedded server (registered as a pytest plugin
when the package is installed):

    def test_config(concord_client):
        concord_client.put("k", "v")

- ``concord_server``: a fresh ``concord.Server`` per test (temporary data
  directory, free port), stopped afterwards.
- ``concord_client``: a ``concord.Client`` of it.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from ._native import Client, Server


@pytest.fixture
def concord_server() -> Iterator[Server]:
    """A Concord server in this process, for one test."""
    server = Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def concord_client(concord_server: Server) -> Iterator[Client]:
    """A client of ``concord_server``."""
    with Client(concord_server.endpoint) as client:
        yield client
