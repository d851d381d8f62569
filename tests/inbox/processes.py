"""Real processes for the inbox's integration tests: a Celery worker, ASGI servers.

They share this test run's database (the test database, committed rows: use `live_db`) and
Redis, exactly as separate machines behind a load balancer would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """The URL of the database this test run uses (pytest-django's `test_<name>`)."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        REDIS_URL=str(settings.REDIS_URL),
        PARLEY_TESTING="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(extra)
    return env


@contextmanager
def process(
    command: list[str], env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes]]]:
    """Run `command`; on exit stop it (SIGTERM, then SIGKILL) and print the end of its log."""
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield child, log
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])


def wait_until_up(url: str, child: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {child.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server at {url} did not come up")
