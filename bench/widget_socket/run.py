"""Benchmark: a visitor's message through the widget socket versus the model service alone.

Starts the real llama-server on the generated tiny model, migrates a throwaway SQLite
database, routes a bot to the server, then for 1 and N concurrent visitors measures, in the
same run: send → `ack` (the message is stored), send → first `delta`, send → final reply
stored and announced; and, for comparison, the service's own time to first token
(`chatbot.llm.service.stream_reply` with the same history). The difference is what the
widget path adds (token check, storing, seq lock, reply row, batching every 50 ms, channel
layer).

    PARLEY_LLAMA_SERVER=$(bash tests/llama/build-llama-server.sh) \\
        .venv/bin/python bench/widget_socket/run.py [--visitors 20] [--rounds 3]

With DATABASE_URL=postgres://.../parley_bench (a database it may fill) it runs on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("PARLEY_TESTING", "1")
os.environ["PARLEY_VAR_DIR"] = tempfile.mkdtemp(prefix="parley-bench-widget-")
# SQLite in a temporary folder unless DATABASE_URL names a (throwaway) PostgreSQL database.

import django  # noqa: E402

django.setup()

from channels.db import database_sync_to_async  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from channels.testing import WebsocketCommunicator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from chatbot.bots.models import Bot  # noqa: E402
from chatbot.conversations import actions  # noqa: E402
from chatbot.llm import models as llm_models  # noqa: E402
from chatbot.llm import service  # noqa: E402
from chatbot.llm.types import ChatMessage, TextDelta  # noqa: E402
from chatbot.routing import websocket_urlpatterns  # noqa: E402
from chatbot.tenants.models import Tenant  # noqa: E402
from tests.fixtures.llama import start_llama_server, stop  # noqa: E402
from widget.ratelimit import DEFAULT_LIMITS  # noqa: E402
from widget.tokens import issue_session_token  # noqa: E402

KEY = "sk-bench"
ORIGIN = "https://shop.bench.test"


def setup(url: str) -> Bot:
    # Every simulated visitor shares one address: lift the per-IP limits for the run.
    settings.WIDGET_RATE_LIMITS = {
        name: (1_000_000, window) for name, (_count, window) in DEFAULT_LIMITS.items()
    }
    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name="Bench", slug="bench")
    bot = Bot.objects.create(tenant=tenant, name="Bench bot", allowed_origins=[ORIGIN])
    endpoint = llm_models.ModelEndpoint(
        tenant=None,
        name="tiny-llama",
        kind="openai",
        base_url=f"{url}/v1",
        model="parley-tiny-llama",
        source=llm_models.Source.ADMIN,
        auth="bearer",
    )
    endpoint.set_secret(KEY)
    endpoint.save()
    service.set_bot_route(bot, [endpoint.pk])
    return bot


def token_for(bot: Bot) -> str:
    visitor = actions.open_visitor(bot)
    return issue_session_token(bot, visitor.public_id, ORIGIN)[0]


async def one_visitor(app: URLRouter, bot: Bot, n: int) -> dict[str, float]:
    token = await database_sync_to_async(token_for)(bot)
    comm = WebsocketCommunicator(
        app, f"/ws/widget/{bot.public_key}", headers=[(b"origin", ORIGIN.encode())]
    )
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "hello", "token": token})
    await comm.receive_from(timeout=30)
    started = time.perf_counter()
    await comm.send_json_to({"type": "message.send", "client_id": f"b{n}", "text": "Hi!"})
    times: dict[str, float] = {}
    while True:
        frame = json.loads(await comm.receive_from(timeout=60))
        now = time.perf_counter() - started
        if frame["type"] == "ack":
            times["ack"] = now
        elif frame["type"] == "delta" and "first_delta" not in times:
            times["first_delta"] = now
        elif (
            frame["type"] == "message"
            and frame["message"]["role"] == "assistant"
            and frame["message"]["status"] != "streaming"
        ):
            assert frame["message"]["status"] == "complete", frame
            times["done"] = now
            break
    await comm.disconnect()
    return times


async def service_ttft(bot: Bot) -> float:
    started = time.perf_counter()
    async for event in service.stream_reply(bot, [ChatMessage.text("user", "Hi!")]):
        if isinstance(event, TextDelta):
            return time.perf_counter() - started
    return float("nan")


def ms(values: list[float]) -> str:
    values = sorted(values)
    p50 = statistics.median(values) * 1000
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))] * 1000
    return f"p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"


async def main(visitors: int, rounds: int) -> None:
    binary = os.environ.get("PARLEY_LLAMA_SERVER")
    if not binary:
        sys.exit("set PARLEY_LLAMA_SERVER (bash tests/llama/build-llama-server.sh)")
    process, url, _log = start_llama_server(binary, key=KEY)
    try:
        bot = await database_sync_to_async(setup)(url)
        app = URLRouter(websocket_urlpatterns)
        for level in (1, visitors):
            direct = [await service_ttft(bot) for _ in range(rounds * 3)]
            results: list[dict[str, float]] = []
            for _ in range(rounds):
                batch = await asyncio.gather(
                    *(one_visitor(app, bot, len(results) * 1000 + i) for i in range(level))
                )
                results.extend(batch)
                await actions.wait_for_replies()
            print(f"\n{level} concurrent visitor(s), {len(results)} messages:")
            print(f"  service alone, first token   {ms(direct)}")
            print(f"  widget: send -> ack (stored) {ms([r['ack'] for r in results])}")
            print(f"  widget: send -> first delta  {ms([r['first_delta'] for r in results])}")
            print(f"  widget: send -> reply stored {ms([r['done'] for r in results])}")
    finally:
        stop(process)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.visitors, args.rounds))
