"""`pip install .` alone gives a working Redis broker: a knowledge sync sent by Parley from
the fresh install travels through a real Redis to a worker of that install and runs.

(It once did not: Celery's Redis transport needs `packaging`, which only the dev extras
brought, so with REDIS_URL set adding a knowledge source was a 500.)
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.install import ROOT, FreshInstall
from tests.topology.services import PrivateRedis, Processes, clean_env, wait_for

pytestmark = pytest.mark.redis

SEED = """
from chatbot.bots.actions import create_bot
from chatbot.knowledge.actions import add_text
from chatbot.tenants.models import Tenant, User
owner = User.objects.create_user(email="alice@acme.test", password="x" * 20)
tenant = Tenant.objects.create(name="Acme", slug="acme")
bot = create_bot(tenant, owner, name="Acme helper")
source = add_text(bot, title="Hours", text="We are open every day from seven to seven.")
print("source", source.pk)
"""


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(logs=tmp_path / "logs")
    try:
        yield running
    finally:
        running.stop_all()


def test_a_plain_pip_install_sends_a_knowledge_sync_through_redis_to_its_worker(
    fresh_venv: FreshInstall, processes: Processes, tmp_path: Path
) -> None:
    redis = PrivateRedis(processes)
    redis.start()
    var = tmp_path / "var"
    env = clean_env(PARLEY_VAR_DIR=str(var), REDIS_URL=redis.url, LLM_AUTODETECT="false")
    python = str(fresh_venv.python)

    def manage(*args: str) -> str:
        result = subprocess.run(
            [python, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}"
        return result.stdout

    manage("migrate", "--noinput", "--verbosity", "0")
    # The real action: it queues the sync on the broker after its transaction commits.
    out = manage("shell", "--no-imports", "-c", SEED)
    source_id = int(out.split("source", 1)[1].split()[0])

    worker = processes.start(
        "worker",
        [str(fresh_venv.bin("celery")), "-A", "chatbot", "worker", "--pool", "solo",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        env=env,
    )  # fmt: skip

    def synced() -> tuple[str, int] | None:
        if not worker.alive():
            raise AssertionError(f"the worker exited:\n{worker.tail()}")
        with sqlite3.connect(var / "parley.sqlite3") as db:
            status = db.execute(
                "SELECT status FROM knowledge_source WHERE id = ?", (source_id,)
            ).fetchone()[0]
            chunks = db.execute(
                "SELECT count(*) FROM knowledge_chunk WHERE source_id = ?", (source_id,)
            ).fetchone()[0]
        return (status, chunks) if status not in ("pending", "syncing") else None

    status, chunks = wait_for(synced, what="the worker to sync the source", timeout=90)
    assert (status, chunks) == ("ready", 1), worker.tail()
