"""Benchmark: the CPU a client spends reading a streamed model reply, per HTTP stack.

Starts the stand-in model (`standin.py`, 64 tokens one every 20 ms, in its own process) and,
in this process, reads streamed completions from it three ways, interleaved round by round:

- httpx with its own transport (httpcore, h11, anyio): what Parley used for model streams;
- httpx over aiohttp (`chatbot.lib.streaming_transport.StreamingTransport`): what Parley's
  operator endpoints use now;
- aiohttp alone: the floor of the same parser without httpx's API.

Each parses every SSE line's JSON, as an adapter does. Printed: CPU per stream of this
process (the client's side only; the stand-in runs elsewhere), streams one after the other
and N at once.

    .venv/bin/python bench/relay_e2e/upstream_client.py [--concurrent 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chatbot.lib.streaming_transport import StreamingTransport  # noqa: E402

BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def read_httpx(client: httpx.AsyncClient, url: str) -> None:
    async with client.stream("POST", url, json=BODY) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                json.loads(line[6:])


async def read_aiohttp(session: aiohttp.ClientSession, url: str) -> None:
    async with session.post(url, json=BODY) as response:
        async for raw in response.content:
            line = raw.strip()
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                json.loads(line[6:])


async def cpu_per_stream(read: Callable[[], Awaitable[None]], streams: int, at_once: int) -> float:
    started = time.process_time()
    for _ in range(streams // at_once):
        await asyncio.gather(*(read() for _ in range(at_once)))
    return (time.process_time() - started) / streams * 1000


async def run(url: str, rounds: int, concurrent: int) -> None:
    limits = httpx.Limits(max_connections=concurrent, max_keepalive_connections=concurrent)
    plain = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(limits=limits), timeout=30)
    over_aiohttp = httpx.AsyncClient(transport=StreamingTransport(limits), timeout=30)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrent))
    stacks: dict[str, Callable[[], Awaitable[None]]] = {
        "httpx (httpcore)": lambda: read_httpx(plain, url),
        "httpx over aiohttp (Parley)": lambda: read_httpx(over_aiohttp, url),
        "aiohttp alone": lambda: read_aiohttp(session, url),
    }
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for stack in stacks.values():  # warm the pools
            await cpu_per_stream(stack, concurrent, concurrent)
        for _ in range(rounds):
            for name, stack in stacks.items():
                results.setdefault((name, "1 at a time"), []).append(
                    await cpu_per_stream(stack, 10, 1)
                )
                results.setdefault((name, f"{concurrent} at once"), []).append(
                    await cpu_per_stream(stack, concurrent * 2, concurrent)
                )
    finally:
        await plain.aclose()
        await over_aiohttp.aclose()
        await session.close()
    print(f"\nClient CPU per 64-token stream (ms; median of {rounds} interleaved rounds)")
    print(f"{'client':<30}| {'1 at a time':>12} | {f'{concurrent} at once':>12}")
    print("-" * 60)
    for name in stacks:
        cells = [sorted(results[(name, load)])[rounds // 2] for load in ("1 at a time",)]
        cells.append(sorted(results[(name, f"{concurrent} at once")])[rounds // 2])
        print(f"{name:<30}| {cells[0]:>12.2f} | {cells[1]:>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    stand_in = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("standin.py")), "--port", str(port)]
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        asyncio.run(
            run(f"http://127.0.0.1:{port}/v1/chat/completions", args.rounds, args.concurrent)
        )
    finally:
        stand_in.terminate()
        stand_in.wait()


if __name__ == "__main__":
    main()
