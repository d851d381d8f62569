"""Benchmark: what /metrics costs a reply, and what a scrape costs the event loop.

Per reply, chatbot/llm/routing.py adds (per endpoint attempt): the endpoint's label, three
clock reads and three histogram observations (queue wait, first token, duration). Nothing is
added per token. This times exactly those calls, then one scrape (`metrics.exposition()`, run
on the event loop by the async view) with 10 endpoints' histograms filled.

    .venv/bin/python bench/metrics_overhead/run.py [--replies 200000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("PARLEY_TESTING", "1")

import django  # noqa: E402

django.setup()

from chatbot.core import metrics  # noqa: E402


def per_reply(key: str = "op:1:0", name: str = "local") -> None:
    """The instrumentation one successful reply goes through in routing._attempt."""
    label = metrics.endpoint_label(key, name)
    queued_at = time.monotonic()
    if label is not None:
        metrics.queue_waited(label, time.monotonic() - queued_at)
    started = queued_at
    if label is not None:
        metrics.first_token(label, time.monotonic() - started)
    if label is not None:
        metrics.reply_ended(label, "complete", time.monotonic() - started)


def baseline(key: str = "op:1:0", name: str = "local") -> None:
    """The same call shape with nothing recorded, to subtract the loop and call overhead."""
    return None


def best_of(function: object, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replies", type=int, default=200_000)
    args = parser.parse_args()

    per_reply()  # create the label children once, as the first reply does
    with_metrics = best_of(per_reply, args.replies)
    without = best_of(baseline, args.replies)
    added = with_metrics - without
    print(f"per reply: {added * 1e6:.2f} us added (instrumented call {with_metrics * 1e6:.2f} us,")
    print(f"  empty call {without * 1e6:.2f} us; best of 5 x {args.replies:,} replies)")
    print(f"  = {added / 6e-3 * 100:.3f}% of the 6 ms per-reply CPU budget (issue 10)")

    for n in range(10):
        for outcome in ("complete", "incomplete", "failed"):
            metrics.reply_ended(f"endpoint-{n}", outcome, 1.0)  # type: ignore[arg-type]
        metrics.first_token(f"endpoint-{n}", 0.1)
        metrics.queue_waited(f"endpoint-{n}", 0.0)
    body = metrics.exposition()
    scrape = best_of(metrics.exposition, 200)
    print(
        f"one scrape: {scrape * 1e3:.2f} ms of event-loop time, {len(body):,} bytes "
        "(10 endpoints, best of 5 x 200)"
    )


if __name__ == "__main__":
    main()
