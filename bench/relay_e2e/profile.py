"""Sampling a `serve` process with py-spy during a phase, and the top of the profile as text.

py-spy (`pip install py-spy`) records collapsed stacks (`--format raw`), one line per
distinct stack: `thread (0x...) "name";func (file.py:12);... <samples>` with `--threads`.
Idle samples are left out, so a thread's samples over (seconds x rate) is the share of wall
time it was busy.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

RATE = 100  # samples per second
_LINE_NUMBER = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    venv = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "py-spy"
    return str(venv) if venv.exists() else shutil.which("py-spy")


class Recording:
    def __init__(self, pid: int, output: Path) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
        self.output = output
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
             "--threads", "--nonblocking", "--output", str(output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(1.0)  # attached before the load starts

    def finish(self) -> float:
        """Stop sampling (py-spy writes the file on SIGINT); the seconds recorded."""
        seconds = time.monotonic() - self.started
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return seconds


def _frame_name(frame: str) -> str:
    return _LINE_NUMBER.sub(")", frame.strip())


def summarize(collapsed: Path, seconds: float, top: int = 30) -> str:
    """Per-thread busy share, then the functions holding the most samples: inclusive
    (anywhere on the stack) and self (the frame running)."""
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread, frames = frames[0], [_frame_name(f) for f in frames[1:]]
        total += count
        threads[thread] += count
        for name in set(frames):
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
    if not total:
        return "(no samples)"
    wall_samples = max(1.0, seconds * RATE)
    lines = [
        f"{total} samples over {seconds:.1f} s at {RATE}/s (idle left out)",
        "",
        "busy share of wall time per thread:",
    ]
    for thread, count in threads.most_common(8):
        lines.append(f"  {100 * count / wall_samples:5.1f}%  {thread}")
    lines += ["", f"top {top} by inclusive samples (% of all busy samples):"]
    for name, count in inclusive.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines += ["", f"top {top} by self samples:"]
    for name, count in own.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)
