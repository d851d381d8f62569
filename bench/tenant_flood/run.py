"""Benchmark: one tenant floods its bot; does another tenant's time to first token move?

One run starts the stand-in OpenAI-compatible model of bench/relay_e2e (a reply of --tokens
tokens, one every --interval-ms) declared with the endpoint default of 8 streams per process,
and Parley's own `manage.py serve` (one process, embedded defaults unless --postgres) with two
tenants. Twice: with the fair share of model calls as shipped (MODEL_CALLS_PER_TENANT,
chatbot/llm/fairshare.py) and with it lifted (caps of 100,000), so the figure it protects is
shown beside what it protects against. In each:

- baseline: the quiet tenant's visitor sends --messages messages one after the other, alone;
- flood: --flooders visitors of the other tenant send without pause, and meanwhile the quiet
  visitor sends the same --messages messages.

It prints the quiet tenant's time to first token (p50, p99) in both phases, how much p99
moved (the target: under 25%), the flood's replies per second and Parley's CPU per reply.
Visitors speak the real widget protocol (bench/relay_e2e/widget_client.py). Bounded: about
two minutes with the defaults.

    python bench/tenant_flood/run.py
    python bench/tenant_flood/run.py --flooders 48 --messages 60
    python bench/tenant_flood/run.py --postgres postgres://postgres@127.0.0.1:5432/parley_flood \
        --redis redis://127.0.0.1:6379/7

With --postgres and --redis, `serve` runs on PostgreSQL and Redis instead of the embedded
defaults; the named database is dropped and created afresh and the Redis database flushed
before each configuration (use scratch ones).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").split("\n")[1:]),
    )
    parser.add_argument("--flooders", type=int, default=32, help="flooding visitors at once")
    parser.add_argument("--messages", type=int, default=40, help="quiet visitor's messages")
    parser.add_argument("--tokens", type=int, default=24, help="tokens per reply")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="between tokens")
    parser.add_argument("--endpoint-streams", type=int, default=8, help="max_concurrency")
    parser.add_argument("--postgres", default="", help="scratch database URL (dropped!)")
    parser.add_argument("--redis", default="", help="scratch Redis URL (flushed!)")
    args = parser.parse_args()
    if bool(args.postgres) != bool(args.redis):
        parser.error("--postgres and --redis go together")
    return args


def use_checkout_venv() -> None:
    venv = ROOT / ".venv"
    if (venv / "bin" / "python").exists() and Path(sys.prefix).resolve() != venv.resolve():
        python = str(venv / "bin" / "python")
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    ARGS = parse_args()
    use_checkout_venv()

sys.path.insert(0, str(ROOT))

import asyncio  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime  # noqa: E402

from bench.lib.procs import cpu_seconds, load_average  # noqa: E402
from bench.lib.stats import percentile  # noqa: E402
from bench.relay_e2e import deploy  # noqa: E402
from bench.relay_e2e.widget_client import Tally, WidgetSocket  # noqa: E402

HERE = Path(__file__).resolve().parent
PROMPT = "Hi! Where is my order?"
UNCAPPED = {"MODEL_CALLS_PER_TENANT": "100000", "MODEL_CALLS_PER_PROCESS": "100000"}


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')} load {load_average()}] {message}",
          file=sys.stderr, flush=True)  # fmt: skip


@dataclass
class FloodParley(deploy.Parley):
    extra_env: dict[str, str] = field(default_factory=dict)
    endpoint_streams: int = 8
    seeded: dict[str, dict[str, object]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = super().env()
        endpoints = json.loads(env["LLM_ENDPOINTS"])
        for endpoint in endpoints["endpoints"]:
            endpoint["max_concurrency"] = self.endpoint_streams  # the shipped default: 8
        env["LLM_ENDPOINTS"] = json.dumps(endpoints)
        env.update(self.extra_env)
        return env

    def seed(self, visitors: int) -> None:
        result = subprocess.run(
            [deploy.python(), str(HERE / "seed.py"), "--origin", deploy.ORIGIN,
             "--visitors", str(visitors)],
            cwd=ROOT, env=self.env(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{result.stdout}\n{result.stderr}")
        self.seeded = json.loads(result.stdout.strip().splitlines()[-1])


@dataclass
class Figures:
    label: str
    quiet_ttft: list[float] = field(default_factory=list)
    flood_ttft: list[float] = field(default_factory=list)
    flood_replies: int = 0
    flood_seconds: float = 0.0
    cpu_per_reply_ms: float = 0.0
    not_complete: int = 0


async def quiet_visitor(parley: FloodParley, token: str, count: int, tally: Tally) -> list[float]:
    server = parley.servers[0]
    bot = str(parley.seeded["quiet"]["bot"])
    socket = await WidgetSocket.open(server.ws, bot, deploy.ORIGIN, token, tally)
    ttfts = []
    try:
        for _ in range(count):
            outcome = await socket.send_message(PROMPT)
            ttfts.append(outcome.ttft * 1000)
    finally:
        await socket.close()
    return ttfts


async def measure(parley: FloodParley, args: argparse.Namespace, label: str) -> Figures:
    figures = Figures(label)
    server = parley.servers[0]
    tally = Tally()
    quiet_tokens = [str(t) for t in parley.seeded["quiet"]["tokens"]]  # type: ignore[attr-defined]
    flood_tokens = [str(t) for t in parley.seeded["flood"]["tokens"]]  # type: ignore[attr-defined]
    await quiet_visitor(parley, quiet_tokens[0], 3, tally)  # warm-up (route, connections)
    figures.quiet_ttft = await quiet_visitor(parley, quiet_tokens[1], args.messages, tally)

    flood_bot = str(parley.seeded["flood"]["bot"])
    sockets = await asyncio.gather(
        *(WidgetSocket.open(server.ws, flood_bot, deploy.ORIGIN, t, tally)
          for t in flood_tokens[: args.flooders])
    )  # fmt: skip
    stop = asyncio.Event()
    done = 0

    async def flood(socket: WidgetSocket) -> None:
        nonlocal done
        while not stop.is_set():
            outcome = await socket.send_message(PROMPT)
            done += outcome.status == "complete"

    cpu_before = cpu_seconds([server.pid])
    started = time.perf_counter()
    flooding = [asyncio.create_task(flood(s)) for s in sockets]
    await asyncio.sleep(2)  # the flood is under way, its queue full
    figures.flood_ttft = await quiet_visitor(parley, quiet_tokens[2], args.messages, tally)
    stop.set()
    await asyncio.gather(*flooding, return_exceptions=True)
    figures.flood_seconds = time.perf_counter() - started
    replies = done + args.messages
    figures.cpu_per_reply_ms = (cpu_seconds([server.pid]) - cpu_before) * 1000 / max(1, replies)
    figures.flood_replies = done
    figures.not_complete = tally.not_complete
    await asyncio.gather(*(s.close() for s in sockets))
    return figures


def row(f: Figures) -> str:
    q50, q99 = percentile(f.quiet_ttft, 50), percentile(f.quiet_ttft, 99)
    l50, l99 = percentile(f.flood_ttft, 50), percentile(f.flood_ttft, 99)
    moved = (l99 - q99) / q99 * 100
    rate = f.flood_replies / f.flood_seconds
    return (f"| {f.label} | {q50:.0f} / {q99:.0f} | {l50:.0f} / {l99:.0f} | {moved:+.0f}% "
            f"| {rate:.1f} | {f.cpu_per_reply_ms:.1f} | {f.not_complete} |")  # fmt: skip


async def run_config(
    args: argparse.Namespace, standin: deploy.Process, label: str, extra: dict[str, str]
) -> Figures:
    parley = FloodParley(
        "postgres" if args.postgres else "embedded",
        standin,
        postgres_url=args.postgres,
        redis_url=args.redis,
        extra_env=extra,
        endpoint_streams=args.endpoint_streams,
    )
    try:
        if args.postgres:
            deploy.reset_postgres(args.postgres)
            deploy.reset_redis(args.redis)
        parley.seed(args.flooders + 3)
        parley.start(1)
        log(f"{label}: serving on {parley.servers[0].http}")
        return await measure(parley, args, label)
    finally:
        parley.stop()


async def main(args: argparse.Namespace) -> None:
    log(f"stand-in: {args.tokens} tokens every {args.interval_ms:g} ms; "
        f"{args.flooders} flooders; {args.messages} quiet messages per phase")  # fmt: skip
    standin = deploy.start_standin(args.tokens, args.interval_ms)
    try:
        shipped = await run_config(args, standin, "fair share (shipped)", {})
        lifted = await run_config(args, standin, "fair share lifted", UNCAPPED)
    finally:
        deploy.stop(standin.process)
    print()
    database = "PostgreSQL + Redis" if args.postgres else "embedded (SQLite, in-memory layer)"
    print(f"Quiet tenant's time to first token, ms (p50 / p99); {database}; endpoint: "
          f"{args.endpoint_streams} streams; load at end {load_average()}")  # fmt: skip
    print(
        "| Parley | baseline (alone) | under the flood | p99 moved | flood replies/s "
        "| CPU ms/reply | not complete |"
    )
    print("|---|---|---|---|---|---|---|")
    print(row(shipped))
    print(row(lifted))
    q99 = percentile(shipped.quiet_ttft, 99)
    moved = (percentile(shipped.flood_ttft, 99) - q99) / q99 * 100
    print(
        f"\ntarget: p99 moves by less than 25% -> {'met' if moved < 25 else 'NOT met'} "
        f"({moved:+.0f}%)"
    )


if __name__ == "__main__":
    asyncio.run(main(ARGS))
