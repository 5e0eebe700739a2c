"""Service registration with asyncio: each worker registers itself under a
lease that is kept alive while it runs, and a watcher follows who is up.

    python3 async_workers.py 127.0.0.1:2379
"""

from __future__ import annotations

import asyncio
import sys
from typing import List

import concord


async def worker(client: concord.AsyncClient, name: str, seconds: float) -> None:
    async with client.lease(5, keep_alive=True) as lease:
        await client.put(f"services/{name}", "up", lease=lease)
        await asyncio.sleep(seconds)
    # Leaving the block revoked the lease: the registration is gone.


async def observe(client: concord.AsyncClient, expected: int) -> List[str]:
    seen: List[str] = []
    async with client.watch("services/", prefix=True) as changes:
        async for event in changes:
            seen.append(f"{event.type} {event.kv.key.decode()}")
            if len(seen) == expected:
                break
    return seen


async def main(endpoint: str) -> None:
    async with concord.AsyncClient([endpoint]) as client:
        watcher = asyncio.ensure_future(observe(client, 6))
        await asyncio.sleep(0.2)
        await asyncio.gather(*(worker(client, f"w{i}", 0.5) for i in range(3)))
        for line in await watcher:
            print(line)
        status: concord.Status = await client.status()
        print(f"revision {status.revision}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2379"))
