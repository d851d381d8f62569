"""Benchmark: the inbox list and full-text search at scale.

Builds a workspace with N conversations (3 messages each) in a fresh database, then prints,
for the list page at 25 and 100 per page and for searches, the number of SQL queries and the
median time of several requests. The query count must not change with the page size.

    .venv/bin/python bench/inbox/run.py [--conversations 20000]          # SQLite (FTS5), temp dir
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_bench_inbox \\
        .venv/bin/python bench/inbox/run.py                              # PostgreSQL (GIN)

The PostgreSQL database named in DATABASE_URL is emptied and migrated first: use a scratch one.
"""

from __future__ import annotations

import argparse
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
if not os.environ.get("DATABASE_URL"):
    os.environ["PARLEY_VAR_DIR"] = tempfile.mkdtemp(prefix="parley-bench-inbox-")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

# 22 real words among 600 fillers: each real word is in a few percent of the messages.
WORDS = [
    "order",
    "refund",
    "shipping",
    "jacket",
    "bike",
    "repair",
    "rental",
    "invoice",
    "delivery",
    "size",
    "colour",
    "return",
    "warranty",
    "battery",
    "brake",
    "wheel",
    "saddle",
    "helmet",
    "store",
    "opening",
    "hours",
    "price",
    "discount",
] + [f"filler{n}" for n in range(600)]


def build(count: int) -> tuple[object, object]:
    from chatbot.bots.models import Bot
    from chatbot.conversations.models import Conversation, Message, Role, Visitor
    from chatbot.tenants.models import Membership, Tenant, User

    tenant = Tenant.objects.create(name="Bench", slug=f"bench-{int(time.time())}")
    user = User.objects.create_user(f"owner-{tenant.slug}@bench.test", "x")
    Membership.objects.create(tenant=tenant, user=user, role="owner")
    bot = Bot.objects.create(tenant=tenant, name="Bench bot")
    for start in range(0, count, 2000):
        size = min(2000, count - start)
        visitors = Visitor.objects.bulk_create(
            Visitor(bot=bot, name=f"Visitor {start + i}") for i in range(size)
        )
        conversations = Conversation.objects.bulk_create(
            Conversation(bot=bot, visitor=v, last_seq=3) for v in visitors
        )
        Message.objects.bulk_create(
            Message(
                conversation=c,
                seq=seq,
                role=role,
                text=" ".join(WORDS[(c.pk * 7 + seq * 3 + k) % len(WORDS)] for k in range(12)),
            )
            for c in conversations
            for seq, role in ((1, Role.VISITOR), (2, Role.ASSISTANT), (3, Role.VISITOR))
        )
    return tenant, user


def measure(client: Client, params: dict[str, str], repeat: int = 7) -> tuple[int, float]:
    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/conversations/", params, SERVER_NAME="127.0.0.1")
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(captured)
    return queries, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=20000)
    args = parser.parse_args()
    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _tenant, user = build(args.conversations)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # as autovacuum would after a bulk load
            cursor.execute("ANALYZE")
    print(
        f"database: {connection.vendor}; {args.conversations} conversations, "
        f"{args.conversations * 3} messages built in {time.perf_counter() - started:.1f} s"
    )
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")  # type: ignore[arg-type]
    cases = [
        ("list, 25 per page", {"size": "25"}),
        ("list, 100 per page", {"size": "100"}),
        ("list, 100 per page, page 50", {"size": "100", "page": "50"}),
        ("search 'refund', 25 per page", {"q": "refund", "size": "25"}),
        ("search 'refund', 100 per page", {"q": "refund", "size": "100"}),
        ("search 'refund warranty' (both)", {"q": "refund warranty", "size": "25"}),
        ("search prefix 'warr'", {"q": "warr", "size": "25"}),
        ("search + status + identity filters", {"q": "brake", "status": "bot", "identity": "anonymous"}),  # noqa: E501
    ]  # fmt: skip
    print(f"{'request':40} {'queries':>8} {'median ms':>10}")
    for label, params in cases:
        queries, ms = measure(client, params)
        print(f"{label:40} {queries:>8} {ms:>10.1f}")


if __name__ == "__main__":
    main()
