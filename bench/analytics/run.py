"""Benchmark: roll-ups and the analytics page at a million messages.

Builds a scratch database (SQLite in a temporary PARLEY_VAR_DIR, or the PostgreSQL database
named by BENCH_DATABASE_URL, which it empties first), writes --messages messages over --days
days for one tenant with three bots (a visitor message, then a reply with tokens, timing and
sometimes feedback; one conversation in five calls an action: done, failed or declined),
then times:

- the roll-up of one day and of every day (what the Celery task does),
- the report over 30 and 90 days (`report.build`, what the page computes),
- one GET of the analytics page, the dashboard's home (usage meter) and the usage page
  (rendering included).

    .venv/bin/python bench/analytics/run.py [--messages 1000000] [--days 90] [--reuse] [--var-dir D]

`--reuse` keeps the data a previous run left (in BENCH_DATABASE_URL, or SQLite in the
`--var-dir` it was given) and times the roll-ups and pages again without generating.

Generation is bounded: rows go in with executemany-sized bulk inserts, no actions.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
parser = argparse.ArgumentParser()
parser.add_argument("--messages", type=int, default=1_000_000)
parser.add_argument("--days", type=int, default=90)
parser.add_argument("--reuse", action="store_true")
parser.add_argument("--var-dir", help="keep the SQLite database here (for --reuse)")
args = parser.parse_args()

scratch = args.var_dir or tempfile.mkdtemp(prefix="parley-bench-analytics-")
os.environ["PARLEY_VAR_DIR"] = scratch
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("PARLEY_TESTING", "1")  # plain static files, no manifest to build
if os.environ.get("BENCH_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
else:
    os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from chatbot.analytics import report, rollup  # noqa: E402
from chatbot.bots.models import Bot  # noqa: E402
from chatbot.conversations.models import Conversation, Message, Visitor  # noqa: E402
from chatbot.tenants.models import Membership, Role, Tenant, User  # noqa: E402
from chatbot.tools.models import ActionCall  # noqa: E402

ACTIONS = [("find_order", 0.9), ("book_visit", 0.7), ("capture_lead", 0.97)]
QUESTIONS = [
    "What are your opening hours?",
    "Do you ship to Canada?",
    "How do I return an item?",
    "Is the blue bike in stock?",
    "Can I talk to a person?",
    "How much is delivery?",
]


def timed(label: str, work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds * 1000:,.0f} ms")
    return seconds


def generate(tenant: Tenant, bots: list[Bot], total: int, days: int) -> None:
    rng = random.Random(42)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    per_conversation = 6  # three exchanges
    conversations = total // per_conversation
    batch = 2000
    made = 0
    while made < conversations:
        count = min(batch, conversations - made)
        visitors = Visitor.objects.bulk_create(
            Visitor(bot=bots[(made + n) % len(bots)]) for n in range(count)
        )
        convs = Conversation.objects.bulk_create(
            Conversation(bot_id=v.bot_id, visitor=v, last_seq=per_conversation) for v in visitors
        )
        rows = []
        for conversation in convs:
            for exchange in range(per_conversation // 2):
                rows.append(
                    Message(
                        conversation=conversation,
                        seq=2 * exchange + 1,
                        role="visitor",
                        text=rng.choice(QUESTIONS),
                    )
                )
                rows.append(
                    Message(
                        conversation=conversation,
                        seq=2 * exchange + 2,
                        role="assistant",
                        text="An answer.",
                        status="complete",
                        endpoint=rng.choice(["local", "cloud"]),
                        model="llama",
                        tokens_in=rng.randint(200, 900),
                        tokens_out=rng.randint(20, 200),
                        ttft_ms=rng.randint(150, 4000),
                        feedback=rng.choice(["", "", "", "up", "down"]),
                        citations=[{"title": "FAQ", "url": ""}] if rng.random() < 0.7 else [],
                    )
                )
        Message.objects.bulk_create(rows, batch_size=5000)
        calls = []
        for conversation in convs[::5]:
            name, success = rng.choice(ACTIONS)
            roll = rng.random()
            status = "done" if roll < success else "declined" if roll > 0.98 else "failed"
            calls.append(
                ActionCall(
                    conversation=conversation,
                    name=name,
                    kind="http",
                    status=status,
                    duration_ms=None if status == "declined" else rng.randint(40, 3000),
                )
            )
        ActionCall.objects.bulk_create(calls, batch_size=5000)
        made += count
    # created_at is auto_now_add (bulk_create sets it to now): spread the rows over the
    # period, one UPDATE per day, each day's messages at one hour of that day.
    ids = list(Message.objects.order_by("pk").values_list("pk", flat=True))
    chunk = max(1, len(ids) // days)
    for day in range(days):
        part = ids[day * chunk : (day + 1) * chunk] if day < days - 1 else ids[day * chunk :]
        if not part:
            continue
        moment = start + timedelta(days=day, hours=rng.randint(0, 23))
        Message.objects.filter(pk__gte=part[0], pk__lte=part[-1]).update(created_at=moment)
        first_conv = Message.objects.filter(pk=part[0]).values_list("conversation_id", flat=True)[0]
        last_conv = Message.objects.filter(pk=part[-1]).values_list("conversation_id", flat=True)[0]
        Conversation.objects.filter(pk__gte=first_conv, pk__lte=last_conv).update(
            created_at=moment, updated_at=moment
        )
        ActionCall.objects.filter(
            conversation_id__gte=first_conv, conversation_id__lte=last_conv
        ).update(created_at=moment)


def main() -> None:
    print(f"database: {django.db.connection.vendor}; scratch: {scratch}")
    call_command("migrate", verbosity=0)
    reuse = args.reuse
    if reuse:
        tenant = Tenant.objects.get(slug="bench")
        owner = User.objects.get(email="owner@bench.test")
    else:
        if django.db.connection.vendor == "postgresql":
            Tenant.objects.all().delete()
            User.objects.filter(email="owner@bench.test").delete()
        tenant = Tenant.objects.create(name="Bench", slug="bench")
        owner = User.objects.create_user("owner@bench.test", "pw")
        Membership.objects.create(tenant=tenant, user=owner, role=Role.OWNER)
        bots = [Bot.objects.create(tenant=tenant, name=f"Bot {n}") for n in range(3)]
        timed(
            f"generate {args.messages:,} messages over {args.days} days",
            lambda: generate(tenant, bots, args.messages, args.days),
        )
    if django.db.connection.vendor == "postgresql":
        # What autovacuum does after a bulk load; without fresh statistics the planner
        # misjudges the rows per tenant (Home's failed-replies query: 700 ms instead of 13).
        with django.db.connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"messages: {Message.objects.count():,}; action calls: {ActionCall.objects.count():,}")
    today = rollup.day_bounds(tenant, datetime.now(UTC).date())[0].date()
    busiest = today - timedelta(days=args.days // 2)
    timed("roll-up of one day", lambda: rollup.roll_up(tenant, busiest))
    timed(
        f"roll-up of all {args.days + 1} days",
        lambda: [rollup.roll_up(tenant, today - timedelta(days=n)) for n in range(args.days + 1)],
    )
    for span in (30, 90):
        timed(
            f"report over {span} days",
            lambda span=span: report.build(tenant, today - timedelta(days=span - 1), today),
        )
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
    for url in ("/analytics/?days=90", "/dashboard/", "/usage/"):
        assert client.get(url).status_code == 200  # warms the templates
        timed(f"GET {url}", lambda url=url: client.get(url))


if __name__ == "__main__":
    main()
