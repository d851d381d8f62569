"""Benchmark: the REST API's conversation list and search at scale, queries per request pinned.

Builds the same workspace as bench/inbox (N conversations, 3 messages each; its `build`), then
walks `GET /api/v1/conversations` with an API key: first page and a page deep in the cursor
chain at 25 and 100 per page, searches and filters. Prints the SQL queries and the median
time of several requests, and fails (exit 1) if the query count depends on the page size or
the position in the chain, or exceeds QUERY_CEILING.

    .venv/bin/python bench/api/run.py [--conversations 20000]           # SQLite (FTS5), temp dir
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_bench_api \\
        .venv/bin/python bench/api/run.py                               # PostgreSQL (GIN)

The PostgreSQL database named in DATABASE_URL is emptied and migrated first: use a scratch one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from bench.inbox.run import build  # noqa: E402  (sets up Django, a temp dir for SQLite)

# Key lookup, role, then the page itself (ETag and rate limit cost no query).
QUERY_CEILING = 3


def measure(client: Client, params: dict[str, str], repeat: int = 7) -> tuple[int, float, dict]:
    times = []
    queries = 0
    body: dict = {}
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/api/v1/conversations", params, SERVER_NAME="127.0.0.1")
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content[:300]
        queries = len(captured)
        body = response.json()
    return queries, statistics.median(times), body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=20000)
    args = parser.parse_args()
    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    tenant, user = build(args.conversations)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # as autovacuum would after a bulk load
            cursor.execute("ANALYZE")
    print(
        f"database: {connection.vendor}; {args.conversations} conversations, "
        f"{args.conversations * 3} messages built in {time.perf_counter() - started:.1f} s"
    )
    from chatbot.tenants import actions
    from chatbot.tenants.models import Membership

    _key, secret = actions.create_api_key(
        Membership.objects.get(tenant=tenant, user=user), "bench", "read"
    )
    client = Client(headers={"authorization": f"Bearer {secret}"})
    client.get("/api/v1/me", SERVER_NAME="127.0.0.1")  # first use writes last_used_at

    # 50 pages in: the cursor of the 50th page of 100.
    cursor = ""
    with override_settings(WIDGET_RATE_LIMITS={"api:key": (1_000_000, 60)}):
        for _ in range(50):
            params = {"limit": "100"} | ({"cursor": cursor} if cursor else {})
            cursor = client.get("/api/v1/conversations", params, SERVER_NAME="127.0.0.1").json()[
                "next_cursor"
            ]
        cases = [
            ("list, 25 per page", {"limit": "25"}),
            ("list, 100 per page", {"limit": "100"}),
            ("list, 100 per page, 50 pages in", {"limit": "100", "cursor": cursor}),
            ("search 'refund', 25 per page", {"q": "refund", "limit": "25"}),
            ("search 'refund', 100 per page", {"q": "refund", "limit": "100"}),
            ("search 'refund warranty' (both)", {"q": "refund warranty", "limit": "25"}),
            ("search prefix 'warr'", {"q": "warr", "limit": "25"}),
            ("search + status + identity", {"q": "brake", "status": "bot", "identity": "anonymous"}),  # noqa: E501
        ]  # fmt: skip
        print(f"{'request':40} {'queries':>8} {'median ms':>10} {'rows':>6}")
        counts = set()
        for label, params in cases:
            queries, ms, body = measure(client, params)
            counts.add(queries)
            print(f"{label:40} {queries:>8} {ms:>10.1f} {len(body['data']):>6}")
    if len(counts) != 1 or max(counts) > QUERY_CEILING:
        print(f"FAIL: queries per request vary or exceed {QUERY_CEILING}: {sorted(counts)}")
        sys.exit(1)
    print(f"queries per request: {counts.pop()} whatever the page size, position or search")


if __name__ == "__main__":
    main()
