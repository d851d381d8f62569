"""Sampling a `serve` process with py-spy during a phase, and the top of the profile as text.

Two recordings run side by side (`--nonblocking`: the process is never paused):

- on-CPU (`py-spy record` without `--idle`): where the process spends CPU;
- wall (`--idle`): what each thread is doing all the time, waits included. A thread pool
  worker blocked on its work queue, or the event loop in its poller, is waiting for work;
  anything else (a query waiting for PostgreSQL included) is the thread being occupied.

py-spy writes collapsed stacks (`--format raw --threads`): one line per distinct stack,
`thread (tid): name;func (file.py:12);... <samples>`.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RATE = 100  # samples per second
_LINE_NUMBER = re.compile(r":\d+\)$")
# Frames every stack of a thread goes through: leaving them out makes the top list useful.
PLUMBING = (
    "(threading.py)",
    "(concurrent/futures/thread.py)",
    "(asgiref/sync.py)",
    "(channels/db.py)",
    "(asyncio/runners.py)",
    "(asyncio/events.py)",
    "(asyncio/base_events.py)",
    "(manage.py)",
    "(django/core/management/",
    "(uvicorn/main.py)",
    "(uvicorn/server.py)",
    "(chatbot/core/management/commands/serve.py)",
)
# A stack ending here is a thread with nothing to do. (Not `Condition.wait`: a database
# thread in `async_to_sync`, waiting for the event loop, is occupied, not idle.)
WAITING_FOR_WORK = (
    "_worker (concurrent/futures/thread.py)",  # the pool's queue.get (C code below it)
    # uvloop's loop is C code: its polling and its own work both show as this frame, so the
    # event loop's wall share below is a lower bound; its on-CPU share is the real figure.
    "Runner.run (asyncio/runners.py)",
    "EpollSelector.select (selectors.py)",  # the asyncio loop, polling
)
OWN_CODE = ("(chatbot/", "(widget/")


def py_spy() -> str | None:
    venv = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "py-spy"
    return str(venv) if venv.exists() else shutil.which("py-spy")


class Recording:
    """py-spy on `pid`, on-CPU and wall, into `<stem>.cpu.collapsed` and `<stem>.wall...`."""

    def __init__(self, pid: int, stem: Path) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
        self.stem = stem
        self.started = time.monotonic()
        self.processes = []
        for kind, extra in (("cpu", []), ("wall", ["--idle"])):
            command = [binary, "record", "--pid", str(pid), "--rate", str(RATE),
                       "--format", "raw", "--threads", "--nonblocking", *extra,
                       "--output", str(self.path(kind))]  # fmt: skip
            self.processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        time.sleep(1.0)  # attached before the load starts

    def path(self, kind: str) -> Path:
        return self.stem.with_name(f"{self.stem.name}.{kind}.collapsed")

    def finish(self) -> str:
        """Stop sampling (py-spy writes its file on SIGINT) and summarize both recordings."""
        seconds = time.monotonic() - self.started
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return "\n\n".join(
            [summarize_cpu(self.path("cpu"), seconds), summarize_wall(self.path("wall"), seconds)]
        )


@dataclass
class Sample:
    thread: str
    frames: list[str]  # outermost first, without line numbers
    count: int


def read(collapsed: Path) -> list[Sample]:
    samples = []
    if not collapsed.exists():
        return samples
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        thread, *frames = stack.split(";")
        thread = re.sub(r"^thread \(\d+\): ", "", thread)
        names = [_LINE_NUMBER.sub(")", f.strip()) for f in frames]
        samples.append(Sample(thread, names, int(count_text)))
    return samples


def _top(samples: list[Sample], total: int, keep: tuple[str, ...] = (), top: int = 25) -> list[str]:
    inclusive: Counter[str] = Counter()
    for sample in samples:
        for name in set(sample.frames):
            if any(p in name for p in PLUMBING) or (keep and not any(k in name for k in keep)):
                continue
            inclusive[name] += sample.count
    return [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]


def summarize_cpu(collapsed: Path, seconds: float) -> str:
    samples = read(collapsed)
    total = sum(s.count for s in samples)
    if not total:
        return "on-CPU: (no samples)"
    wall = max(1.0, seconds * RATE)
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for sample in samples:
        threads[sample.thread] += sample.count
        if sample.frames:
            own[sample.frames[-1]] += sample.count
    lines = [
        f"ON-CPU: {total} samples over {seconds:.1f} s at {RATE}/s "
        f"({100 * total / wall:.0f}% of one core)",
        "on CPU, share of wall time, per thread:",
        *(f"  {100 * n / wall:5.1f}%  {t}" for t, n in threads.most_common(6)),
        "",
        "top by inclusive samples (% of on-CPU samples; plumbing frames left out):",
        *_top(samples, total),
        "",
        "Parley's own functions (chatbot/, widget/), inclusive:",
        *_top(samples, total, keep=OWN_CODE, top=20),
        "",
        "top by self samples:",
        *(f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(20)),
    ]
    return "\n".join(lines)


def summarize_wall(collapsed: Path, seconds: float) -> str:
    samples = read(collapsed)
    if not samples:
        return "WALL: (no samples)"
    per_thread: Counter[str] = Counter()
    occupied: Counter[str] = Counter()
    for sample in samples:
        per_thread[sample.thread] += sample.count
        if not sample.frames or sample.frames[-1] not in WAITING_FOR_WORK:
            occupied[sample.thread] += sample.count
    lines = ["WALL (waits included): occupied share of each thread's samples:"]
    for thread, count in per_thread.most_common():
        if occupied[thread]:
            lines.append(f"  {100 * occupied[thread] / count:5.1f}%  {thread}")
    for thread, _ in occupied.most_common(2):
        busy = [
            s
            for s in samples
            if s.thread == thread and s.frames and s.frames[-1] not in WAITING_FOR_WORK
        ]
        total = per_thread[thread]
        lines += [
            "",
            f"{thread}: what occupies it (% of its wall time; Parley's functions, inclusive):",
            *_top(busy, total, keep=OWN_CODE, top=15),
            f"{thread}: the same, every function (plumbing left out):",
            *_top(busy, total, top=20),
        ]
    return "\n".join(lines)
