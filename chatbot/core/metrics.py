"""What `/metrics` exposes (Prometheus text format), and the calls that feed it.

Each process answers for itself: operators scrape every `serve` process's own port. The
recording side is a handful of calls on the hot path (chatbot/llm/routing.py at a reply's
first token and end, the consumers at connect and disconnect, the rate limiter on a refusal);
each is a dictionary lookup and a lock-protected add. What is already held in the process's
memory (reply tasks, circuit breakers, the database pool) is read only when scraped.

With PROMETHEUS_MULTIPROC_DIR set (`serve --workers N`: several processes on one port),
prometheus_client keeps counters, histograms and the socket gauge in files in that directory
and a scrape sums them over the workers. The gauges read from process memory (replies in
flight, breaker states, database pool) then describe the worker that answered the scrape.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from typing import Literal

from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

SocketKind = Literal["widget", "dashboard"]
Outcome = Literal["complete", "incomplete", "failed"]

# Prometheus' classic text format; every Prometheus version scrapes it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# In the classic format the `_created` timestamps are extra gauges nobody queries; leaving
# them out shortens each scrape by about a third.
disable_created_metrics()

REPLY_TTFT = Histogram(
    "parley_reply_ttft_seconds",
    "Time from the start of a reply's route to its first token, per endpoint that answered.",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REPLY_DURATION = Histogram(
    "parley_reply_duration_seconds",
    "Time from the start of a reply's route to the end of one endpoint's attempt: complete, "
    "incomplete (ended after some text) or failed (ended before any).",
    ["endpoint", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
QUEUE_WAIT = Histogram(
    "parley_endpoint_queue_wait_seconds",
    "Time a reply waited for one of the endpoint's concurrency slots (max_concurrency).",
    ["endpoint"],
    buckets=(0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SOCKETS_OPEN = Gauge(
    "parley_sockets_open",
    "WebSockets open on this process (summed over live workers in multiprocess mode).",
    ["kind"],
    multiprocess_mode="livesum",
)
RATE_LIMIT_REFUSALS = Counter(
    "parley_rate_limit_refusals",
    "Requests refused by a rate limit, per limit (a request over two limits counts in both).",
    ["limit"],
)

# Endpoint label values stay few: operator endpoints by name; every endpoint a tenant brought
# shares one label (they are many, and their names are only unique within a tenant).
TENANT_ENDPOINTS = "tenant"

# Children by label value: `labels()` validates and locks on every call; a dict lookup does not.
_ttft: dict[str, Histogram] = {}
_duration: dict[tuple[str, str], Histogram] = {}
_queue_wait: dict[str, Histogram] = {}
_sockets: dict[str, Gauge] = {kind: SOCKETS_OPEN.labels(kind) for kind in ("widget", "dashboard")}


def endpoint_label(key: str, name: str) -> str | None:
    """The `endpoint` label for a routing key and endpoint name; None for one-off checks
    (`manage.py llm check`, the Models page's Check button), which are not replies."""
    if key.startswith("check:"):
        return None
    if key.startswith("tenant:"):
        return TENANT_ENDPOINTS
    return name


def first_token(endpoint: str, seconds: float) -> None:
    child = _ttft.get(endpoint)
    if child is None:
        child = _ttft.setdefault(endpoint, REPLY_TTFT.labels(endpoint))
    child.observe(seconds)


def reply_ended(endpoint: str, outcome: Outcome, seconds: float) -> None:
    child = _duration.get((endpoint, outcome))
    if child is None:
        child = _duration.setdefault((endpoint, outcome), REPLY_DURATION.labels(endpoint, outcome))
    child.observe(seconds)


def queue_waited(endpoint: str, seconds: float) -> None:
    child = _queue_wait.get(endpoint)
    if child is None:
        child = _queue_wait.setdefault(endpoint, QUEUE_WAIT.labels(endpoint))
    child.observe(seconds)


def socket_opened(kind: SocketKind) -> None:
    _sockets[kind].inc()


def socket_closed(kind: SocketKind) -> None:
    _sockets[kind].dec()


def rate_limit_refused(limit: str) -> None:
    RATE_LIMIT_REFUSALS.labels(limit).inc()


# --- Read at scrape time from the process's memory -------------------------------------------

BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


def _replies_in_flight() -> GaugeMetricFamily:
    from chatbot.conversations import actions

    # list() copies in one C call, so a reply starting or ending meanwhile cannot break it.
    # A task left on a closed loop (tests run one loop each) will never run again.
    running = sum(
        1
        for task in list(actions._running.values())
        if not task.done() and not task.get_loop().is_closed()
    )
    family = GaugeMetricFamily(
        "parley_replies_in_flight", "Reply tasks running in this process (live, not done)."
    )
    family.add_metric([], running)
    return family


def _breaker_states() -> GaugeMetricFamily:
    from chatbot.llm import routing

    family = GaugeMetricFamily(
        "parley_endpoint_breaker_state",
        "This process's circuit breaker per endpoint: 0 closed, 1 half-open (or due to probe), "
        "2 open.",
        labels=["endpoint"],
    )
    states: dict[str, int] = {}
    for key, name, state in routing.breaker_states():
        endpoint = endpoint_label(key, name)
        if endpoint is None:
            continue
        value = BREAKER_STATES[state]
        if endpoint == TENANT_ENDPOINTS:
            # Many breakers share this label: show the worst.
            states[endpoint] = max(states.get(endpoint, 0), value)
        else:
            # An edited endpoint gets a new key and breaker; the newest (last) one is current.
            states[endpoint] = value
    for endpoint, value in states.items():
        family.add_metric([endpoint], value)
    return family


def _database_pool() -> GaugeMetricFamily | None:
    from django.db import connections

    wrapper = connections["default"]
    # Django's PostgreSQL pool (OPTIONS["pool"], Django 5.1+); None without one. Reading it
    # builds the pool object if no query did yet, but opens no connection.
    pool = getattr(wrapper, "pool", None) if wrapper.vendor == "postgresql" else None
    if pool is None:
        return None
    stats = pool.get_stats()
    family = GaugeMetricFamily(
        "parley_db_pool_connections",
        "This process's database connection pool: connections held (size), idle (available), "
        "and requests waiting for one.",
        labels=["state"],
    )
    family.add_metric(["size"], stats.get("pool_size", 0))
    family.add_metric(["available"], stats.get("pool_available", 0))
    family.add_metric(["waiting"], stats.get("requests_waiting", 0))
    return family


class LiveCollector(Collector):
    """The gauges read from this process's memory when scraped."""

    def collect(self) -> Iterable[Metric]:
        yield _replies_in_flight()
        yield _breaker_states()
        pool = _database_pool()
        if pool is not None:
            yield pool

    def describe(self) -> Iterable[Metric]:
        # Registering must not read the database pool (or import the conversations app).
        return []


LIVE = LiveCollector()
REGISTRY.register(LIVE)

_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that are gone (a killed worker never says so itself)."""
    from prometheus_client import multiprocess

    pids = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*.db")):
        match = _LIVE_GAUGE_FILE.search(os.path.basename(path))
        if match:
            pids.add(int(match.group(1)))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)
        except PermissionError:
            pass  # alive, another user's


def exposition() -> bytes:
    """The scrape's body, in Prometheus' text format (CONTENT_TYPE)."""
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if not directory:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    _forget_dead_workers(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    registry.register(LIVE)
    return generate_latest(registry)
