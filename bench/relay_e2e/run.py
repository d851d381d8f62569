"""Benchmark: a visitor's reply through Parley versus straight from the model, end to end.

One run starts an instant OpenAI-compatible stand-in model (64 tokens, one every 20 ms), a
bare uvicorn socket app, and Parley's own `manage.py serve` processes from this checkout, in
each mode (embedded defaults; PostgreSQL + Redis), and alternates baseline and Parley rounds
under the same load:

- time to first token, 1 visitor and N visitors sending at once (baseline: clients
  streaming from the stand-in directly); tokens/s at N; server CPU per reply;
- connect + hello: server CPU per socket, time to reopen many sockets, memory per idle socket
  (baseline: a bare uvicorn app answering `hello` with `ready`);
- damaged streams: visitors spread over 2 processes on Redis (1 on the embedded defaults),
  some watched from the other process too; every reply rebuilt from its deltas and compared
  with the final message and the stored row.

Visitors speak the real widget protocol (session over HTTP, /ws/widget/<key> with Origin,
hello, message.send, deltas, final message). Tables print the baseline, Parley and the
target of issue 10 side by side, with the load average at start and end.

    python bench/relay_e2e/run.py --quick          # a few minutes
    python bench/relay_e2e/run.py                  # the full run (10,000 sockets, 3,000+ replies)
    python bench/relay_e2e/run.py --modes postgres --profile /tmp/relay-profile

PostgreSQL mode drops and creates the database named by --postgres and flushes the Redis
database of --redis: give it scratch ones.
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
    parser.add_argument("--quick", action="store_true", help="fewer rounds, sockets and replies")
    parser.add_argument("--modes", default="embedded,postgres", help="embedded,postgres")
    parser.add_argument(
        "--phases",
        default="single,crowd,sockets,damaged",
        help="any of single (1 visitor), crowd (N at once), sockets, damaged",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/parley_bench"
        ),
        help="a scratch database, dropped and created (default: %(default)s)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        help="a scratch Redis database, flushed (default: %(default)s)",
    )
    parser.add_argument("--visitors", type=int, default=100, help="visitors sending at once")
    parser.add_argument("--sockets", type=int, help="sockets to reopen (10000; quick 500)")
    parser.add_argument("--replies", type=int, help="replies in the damaged-stream test")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per reply")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="between tokens")
    parser.add_argument(
        "--profile",
        type=Path,
        help="also profile one extra crowd round per mode, and the sockets' opening, with py-spy",
    )
    return parser.parse_args()


def use_checkout_venv() -> None:
    """Run under the checkout's .venv (Parley's dependencies), whatever `python` started us."""
    venv = ROOT / ".venv"
    if (venv / "bin" / "python").exists() and Path(sys.prefix).resolve() != venv.resolve():
        python = str(venv / "bin" / "python")
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])
    try:
        import httpx  # noqa: F401
        import websockets  # noqa: F401
    except ImportError:
        sys.exit(f"relay_e2e: run `make .venv/.installed-dev` in {ROOT} first")


if __name__ == "__main__":
    ARGS = parse_args()
    use_checkout_venv()

sys.path.insert(0, str(ROOT))

import asyncio  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import httpx  # noqa: E402

from bench.lib.openai_stream import Stream, stream_chat  # noqa: E402
from bench.lib.procs import cpu_seconds, load_average, rss_bytes, stop  # noqa: E402
from bench.lib.stats import percentile  # noqa: E402
from bench.relay_e2e import deploy, profile  # noqa: E402
from bench.relay_e2e.widget_client import (  # noqa: E402
    Outcome,
    Tally,
    WidgetSocket,
    session_token,
    stored_replies,
)

T = TypeVar("T")
PROMPT = "Hi! Where is my order?"
OPEN_CONCURRENCY = 100  # sockets opening at once in the reopen test (clients retrying)


@dataclass(frozen=True)
class Plan:
    single_rounds: int  # alternating rounds of the 1-visitor test
    single_messages: int  # sequential messages per round
    crowd_rounds: int
    sockets: int
    damaged_visitors: int
    damaged_messages: int  # per visitor, one after the other

    @classmethod
    def make(cls, args: argparse.Namespace) -> Plan:
        plan = cls(2, 5, 2, 500, 30, 4) if args.quick else cls(3, 20, 4, 10_000, 100, 32)
        sockets = args.sockets or plan.sockets
        visitors, messages = plan.damaged_visitors, plan.damaged_messages
        if args.replies:
            messages = max(1, math.ceil(args.replies / visitors))
        return cls(plan.single_rounds, plan.single_messages, plan.crowd_rounds, sockets,
                   visitors, messages)  # fmt: skip


@dataclass
class ModeResult:
    mode: str
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    damage: Tally | None = None
    damage_processes: int = 0
    damage_stored_mismatch: int = 0
    damage_lost: int = 0  # sends that never got a final message
    stream_tally: Tally = field(default_factory=Tally)  # every reply of the other phases


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')} load {load_average()}] {message}",
          file=sys.stderr, flush=True)  # fmt: skip


def order(round_number: int) -> tuple[str, str]:
    """Baseline first in even rounds, Parley first in odd ones."""
    return ("baseline", "parley") if round_number % 2 == 0 else ("parley", "baseline")


# A TypeVar, not PEP 695: this file must parse under any python3 before it re-execs.
async def bounded(  # noqa: UP047
    tasks: Iterable[Callable[[], Awaitable[T]]], limit: int
) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def one(task: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await task()

    return list(await asyncio.gather(*(one(t) for t in tasks)))


def direct_body() -> dict[str, Any]:
    return {
        "model": "standin",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def ms(seconds: float) -> float:
    return seconds * 1000


class Bench:
    def __init__(self, args: argparse.Namespace, plan: Plan, standin: deploy.Process) -> None:
        self.args = args
        self.plan = plan
        self.standin = standin
        # Idle connections are dropped before uvicorn's 5 s keep-alive closes them: reusing
        # one the server is closing at that moment fails the request (httpx.ReadError).
        limits = httpx.Limits(
            max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=2.0
        )
        self.http = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(300))

    # --- Visitors -------------------------------------------------------------------------------

    async def visitors(self, parley: deploy.Parley, count: int, tally: Tally) -> list[WidgetSocket]:
        """`count` new visitors, each with a session and an open socket (spread over the
        serve processes)."""
        servers = parley.servers

        async def one(n: int) -> WidgetSocket:
            server = servers[n % len(servers)]
            token, _ = await session_token(self.http, server.http, parley.bot_key, deploy.ORIGIN)
            return await WidgetSocket.open(server.ws, parley.bot_key, deploy.ORIGIN, token, tally)

        return await bounded([lambda n=n: one(n) for n in range(count)], 50)

    # --- 1 visitor ------------------------------------------------------------------------------

    async def single(self, parley: deploy.Parley, result: ModeResult) -> None:
        plan, pids = self.plan, [s.pid for s in parley.servers]
        direct: list[Stream] = []
        replies: list[Outcome] = []
        client_cpu = server_cpu = 0.0
        for round_number in range(plan.single_rounds):
            for path in order(round_number):
                if path == "baseline":
                    cpu = time.process_time()
                    for _ in range(plan.single_messages):
                        direct.append(
                            await stream_chat(self.http, self.standin.http, direct_body())
                        )
                    client_cpu += time.process_time() - cpu
                    continue
                (socket,) = await self.visitors(parley, 1, result.stream_tally)
                cpu = cpu_seconds(pids)
                for _ in range(plan.single_messages):
                    replies.append(await socket.send_message(PROMPT))
                server_cpu += cpu_seconds(pids) - cpu
                await socket.close()
        complete = [r for r in replies if r.status == "complete"]
        figures = result.figures
        figures["single.direct.p50"] = ms(percentile([s.ttft for s in direct], 50))
        figures["single.direct.p99"] = ms(percentile([s.ttft for s in direct], 99))
        figures["single.parley.p50"] = ms(percentile([r.ttft for r in complete], 50))
        figures["single.parley.p99"] = ms(percentile([r.ttft for r in complete], 99))
        figures["single.samples"] = len(complete)
        figures["single.failed"] = len(replies) - len(complete)
        figures["cpu.direct_client"] = ms(client_cpu / max(1, len(direct)))
        figures["cpu.single"] = ms(server_cpu / max(1, len(complete)))

    # --- N visitors at once ---------------------------------------------------------------------

    async def crowd_round(
        self, parley: deploy.Parley, result: ModeResult, record: Path | None = None
    ) -> tuple[list[Outcome], float, float]:
        """One round of N visitors sending at once: outcomes, wall seconds, server CPU."""
        count, pids = self.args.visitors, [s.pid for s in parley.servers]
        sockets = await self.visitors(parley, count, result.stream_tally)
        recording = profile.Recording(pids[0], record) if record else None
        cpu = cpu_seconds(pids)
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(s.send_message(PROMPT) for s in sockets))
        wall = time.perf_counter() - started
        used = cpu_seconds(pids) - cpu
        if recording is not None and record is not None:
            summary = recording.finish()
            text = record.with_name(record.name + ".txt")
            text.write_text(summary + "\n")
            log(f"profile: {text}")
        await asyncio.gather(*(s.close() for s in sockets))
        return list(outcomes), wall, used

    async def crowd(self, parley: deploy.Parley, result: ModeResult) -> None:
        count = self.args.visitors
        direct: list[Stream] = []
        direct_rates: list[float] = []
        replies: list[Outcome] = []
        rates: list[float] = []
        server_cpu = 0.0
        for round_number in range(self.plan.crowd_rounds):
            for path in order(round_number):
                if path == "baseline":
                    started = time.perf_counter()
                    streams = await asyncio.gather(
                        *(stream_chat(self.http, self.standin.http, direct_body())
                          for _ in range(count))
                    )  # fmt: skip
                    wall = time.perf_counter() - started
                    direct += streams
                    direct_rates.append(sum(s.tokens for s in streams) / wall)
                    continue
                outcomes, wall, used = await self.crowd_round(parley, result)
                replies += outcomes
                server_cpu += used
                tokens = sum(len(o.text.split(" ")) for o in outcomes if o.status == "complete")
                rates.append(tokens / wall)
        complete = [r for r in replies if r.status == "complete"]
        figures = result.figures
        figures["crowd.direct.p50"] = ms(percentile([s.ttft for s in direct], 50))
        figures["crowd.direct.p99"] = ms(percentile([s.ttft for s in direct], 99))
        figures["crowd.parley.p50"] = ms(percentile([r.ttft for r in complete], 50))
        figures["crowd.parley.p99"] = ms(percentile([r.ttft for r in complete], 99))
        figures["crowd.parley.done_p50"] = ms(percentile([r.done for r in complete], 50))
        figures["crowd.samples"] = len(complete)
        figures["crowd.failed"] = len(replies) - len(complete)
        figures["rate.direct"] = statistics.mean(direct_rates)
        figures["rate.parley"] = statistics.mean(rates)
        figures["cpu.crowd"] = ms(server_cpu / max(1, len(complete)))
        if self.args.profile:
            self.args.profile.mkdir(parents=True, exist_ok=True)
            record = self.args.profile / f"{result.mode}-crowd{count}"
            log(f"{result.mode}: one more crowd round, profiled (not counted)")
            await self.crowd_round(parley, result, record)

    # --- Sockets --------------------------------------------------------------------------------

    async def open_sockets(
        self, server: deploy.Process, bot_key: str, tokens: list[str]
    ) -> tuple[list[WidgetSocket], int, float]:
        tally = Tally()
        started = time.perf_counter()

        async def one(token: str) -> WidgetSocket | None:
            try:
                return await WidgetSocket.open(server.ws, bot_key, deploy.ORIGIN, token, tally)
            except Exception:
                return None

        opened = await bounded([lambda t=t: one(t) for t in tokens], OPEN_CONCURRENCY)
        seconds = time.perf_counter() - started
        sockets = [s for s in opened if s is not None]
        return sockets, len(tokens) - len(sockets), seconds

    async def measure_sockets(
        self,
        name: str,
        server: deploy.Process,
        bot_key: str,
        tokens: list[str],
        record: Path | None = None,
    ) -> dict[str, float]:
        warm, _, _ = await self.open_sockets(server, bot_key, tokens[:20])
        await asyncio.gather(*(s.close() for s in warm))
        await asyncio.sleep(1.0)
        rss, cpu = rss_bytes(server.pid), cpu_seconds([server.pid])
        recording = profile.Recording(server.pid, record) if record else None
        sockets, failed, seconds = await self.open_sockets(server, bot_key, tokens[20:])
        used = cpu_seconds([server.pid]) - cpu
        if recording is not None and record is not None:
            text = record.with_name(record.name + ".txt")
            text.write_text(recording.finish() + "\n")
            log(f"profile: {text}")
        await asyncio.sleep(3.0)  # idle: what the open sockets hold, not what opening used
        grown = rss_bytes(server.pid) - rss
        log(f"  {name}: {len(sockets)} sockets open in {seconds:.1f} s, {failed} failed")
        await bounded([lambda s=s: s.close() for s in sockets], 500)
        opened = max(1, len(sockets))
        return {
            "seconds": seconds,
            "failed": failed,
            "cpu_ms": ms(used / opened),
            "kib": grown / 1024 / opened,
            "count": len(sockets),
        }

    async def sockets(self, parley: deploy.Parley, result: ModeResult) -> None:
        count = self.plan.sockets
        tokens = parley.tokens(count + 20)
        # Fresh processes: memory freed by the earlier phases would hide what sockets take.
        (server,) = parley.start(1)
        bare = deploy.start_bare_app()
        try:
            figures = result.figures
            record = None
            if self.args.profile:  # the opening of Parley's sockets, profiled as it is measured
                self.args.profile.mkdir(parents=True, exist_ok=True)
                record = self.args.profile / f"{result.mode}-sockets{count}"
            for name, target, key in (
                ("bare", bare, "pk_bare"),
                ("parley", server, parley.bot_key),
            ):
                measured = await self.measure_sockets(
                    name, target, key, tokens, record if name == "parley" else None
                )
                for figure, value in measured.items():
                    figures[f"sockets.{name}.{figure}"] = value
        finally:
            stop(bare.process)
            bare.log.unlink(missing_ok=True)

    # --- Damaged streams ------------------------------------------------------------------------

    async def damaged(self, parley: deploy.Parley, result: ModeResult) -> None:
        plan = self.plan
        processes = 2 if parley.mode == "postgres" else 1
        servers = parley.start(processes)
        tally = Tally()
        watchers = Tally()  # second tabs: counted with the rest, kept apart for the report
        lost = 0

        @dataclass
        class Visitor:
            primary: WidgetSocket
            second: WidgetSocket | None
            conversation: str
            home: deploy.Process
            resume: str

        async def visitor(n: int) -> Visitor:
            home, other = servers[n % processes], servers[(n + 1) % processes]
            token, resume = await session_token(self.http, home.http, parley.bot_key, deploy.ORIGIN)
            primary = await WidgetSocket.open(home.ws, parley.bot_key, deploy.ORIGIN, token, tally)
            conversation = await primary.new_conversation()
            second = None
            if n % 3 == 0:  # a second tab, on the other process when there is one
                second = await WidgetSocket.open(
                    other.ws, parley.bot_key, deploy.ORIGIN, token, watchers,
                    conversation=conversation, sync=True,
                )  # fmt: skip
            return Visitor(primary, second, conversation, home, resume)

        opened = await bounded([lambda n=n: visitor(n) for n in range(plan.damaged_visitors)], 50)
        started = time.perf_counter()

        async def talk(v: Visitor) -> None:
            nonlocal lost
            refreshed = time.monotonic()
            for _ in range(plan.damaged_messages):
                # Session tokens last 15 minutes; a long run refreshes them as the frame does.
                if time.monotonic() - refreshed > 600:
                    token, _ = await session_token(
                        self.http, v.home.http, parley.bot_key, deploy.ORIGIN, v.resume
                    )
                    await v.primary.send({"type": "token.refresh", "token": token})
                    refreshed = time.monotonic()
                try:
                    await v.primary.send_message(PROMPT)
                except (TimeoutError, ConnectionError, RuntimeError):
                    lost += 1

        await asyncio.gather(*(talk(v) for v in opened))
        wall = time.perf_counter() - started
        await asyncio.sleep(1.0)  # the second tabs' last final messages
        # The stored rows, through a fresh hello on each conversation.
        mismatched = 0
        for v in opened:
            token, _ = await session_token(
                self.http, v.home.http, parley.bot_key, deploy.ORIGIN, v.resume
            )
            stored = await stored_replies(
                v.home.ws, parley.bot_key, deploy.ORIGIN, token, v.conversation
            )
            for socket in (v.primary, v.second):
                if socket is None:
                    continue
                mismatched += sum(1 for seq, text in socket.finals if stored.get(seq) != text)
                await socket.close()
        tally.add(watchers)
        result.damage = tally
        result.damage_processes = processes
        result.damage_stored_mismatch = mismatched
        result.damage_lost = lost
        result.figures["damaged.seconds"] = wall
        result.figures["damaged.watched"] = watchers.replies
        log(f"{parley.mode}: damaged-stream test: {tally.replies} streams in {wall:.0f} s")


# --- The run -----------------------------------------------------------------------------------


async def run_mode(bench: Bench, mode: str, phases: list[str]) -> ModeResult:
    result = ModeResult(mode)
    parley = deploy.Parley(mode, bench.standin, postgres_url=bench.args.postgres,
                           redis_url=bench.args.redis)  # fmt: skip
    log(f"{mode}: migrating and seeding")
    parley.prepare()
    try:
        if "single" in phases or "crowd" in phases:
            parley.start(1)
            # Warm both paths (imports, pools, the first queries) before anything counts.
            (warm,) = await bench.visitors(parley, 1, Tally())
            await warm.send_message(PROMPT)
            await warm.close()
            await stream_chat(bench.http, bench.standin.http, direct_body())
        if "single" in phases:
            log(f"{mode}: 1 visitor")
            await bench.single(parley, result)
        if "crowd" in phases:
            log(f"{mode}: {bench.args.visitors} visitors at once")
            await bench.crowd(parley, result)
        if "sockets" in phases:
            log(f"{mode}: {bench.plan.sockets} sockets")
            await bench.sockets(parley, result)
        if "damaged" in phases:
            log(f"{mode}: damaged streams")
            await bench.damaged(parley, result)
    finally:
        parley.stop()
    return result


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        # Figures to the right, words to the left.
        print(" | ".join(c.rjust(w) if c[:1].isdigit() or c[:1] in "-<>" else c.ljust(w)
                         for c, w in zip(row, widths, strict=True)))  # fmt: skip


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "NOT met")


def report(results: list[ModeResult], args: argparse.Namespace, plan: Plan) -> None:
    n = args.visitors
    rows: list[list[str]] = []
    for r in results:
        f = r.figures
        if "single.parley.p50" not in f:
            continue
        over = f["single.parley.p50"] - f["single.direct.p50"]
        rows.append(
            [
                r.mode,
                "p50",
                fmt(f["single.direct.p50"], 1),
                fmt(f["single.parley.p50"], 1),
                fmt(over, 1),
                "<= 25",
                verdict(over <= 25),
            ]
        )
        rows.append(
            [
                r.mode,
                "p99",
                fmt(f["single.direct.p99"], 1),
                fmt(f["single.parley.p99"], 1),
                fmt(f["single.parley.p99"] - f["single.direct.p99"], 1),
                "",
                "",
            ]
        )
    if rows:
        table("Time to first token, 1 visitor (ms; direct = straight from the stand-in)",
              ["mode", "", "direct", "Parley", "overhead", "target", ""], rows)  # fmt: skip
    rows = []
    for r in results:
        f = r.figures
        if "crowd.parley.p50" not in f:
            continue
        over50 = f["crowd.parley.p50"] - f["crowd.direct.p50"]
        over99 = f["crowd.parley.p99"] - f["crowd.direct.p99"]
        rows.append(
            [
                r.mode,
                "p50",
                fmt(f["crowd.direct.p50"], 1),
                fmt(f["crowd.parley.p50"], 1),
                fmt(over50, 1),
                "<= 150",
                verdict(over50 <= 150),
            ]
        )
        rows.append(
            [
                r.mode,
                "p99",
                fmt(f["crowd.direct.p99"], 1),
                fmt(f["crowd.parley.p99"], 1),
                fmt(over99, 1),
                "<= 300",
                verdict(over99 <= 300),
            ]
        )
    if rows:
        table(f"Time to first token, {n} visitors sending at once, 1 process (ms)",
              ["mode", "", "direct", "Parley", "overhead", "target", ""], rows)  # fmt: skip
        rows = []
        for r in results:
            f = r.figures
            if "rate.parley" in f:
                ratio = f["rate.parley"] / f["rate.direct"]
                rows.append([r.mode, fmt(f["rate.direct"]), fmt(f["rate.parley"]),
                             f"{ratio:.2f}x", ">= 0.80x", verdict(ratio >= 0.8)])  # fmt: skip
        table(f"Tokens/s at {n} visitors (all tokens / wall time of the round)",
              ["mode", "direct", "Parley", "ratio", "target", ""], rows)  # fmt: skip
    rows = []
    for r in results:
        f = r.figures
        for key, label in (("cpu.single", "1 visitor"), ("cpu.crowd", f"{n} visitors")):
            if key in f:
                rows.append([r.mode, label, fmt(f.get("cpu.direct_client"), 1), fmt(f[key], 1),
                             "<= 6", verdict(f[key] <= 6)])  # fmt: skip
    if rows:
        table("Server CPU per 64-token reply (ms; baseline = the direct client reading the stream)",
              ["mode", "load", "baseline", "Parley", "target", ""], rows)  # fmt: skip
    rows = []
    mem_rows = []
    for r in results:
        f = r.figures
        if "sockets.parley.cpu_ms" not in f:
            continue
        count = int(f["sockets.parley.count"])
        scaled = f["sockets.parley.seconds"] * 10_000 / max(1, count)
        rows.append(
            [
                r.mode,
                "connect + hello CPU (ms)",
                fmt(f["sockets.bare.cpu_ms"], 2),
                fmt(f["sockets.parley.cpu_ms"], 2),
                "<= 3",
                verdict(f["sockets.parley.cpu_ms"] <= 3),
            ]
        )
        rows.append(
            [
                r.mode,
                f"reopen {count:,} sockets (s)",
                fmt(f["sockets.bare.seconds"], 1),
                fmt(f["sockets.parley.seconds"], 1),
                "10,000 in <= 60",
                verdict(scaled <= 60),
            ]
        )
        rows.append(
            [
                r.mode,
                "sockets failed",
                fmt(f["sockets.bare.failed"]),
                fmt(f["sockets.parley.failed"]),
                "0",
                verdict(f["sockets.parley.failed"] == 0),
            ]
        )
        ratio = (
            f["sockets.parley.kib"] / f["sockets.bare.kib"]
            if f["sockets.bare.kib"] > 0
            else math.nan
        )
        mem_rows.append([r.mode, fmt(f["sockets.bare.kib"], 1), fmt(f["sockets.parley.kib"], 1),
                         f"{ratio:.2f}x", "<= 1.2x", verdict(ratio <= 1.2)])  # fmt: skip
    if rows:
        title = (
            f"Sockets, 1 process (baseline = bare uvicorn app; {OPEN_CONCURRENCY} opening at once)"
        )
        table(title,
              ["mode", "", "bare app", "Parley", "target", ""], rows)  # fmt: skip
        table("Memory per idle socket (KiB of RSS, same run)",
              ["mode", "bare app", "Parley", "ratio", "target", ""], mem_rows)  # fmt: skip
    rows = []
    for r in results:
        if r.damage is None:
            continue
        d = r.damage
        fetch = {None: "never needed", True: "yes", False: "no (unknown_type)"}[d.fetch_supported]
        rows.append([f"{r.mode}, {r.damage_processes} process(es)", fmt(d.replies),
                     fmt(r.figures.get("damaged.watched")), fmt(d.gaps_seen),
                     fmt(d.gaps_recovered), fmt(d.damaged), fmt(d.damaged - d.reordered),
                     fmt(r.damage_stored_mismatch),
                     fmt(d.not_complete + r.damage_lost), fetch,
                     verdict(d.damaged == 0 and r.damage_stored_mismatch == 0)])  # fmt: skip
    if rows:
        table("Damaged streams (replies = streams rebuilt, one per socket watching; target: 0 "
              "damaged in >= 3,000 on 2 processes with Redis)",
              ["mode", "replies", "2nd tab", "gaps seen", "gaps recovered", "damaged",
               "of which text never came", "differs from row", "not complete", "reply.fetch",
               ""], rows)  # fmt: skip
        for r in results:
            if r.damage and r.damage.damaged_examples:
                print(f"  {r.mode} examples: " + "; ".join(r.damage.damaged_examples))
    rows = []
    for r in results:
        t = r.stream_tally
        if t.replies or t.not_complete:
            errors = ", ".join(f"{k} {v}" for k, v in t.errors.items()) or "-"
            rows.append([r.mode, fmt(t.replies), fmt(t.gaps_seen), fmt(t.damaged),
                         fmt(t.damaged - t.reordered), fmt(t.not_complete), errors])  # fmt: skip
    if rows:
        table(
            "Every reply of the latency phases, rebuilt the same way",
            ["mode", "replies", "gaps", "damaged", "text never came", "not complete", "errors"],
            rows,
        )


def git_describe() -> str:
    try:
        return subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True,
            check=False,
        ).stdout.strip()  # fmt: skip
    except OSError:
        return "?"


async def main(args: argparse.Namespace) -> None:
    plan = Plan.make(args)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    for mode in modes:
        if mode not in ("embedded", "postgres"):
            sys.exit(f"unknown mode {mode!r}")
    # 10,000 sockets need as many descriptors here and in the server.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    start_load = load_average()
    started = datetime.now(UTC)
    standin = deploy.start_standin(args.tokens, args.interval_ms)
    bench = Bench(args, plan, standin)
    results = []
    try:
        for mode in modes:
            results.append(await run_mode(bench, mode, phases))
    finally:
        await bench.http.aclose()
        stop(standin.process)
        standin.log.unlink(missing_ok=True)
    print(f"\nrelay_e2e, {'quick' if args.quick else 'full'} run, {started:%Y-%m-%d %H:%M} UTC, "
          f"checkout {git_describe()!r}")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores; load average at start {start_load}, "
          f"at end {load_average()}")  # fmt: skip
    print(f"stand-in: {args.tokens} tokens, one every {args.interval_ms:g} ms; {plan}")
    report(results, args, plan)


def run_loop(coroutine: Awaitable[None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)  # type: ignore[arg-type]
    else:
        uvloop.run(coroutine)


if __name__ == "__main__":
    run_loop(main(ARGS))
