"""Benchmark: what one tool round trip costs in Parley beyond calling the endpoint itself.

Times, against the same loopback JSON endpoint (keep-alive), N calls made
- directly with a plain httpx.AsyncClient, and
- the way the reply's tool loop makes them (chatbot/tools): argument validation against the
  action's JSON Schema, decrypting the headers, the guarded outbound client (resolve and vet
  the address on each new connection), reading with a size limit, redacting secrets, the
  result card check, and the JSON the model reads back.
Recording the call (two small writes in a database thread) is not included: it runs while
the model is not waiting on it only for the final write, and depends on the database.

    .venv/bin/python bench/actions/run.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("PARLEY_TESTING", "1")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402

from chatbot.tools import endpoint  # noqa: E402
from chatbot.tools.cards import clean_card  # noqa: E402
from chatbot.tools.models import Action  # noqa: E402
from chatbot.tools.schema import parse_arguments  # noqa: E402

BODY = json.dumps({"order": "A17", "status": "shipped", "items": [{"sku": "X", "n": 1}]}).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main(calls: int) -> None:
    settings.OUTBOUND_ALLOW_CIDRS = ["127.0.0.0/8"]
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/orders/{{order_id}}"
    action = Action(
        name="find_order",
        title="Looking up your order",
        url=url,
        method="GET",
        timeout_seconds=10,
        parameters={
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    )
    endpoint.store_headers(action, {"Authorization": "Bearer sk_bench_secret"})
    arguments_json = '{"order_id": "A17"}'

    direct_client = httpx.AsyncClient(trust_env=False)

    async def direct() -> None:
        response = await direct_client.get(
            f"http://127.0.0.1:{port}/orders/A17",
            headers={"Authorization": "Bearer sk_bench_secret"},
        )
        response.json()

    async def through_parley() -> None:
        arguments = parse_arguments(arguments_json, action.parameters)
        result = await endpoint.call(action, arguments)
        assert result.ok, result.error
        clean_card(result.body.get("card") if isinstance(result.body, dict) else None)
        json.dumps({"result": result.body})

    async def timed(function: object, n: int) -> list[float]:
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            await function()  # type: ignore[operator]
            samples.append((time.perf_counter() - started) * 1e6)
        return samples

    for function in (direct, through_parley):  # warm both pools
        await timed(function, 50)
    rows = {}
    for name, function in (("direct httpx", direct), ("through Parley", through_parley)):
        samples = await timed(function, calls)
        rows[name] = (statistics.median(samples), statistics.quantiles(samples, n=100)[98])
    await direct_client.aclose()
    server.close()
    print(f"one tool round trip to a loopback endpoint, {calls} calls each (microseconds)")
    print(f"{'':16} {'median':>8} {'p99':>8}")
    for name, (median, p99) in rows.items():
        print(f"{name:16} {median:8.0f} {p99:8.0f}")
    overhead = rows["through Parley"][0] - rows["direct httpx"][0]
    print(f"Parley's overhead per call (median): {overhead:.0f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    asyncio.run(main(parser.parse_args().calls))
