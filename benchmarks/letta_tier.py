"""The Letta side of a steady sync: the agent listing, today's way against the library's.

"Before" is the listing as the library made it before it met a real Letta: full records
(tools, sources, memory blocks), 100 a page, walked to an empty page; it asked `/v1/agents`,
which 0.16.8 answers with a redirect, so here it is given the route that answers. "Full" is
`LettaClient.list_agents` without a directory (a one-shot `sync`, or the first sync of `run`):
Letta's count, lean records, 500 a page. "Steady" is a later sync of `run`, with nothing
changed: the count and the changes since the directory's newest one.

    python -m benchmarks.letta_tier --real 300 --fake 10000 --repeats 3

`--real N` starts a real Letta 0.16.8 (scripts/install_letta.sh) with N agents that have tools
and memory blocks; `--fake N` runs the same against the fake, whose records weigh what 0.16.8's
do. Prints medians of bytes, requests and seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from app.http import ApiCall
from app.http.httpx_transport import HttpxTransport
from app.http.transport import Request, Response, Transport
from app.letta import LettaClient, LettaDirectory
from app.testing.inprocess import InProcessTransport
from app.testing.letta import FakeLetta

OLD_PAGE = 100


class Counting:
    """A transport that counts requests and response bytes."""

    def __init__(self, inner: Transport) -> None:
        self.inner, self.requests, self.bytes = inner, 0, 0

    async def send(self, request: Request) -> Response:
        response = await self.inner.send(request)
        self.requests += 1
        self.bytes += len(response.content)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Run:
    agents: int
    requests: int
    bytes: int
    seconds: float


async def old_listing(letta: LettaClient) -> int:
    """The pre-0.16.8 walk: full records, 100 a page, until an empty page."""
    seen, cursor = 0, None
    while True:
        query = {"limit": str(OLD_PAGE), **({"after": cursor} if cursor else {})}
        page: Any = await letta.http.call(ApiCall("GET", "/v1/agents/", query=query), letta._token)
        if not page:
            return seen
        seen += len(page)
        cursor = page[-1]["id"]


async def measure(
    base_url: str, token: str | None, transport: Transport, kind: str, page_size: int = 500
) -> Run:
    counting = Counting(transport)
    letta = LettaClient.connect(counting, base_url, token)
    directory = LettaDirectory()
    if kind == "steady":
        await letta.list_agents(directory=directory)  # the first sync of `run`
        counting.requests = counting.bytes = 0
    started = time.perf_counter()
    if kind == "before":
        agents = await old_listing(letta)
    else:
        listing = await letta.list_agents(page_size, directory=directory)
        assert listing.incomplete is None, listing.incomplete
        agents = len(listing.agents)
    return Run(agents, counting.requests, counting.bytes, time.perf_counter() - started)


def median_run(runs: list[Run]) -> Run:
    return Run(
        runs[0].agents,
        runs[0].requests,
        int(statistics.median(r.bytes for r in runs)),
        statistics.median(r.seconds for r in runs),
    )


KINDS = ("before", "full", "steady")


def report(label: str, runs: dict[str, Run]) -> None:
    before = runs["before"]
    print(f"{label}: N={before.agents} (medians)")
    for kind, run in runs.items():
        print(
            f"  {kind:6}: {run.requests} requests, {run.bytes / 1e6:.3f} MB, {run.seconds:.3f} s"
            f" (bytes x{run.bytes / before.bytes:.3f}, time x{run.seconds / before.seconds:.3f}"
            " of before)"
        )


async def compare(base_url: str, token: str | None, make: Any, repeats: int) -> dict[str, Run]:
    runs: dict[str, list[Run]] = {kind: [] for kind in KINDS}
    for _ in range(repeats):
        for kind in KINDS:
            runs[kind].append(await measure(base_url, token, make(), kind))
    return {kind: median_run(found) for kind, found in runs.items()}


def fake_tier(n: int, repeats: int) -> None:
    letta = FakeLetta()
    for i in range(n):
        letta.add_agent(f"Agent {i}")
    runs = anyio.run(compare, letta.base_url, None, lambda: InProcessTransport([letta]), repeats)
    report("fake Letta (0.16.8 record sizes)", runs)


def real_tier(n: int, repeats: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from letta_real.launch import default_letta_python, letta_server

    with tempfile.TemporaryDirectory(prefix="letta-bench-") as tmp:
        Path(tmp).chmod(0o755)
        token = "bench-token"  # noqa: S105 (a throwaway server on 127.0.0.1)
        with letta_server(Path(tmp), default_letta_python(), password=token) as server:
            started = time.perf_counter()
            for i in range(n):
                body = {
                    "name": f"Agent {i}",
                    "model": "letta/letta-free",
                    "embedding": "letta/letta-free",
                    "memory_blocks": [
                        {"label": "persona", "value": "A careful research assistant. " * 20},
                        {"label": "human", "value": "An operator of the bridge. " * 10},
                    ],
                }
                server.request("POST", "/v1/agents/", body)
            print(f"created {n} agents in {time.perf_counter() - started:.1f} s")
            runs = anyio.run(compare, server.base_url, token, HttpxTransport, repeats)
            report("real Letta 0.16.8", runs)
            anyio.run(page_sizes, server.base_url, token, repeats)


async def page_sizes(base_url: str, token: str, repeats: int) -> None:
    """The full listing's cost per agent at several page sizes (the default's measurement)."""
    for size in (50, 100, 250, 500):
        runs = [await measure(base_url, token, HttpxTransport(), "full", size) for _ in range(3)]
        run = median_run(runs * max(repeats // 3, 1))
        per_agent = run.seconds / max(run.agents, 1) * 1000
        print(
            f"  full, {size} a page: {run.requests} requests, {run.seconds:.3f} s, "
            f"{per_agent:.2f} ms an agent"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=int, default=0, help="agents on a real Letta (0: skip)")
    parser.add_argument("--fake", type=int, default=10_000, help="agents on the fake (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.fake:
        fake_tier(args.fake, args.repeats)
    if args.real:
        real_tier(args.real, args.repeats)


if __name__ == "__main__":
    main()
