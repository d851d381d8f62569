"""Benchmark: the relay (adapter + router) versus calling llama-server directly.

Starts the real llama-server on the generated tiny model, then for 1, 50 and 200 concurrent
streams measures time to first token and tokens/s twice in the same run: once with a bare
httpx client parsing the SSE stream itself, once through `chatbot.llm.routing.stream_route`
(OpenAI adapter, breaker, deadlines, concurrency slots, pool). Each stream asks for a fixed
number of tokens with end-of-turn banned (logit_bias), so every stream is equally long.

    PARLEY_LLAMA_SERVER=$(bash tests/llama/build-llama-server.sh) \\
        .venv/bin/python bench/llm_relay/run.py [--tokens 128] [--levels 1,50,200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("PARLEY_TESTING", "1")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402

from bench.lib.openai_stream import Stream, stream_chat  # noqa: E402
from chatbot.llm import routing  # noqa: E402
from chatbot.llm.spec import EndpointSpec  # noqa: E402
from chatbot.llm.types import ChatMessage, ChatRequest, Finish, TextDelta  # noqa: E402
from tests.fixtures.llama import start_llama_server, stop  # noqa: E402
from tests.llama.tiny_model import eot_token_id  # noqa: E402

KEY = "sk-bench"
ROUNDS = 3
PROMPT = "Tell me a long story."


async def direct_stream(client: httpx.AsyncClient, url: str, tokens: int) -> Stream:
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "max_tokens": tokens,
        "logit_bias": {str(eot_token_id()): -100},
    }
    return await stream_chat(client, url, body, {"Authorization": f"Bearer {KEY}"})


async def relay_stream(spec: EndpointSpec, tokens: int) -> Stream:
    request = ChatRequest(
        messages=(ChatMessage.text("user", PROMPT),),
        max_tokens=tokens,
        extra={"logit_bias": {str(eot_token_id()): -100}},
    )
    started = time.perf_counter()
    first: float | None = None
    count = 0
    ok = False
    async for event in routing.stream_route([spec], lambda _spec: request):
        if isinstance(event, TextDelta):
            first = first or time.perf_counter()
            count += 1
        elif isinstance(event, Finish):
            ok = event.error is None
    ended = time.perf_counter()
    return Stream((first or ended) - started, ended - started, count, ok)


@dataclass
class Row:
    streams: int
    path: str
    ttft_p50: float
    ttft_p95: float
    rate_p50: float  # tokens/s of one stream after its first token
    total_rate: float  # all tokens / wall time
    wall: float
    failed: int
    cpu_us_per_token: float  # this process's CPU (client side) per streamed token


def summarize(streams: int, path: str, results: list[Stream], wall: float, cpu: float) -> Row:
    ttfts = sorted(r.ttft * 1000 for r in results)
    rates = [
        (r.tokens - 1) / (r.duration - r.ttft)
        for r in results
        if r.tokens > 1 and r.duration > r.ttft
    ]
    return Row(
        streams=streams,
        path=path,
        ttft_p50=statistics.median(ttfts),
        ttft_p95=ttfts[min(len(ttfts) - 1, int(len(ttfts) * 0.95))],
        rate_p50=statistics.median(rates) if rates else 0.0,
        total_rate=sum(r.tokens for r in results) / wall,
        wall=wall,
        failed=sum(1 for r in results if not r.ok),
        cpu_us_per_token=cpu * 1e6 / max(1, sum(r.tokens for r in results)),
    )


async def run_level(url: str, streams: int, tokens: int) -> list[Row]:
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    spec = EndpointSpec(
        name="bench",
        kind="openai",
        base_url=f"{url}/v1",
        model="tiny",
        auth="bearer",
        api_key=KEY,
        max_concurrency=streams,
        queue_timeout=120,
        first_token_timeout=120,
        idle_timeout=60,
        key=f"bench:{streams}",
    )
    rows = []
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120)) as client:
        # Warm both paths' pools, then alternate so neither always runs on a warmer server.
        await direct_stream(client, url, 4)
        await relay_stream(spec, 4)
        for path in ("direct", "relay") * ROUNDS:
            started, cpu_started = time.perf_counter(), time.process_time()
            if path == "direct":
                results = await asyncio.gather(
                    *(direct_stream(client, url, tokens) for _ in range(streams))
                )
            else:
                results = await asyncio.gather(
                    *(relay_stream(spec, tokens) for _ in range(streams))
                )
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            rows.append(summarize(streams, path, list(results), wall, cpu))
    await routing.close_pools()
    return rows


def merge(rows: list[Row]) -> list[Row]:
    """The two rounds of each path, averaged."""
    merged = []
    for streams in sorted({r.streams for r in rows}):
        for path in ("direct", "relay"):
            same = [r for r in rows if r.streams == streams and r.path == path]
            merged.append(
                Row(
                    streams,
                    path,
                    statistics.mean(r.ttft_p50 for r in same),
                    statistics.mean(r.ttft_p95 for r in same),
                    statistics.mean(r.rate_p50 for r in same),
                    statistics.mean(r.total_rate for r in same),
                    statistics.mean(r.wall for r in same),
                    sum(r.failed for r in same),
                    statistics.mean(r.cpu_us_per_token for r in same),
                )
            )
    return merged


def print_table(rows: list[Row], tokens: int) -> None:
    print(
        f"\nllm relay vs direct llama-server ({tokens} tokens per stream, {ROUNDS} rounds averaged)"
    )
    header = (
        f"{'streams':>7} | {'path':6} | {'TTFT p50 ms':>11} | {'TTFT p95 ms':>11} | "
        f"{'tok/s/stream p50':>16} | {'total tok/s':>11} | {'wall s':>6} | "
        f"{'client CPU us/token':>19} | {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.streams:>7} | {r.path:6} | {r.ttft_p50:>11.1f} | {r.ttft_p95:>11.1f} | "
            f"{r.rate_p50:>16.1f} | {r.total_rate:>11.0f} | {r.wall:>6.2f} | "
            f"{r.cpu_us_per_token:>19.1f} | {r.failed:>6}"
        )
    by = {(r.streams, r.path): r for r in rows}
    print("\nrelay / direct:")
    for streams in sorted({r.streams for r in rows}):
        d, a = by[(streams, "direct")], by[(streams, "relay")]
        print(
            f"  {streams:>3} streams: TTFT p50 x{a.ttft_p50 / d.ttft_p50:.2f}, "
            f"total tok/s x{a.total_rate / d.total_rate:.2f}, "
            f"client CPU per token x{a.cpu_us_per_token / d.cpu_us_per_token:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--levels", default="1,50,200")
    parser.add_argument("--parallel", type=int, default=16, help="llama-server slots")
    args = parser.parse_args()
    binary = os.environ.get("PARLEY_LLAMA_SERVER")
    if not binary:
        sys.exit("set PARLEY_LLAMA_SERVER (bash tests/llama/build-llama-server.sh prints it)")
    process, url, log = start_llama_server(
        binary, key=KEY, parallel=args.parallel, context=max(256, args.tokens + 64)
    )
    try:
        rows: list[Row] = []
        for level in (int(x) for x in args.levels.split(",")):
            rows += asyncio.run(run_level(url, level, args.tokens))
            print(f"  done: {level} streams", file=sys.stderr)
        print_table(merge(rows), args.tokens)
    finally:
        stop(process)
        log.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
