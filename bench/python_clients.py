"""Python clients side by side against one server: Concord's own package
(`concord`, sync and asyncio) against the PyPI `etcd3` (gRPC) and `etcd3gw`
(JSON gateway), in one run, rounds alternating between clients.

    python3 bench/python_clients.py --endpoint 127.0.0.1:2379 [--duration 3] [--rounds 3]

Workloads: put and get (of one of 1,000 keys, 256-byte values) from one
thread; and with 64 in flight: 64 asyncio tasks for `concord.AsyncClient`,
64 threads for every client (etcd3 and etcd3gw have no asyncio). Prints a
Markdown table of median ops/s and the ratios; `--json` writes the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
from typing import Callable, Dict, List

VALUE = b"v" * 256
KEYS = [f"bench/{i:06d}" for i in range(1000)]


def clients(endpoint: str) -> Dict[str, Callable[[], object]]:
    host, port = endpoint.rsplit(":", 1)

    def concord_client() -> object:
        import concord

        return concord.Client([endpoint])

    def etcd3_client() -> object:
        import etcd3

        return etcd3.client(host=host, port=int(port))

    def etcd3gw_client() -> object:
        import etcd3gw

        return etcd3gw.client(host=host, port=int(port))

    return {"concord": concord_client, "etcd3": etcd3_client, "etcd3gw": etcd3gw_client}


def op(name: str, client: object, workload: str) -> Callable[[int], object]:
    c: object = client
    if workload == "put":
        return lambda i: c.put(KEYS[i % len(KEYS)], VALUE)  # type: ignore[attr-defined]
    return lambda i: c.get(KEYS[i % len(KEYS)])  # type: ignore[attr-defined]


def run_threads(make: Callable[[], object], name: str, workload: str, threads: int, duration: float) -> float:
    counts = [0] * threads
    stop = time.monotonic() + duration
    barrier = threading.Barrier(threads + 1)

    def body(t: int) -> None:
        f = op(name, make() if threads > 1 and name != "concord" else shared, workload)
        barrier.wait()
        i = t
        while time.monotonic() < stop:
            f(i)
            i += threads
            counts[t] += 1

    shared = make()
    ts = [threading.Thread(target=body, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    start = time.monotonic()
    stop = start + duration
    for t in ts:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def run_asyncio(endpoint: str, workload: str, tasks: int, duration: float) -> float:
    import concord

    async def main() -> float:
        c = concord.AsyncClient([endpoint])
        await c.status()
        count = 0
        stop = time.monotonic() + duration

        async def body(t: int) -> None:
            nonlocal count
            i = t
            while time.monotonic() < stop:
                if workload == "put":
                    await c.put(KEYS[i % len(KEYS)], VALUE)
                else:
                    await c.get(KEYS[i % len(KEYS)])
                i += tasks
                count += 1

        start = time.monotonic()
        await asyncio.gather(*(body(t) for t in range(tasks)))
        return count / (time.monotonic() - start)

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write every run here (JSON lines)")
    a = ap.parse_args()
    makers = clients(a.endpoint)
    # Preload the keys the gets read.
    pre = makers["concord"]()
    for k in KEYS:
        pre.put(k, VALUE)  # type: ignore[attr-defined]
    runs: List[dict] = []
    cases = [(w, n) for w in ("put", "get") for n in (1, 64)]
    for r in range(a.rounds):
        names = list(makers) if r % 2 == 0 else list(reversed(makers))
        for workload, n in cases:
            for name in names:
                ops = run_threads(makers[name], name, workload, n, a.duration)
                runs.append({"client": name, "workload": workload, "in_flight": n, "mode": "threads", "ops": ops})
            if n > 1:
                ops = run_asyncio(a.endpoint, workload, n, a.duration)
                runs.append({"client": "concord", "workload": workload, "in_flight": n, "mode": "asyncio", "ops": ops})
    if a.json:
        with open(a.json, "w") as f:
            for run in runs:
                f.write(json.dumps(run) + "\n")

    def med(client: str, workload: str, n: int, mode: str = "threads") -> float:
        xs = [x["ops"] for x in runs if (x["client"], x["workload"], x["in_flight"], x["mode"]) == (client, workload, n, mode)]
        return statistics.median(xs)

    print(f"| workload | in flight | concord | concord asyncio | etcd3 (gRPC) | etcd3gw | vs etcd3 | vs etcd3gw |")
    print("|---|---|---|---|---|---|---|---|")
    for workload, n in cases:
        c = med("concord", workload, n)
        best = max(c, med("concord", workload, n, "asyncio")) if n > 1 else c
        e3, gw = med("etcd3", workload, n), med("etcd3gw", workload, n)
        aio = f"{med('concord', workload, n, 'asyncio'):,.0f}" if n > 1 else "-"
        print(f"| {workload} | {n} | {c:,.0f} | {aio} | {e3:,.0f} | {gw:,.0f} | {best / e3:.2f}x | {best / gw:.2f}x |")
    print(f"\n{a.rounds} rounds of {a.duration} s each, medians; pid {os.getpid()}")


if __name__ == "__main__":
    main()
