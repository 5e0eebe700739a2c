"""Keep an application's configuration in Concord (or etcd) and follow it
live: read every key under a prefix, then apply each change as it comes,
without missing one between the read and the watch.

    python3 config_watch.py 127.0.0.1:2379 app/config/
"""

from __future__ import annotations

import sys
from typing import Dict

import concord


def follow(endpoint: str, prefix: str) -> None:
    with concord.Client([endpoint]) as client:
        snapshot = client.get_range(prefix, prefix=True)
        config: Dict[bytes, bytes] = {kv.key: kv.value for kv in snapshot.kvs}
        print(f"{len(config)} settings at revision {snapshot.revision}")
        # Start right after the read: nothing is lost in between.
        with client.watch(prefix, prefix=True, start_revision=snapshot.revision + 1) as changes:
            for event in changes:
                if event.type == "PUT":
                    config[event.kv.key] = event.kv.value
                else:
                    config.pop(event.kv.key, None)
                print(f"{event.type} {event.kv.key!r} at {event.kv.mod_revision}: {len(config)} settings")


if __name__ == "__main__":
    follow(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2379", sys.argv[2] if len(sys.argv) > 2 else "app/config/")
