"""`make test`: find the real parts, run the suite on the embedded defaults, then again on real
PostgreSQL and Redis. Says clearly what it skipped; with CI=true anything missing is a failure.
Prints the wall time of each part (the llama-server build check, each pytest run) and the
total, so a CI log shows where the time goes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("PARLEY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/parley")
REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def check_postgres() -> str | None:
    if not reachable("127.0.0.1", 5432):
        return "PostgreSQL does not answer on 127.0.0.1:5432"
    try:
        import psycopg

        with psycopg.connect(PG_URL.rsplit("/", 1)[0] + "/postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL refused the connection ({str(exc).strip().splitlines()[0]})"
    return None


def check_redis() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis does not answer at {REDIS_URL} ({exc})"
    return None


def check_chromium() -> str | None:
    if not shutil.which("chromium"):
        return "Debian's chromium is not installed (apt install chromium)"
    return None


def check_llama() -> tuple[str | None, str | None]:
    """(path of llama-server, reason it is missing)."""
    script = ROOT / "tests" / "llama" / "build-llama-server.sh"
    result = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        return None, f"llama-server could not be built ({tail})"
    return result.stdout.strip().splitlines()[-1], None


class Stopwatch:
    """Wall time of each part of the run, printed as each part ends and again at the end."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.parts: list[tuple[str, float]] = []

    def record(self, part: str, since: float) -> None:
        seconds = time.monotonic() - since
        self.parts.append((part, seconds))
        print(f"make test: {part} took {duration(seconds)}", flush=True)

    def summary(self) -> None:
        width = max([len(part) for part, _ in self.parts] + [len("total")])
        print("make test: wall time")
        for part, seconds in self.parts:
            print(f"  {part:<{width}}  {duration(seconds):>10}")
        print(f"  {'total':<{width}}  {duration(time.monotonic() - self.started):>10}")


def duration(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s" if minutes else f"{rest:.1f}s"


def run_pytest(label: str, env: dict[str, str], args: list[str]) -> int:
    """Run the suite once. A failure fails the run: a test that fails only sometimes is a
    bug to find and fix, so nothing is rerun until it passes."""
    print(f"\n=== make test: {label} ===", flush=True)
    code = subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env)
    if code == 5:  # no tests collected (e.g. a -k filter that matches nothing here)
        print(f"make test: {label}: no tests collected")
        return 0
    return code


def main() -> int:
    args = sys.argv[1:]
    skipped: dict[str, str] = {}
    stopwatch = Stopwatch()

    since = time.monotonic()
    llama_path, llama_missing = check_llama()
    stopwatch.record("llama-server build check", since)
    if llama_missing:
        skipped["llama"] = llama_missing
    chromium_missing = check_chromium()
    if chromium_missing:
        skipped["browser"] = chromium_missing
    pg_missing = check_postgres()
    redis_missing = check_redis()

    base_env = {**os.environ, "PARLEY_TESTING": "1"}
    base_env.pop("DATABASE_URL", None)
    base_env.pop("REDIS_URL", None)
    if llama_path:
        base_env["PARLEY_LLAMA_SERVER"] = llama_path
    for marker, reason in skipped.items():
        base_env[f"PARLEY_SKIP_{marker.upper()}"] = reason

    for marker, reason in skipped.items():
        print(f"make test: SKIPPING the '{marker}' tests: {reason}")
    if pg_missing or redis_missing:
        print(
            "make test: SKIPPING the run against real PostgreSQL and Redis: "
            + "; ".join(r for r in (pg_missing, redis_missing) if r)
        )
    if CI and (skipped or pg_missing or redis_missing):
        print("make test: CI=true, so nothing may be skipped: failing.")
        return 1

    failures = []
    since = time.monotonic()
    if run_pytest("embedded defaults (SQLite, in-memory layer, in-process tasks)", base_env, args):
        failures.append("embedded defaults")
    stopwatch.record("pytest, embedded defaults", since)
    if not (pg_missing or redis_missing):
        real_env = {**base_env, "DATABASE_URL": PG_URL, "REDIS_URL": REDIS_URL}
        since = time.monotonic()
        if run_pytest("real PostgreSQL and Redis", real_env, args):
            failures.append("PostgreSQL + Redis")
        stopwatch.record("pytest, PostgreSQL + Redis", since)

    print()
    stopwatch.summary()
    for marker, reason in skipped.items():
        print(f"make test: skipped '{marker}' tests: {reason}")
    if pg_missing or redis_missing:
        print("make test: skipped the PostgreSQL + Redis run")
    if failures:
        print(f"make test: FAILED in: {', '.join(failures)}")
        return 1
    print("make test: all runs passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
