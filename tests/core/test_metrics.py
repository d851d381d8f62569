"""/metrics: who may read it, and that the real paths feed it (routing, breakers, rate limits,
reply tasks, sockets, the database pool)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.core import metrics
from chatbot.llm import registry, routing
from chatbot.llm.check import check_endpoint
from chatbot.llm.routing import stream_route
from chatbot.tenants.models import Tenant
from tests.asyncrun import run
from tests.fixtures.servers import LiveServer, free_port
from tests.llm.conftest import collect, finish_of, hello_request, in_loop, make_spec, text_of
from tests.llm.wire import Reply, Request, WireServer, openai_chunk
from widget import ratelimit

TOKEN = "scrape-token-0123456789abcdef"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: bytes) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def scrape() -> Samples:
    return parse(metrics.exposition())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(autouse=True)
def _fresh_llm_state() -> Iterator[None]:
    routing.reset_state()
    registry.reset()
    yield
    routing.reset_state()
    registry.reset()


# --- Who may read it ----------------------------------------------------------------------------


def missing_page(client: Client) -> Any:
    return client.get("/no-such-page")


def test_without_a_token_a_loopback_scraper_gets_prometheus_text(db: None) -> None:
    response = Client().get("/metrics")  # the test client's peer is 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"] == PROMETHEUS_TEXT
    body = response.content.decode()
    assert "# TYPE parley_replies_in_flight gauge" in body
    assert 'parley_sockets_open{kind="widget"}' in body


@pytest.mark.parametrize("peer", ["::1", "::ffff:127.0.0.1", "127.0.0.2"])
def test_every_loopback_form_counts_as_local(db: None, peer: str) -> None:
    assert Client(REMOTE_ADDR=peer).get("/metrics").status_code == 200


@pytest.mark.parametrize("peer", ["203.0.113.9", "10.0.0.7", "::ffff:10.0.0.7", ""])
def test_without_a_token_any_other_peer_gets_the_missing_page_answer(db: None, peer: str) -> None:
    client = Client(REMOTE_ADDR=peer, enforce_csrf_checks=True)
    missing = missing_page(client)
    for response in (client.get("/metrics"), client.post("/metrics", {})):
        # Not 401 or 403 (not even CSRF's): nothing tells that the route exists.
        assert response.status_code == missing.status_code == 404
        assert b"parley_" not in response.content


@pytest.mark.parametrize(
    "header",
    [
        {"HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {"HTTP_FORWARDED": "for=127.0.0.1"},
        {"HTTP_X_REAL_IP": "127.0.0.1"},
    ],
)
def test_without_a_token_a_proxied_request_is_refused_even_from_loopback(
    db: None, header: dict[str, str]
) -> None:
    assert Client(**header).get("/metrics").status_code == 404


@override_settings(METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN[:-1]}x",  # right length, wrong token
        f"bearer {TOKEN}",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN} ",
        f"Bearer {TOKEN}\u00e9",
    ],
)
def test_with_a_token_anything_but_the_token_gets_404_even_from_loopback(
    db: None, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client(**headers).get("/metrics")
    assert response.status_code == 404
    assert b"parley_" not in response.content


@override_settings(METRICS_TOKEN=TOKEN)
def test_with_the_token_any_peer_gets_the_metrics_even_through_a_proxy(db: None) -> None:
    client = Client(
        REMOTE_ADDR="10.0.0.7",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == PROMETHEUS_TEXT
    assert client.post("/metrics").status_code == 405  # known only to who holds the token


@pytest.mark.django_db(transaction=True)
def test_over_a_real_socket_a_local_scrape_answers_and_a_forwarded_one_does_not(
    asgi_server: LiveServer,
) -> None:
    url = f"{asgi_server.url}/metrics"
    direct = httpx.get(url)
    assert direct.status_code == 200 and direct.headers["content-type"] == PROMETHEUS_TEXT
    assert "parley_replies_in_flight" in direct.text
    # A proxy on this host: uvicorn takes the client address from X-Forwarded-For.
    assert httpx.get(url, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404


def test_a_short_token_stops_start_up_naming_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "chatbot.settings", "METRICS_TOKEN": "abc"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "METRICS_TOKEN: must be at least 16 characters long" in result.stderr


# --- Replies through the real routing path ------------------------------------------------------


async def answers(request: Request, reply: Reply) -> None:
    await reply.start(200, "text/event-stream")
    await reply.send(openai_chunk("Hello"))
    await reply.send(
        openai_chunk(" there", finish="stop", usage={"prompt_tokens": 4, "completion_tokens": 2})
    )
    await reply.send("data: [DONE]\n\n")
    await reply.end()


async def dies_after_first_token(request: Request, reply: Reply) -> None:
    await reply.start(200, "text/event-stream")
    await reply.send(openai_chunk("Hel"))
    reply.drop()


def route(*specs):  # type: ignore[no-untyped-def]
    request = hello_request()
    return stream_route(list(specs), lambda _spec: request)


@in_loop
async def test_a_streamed_reply_leaves_a_ttft_and_a_duration_sample_for_its_endpoint() -> None:
    before = scrape()
    async with WireServer(answers) as server:
        spec = make_spec(server.url)
        events = await collect(route(spec))
    assert text_of(events) == "Hello there"
    after = scrape()
    name = spec.name
    for metric, labels in (
        ("parley_reply_ttft_seconds_count", {"endpoint": name}),
        ("parley_reply_duration_seconds_count", {"endpoint": name, "outcome": "complete"}),
        ("parley_endpoint_queue_wait_seconds_count", {"endpoint": name}),
    ):
        assert value(after, metric, **labels) - value(before, metric, **labels) == 1, metric
    ttft = value(after, "parley_reply_ttft_seconds_sum", endpoint=name)
    duration = value(after, "parley_reply_duration_seconds_sum", endpoint=name, outcome="complete")
    assert 0 < ttft <= duration
    assert value(after, "parley_endpoint_breaker_state", endpoint=name) == 0


@in_loop
async def test_failures_are_counted_as_incomplete_after_text_and_failed_before_any() -> None:
    refused = make_spec(f"http://127.0.0.1:{free_port()}", breaker_failures=10)
    async with WireServer(dies_after_first_token) as dying:
        broken = make_spec(dying.url)
        partial = await collect(route(broken))
        nothing = await collect(route(refused))
    assert text_of(partial) == "Hel" and finish_of(partial).error is not None
    assert finish_of(nothing).error is not None
    samples = scrape()
    count = "parley_reply_duration_seconds_count"
    assert value(samples, count, endpoint=broken.name, outcome="incomplete") == 1
    assert value(samples, count, endpoint=broken.name, outcome="complete") == 0
    assert value(samples, count, endpoint=refused.name, outcome="failed") == 1
    assert value(samples, "parley_reply_ttft_seconds_count", endpoint=refused.name) == 0


@in_loop
async def test_an_open_breaker_shows_as_2_and_a_cooled_one_as_half_open() -> None:
    dead = make_spec(f"http://127.0.0.1:{free_port()}", breaker_failures=2)
    for _ in range(2):
        assert finish_of(await collect(route(dead))).error is not None
    assert routing.health_for(dead).breaker.is_open
    assert value(scrape(), "parley_endpoint_breaker_state", endpoint=dead.name) == 2
    breaker = routing.health_for(dead).breaker
    breaker.opened_at -= breaker.cooldown  # the cool-down has passed: the next request probes
    assert value(scrape(), "parley_endpoint_breaker_state", endpoint=dead.name) == 1


@in_loop
async def test_tenant_endpoints_share_one_label_and_checks_are_not_replies() -> None:
    async with WireServer(answers) as server:
        tenants = [make_spec(server.url, name="mine", key=f"tenant:{n}:1:0") for n in (7, 8)]
        for spec in tenants:
            await collect(route(spec))
        checked = make_spec(server.url, name="checked-only")
        result = await check_endpoint(checked)
    assert result.error is None
    samples = scrape()
    labels = {dict(labelset).get("endpoint") for _name, labelset in samples}
    assert "mine" not in labels and "checked-only" not in labels
    assert value(samples, "parley_reply_ttft_seconds_count", endpoint="tenant") >= 2


# --- Reply tasks, sockets, rate limits ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_reply_task_counts_in_flight_until_it_ends(acme: Tenant) -> None:
    bot = Bot.objects.create(tenant=acme, name="Helper", allowed_origins=["https://shop.test"])
    visitor = actions.open_visitor(bot)
    in_flight = "parley_replies_in_flight"

    async def scenario() -> tuple[Samples, Samples, Samples]:
        release, first_token_sent = asyncio.Event(), asyncio.Event()

        async def held(request: Request, reply: Reply) -> None:
            await reply.start(200, "text/event-stream")
            await reply.send(openai_chunk("Hold on"))
            first_token_sent.set()
            await release.wait()
            await reply.send(openai_chunk(".", finish="stop"))
            await reply.send("data: [DONE]\n\n")
            await reply.end()

        async with WireServer(held) as server:
            declared = json.dumps(
                [{"name": "held", "kind": "openai", "url": server.url, "model": "m"}]
            )
            with override_settings(LLM_ENDPOINTS_JSON=declared, LLM_ENDPOINTS_FILE=""):
                registry.reset()
                before = scrape()
                received = await sync_to_async(actions.receive_visitor_message)(
                    visitor, None, client_id="c1", text="Hi"
                )
                assert received.reply_wanted
                actions.start_reply(received.conversation.pk)
                await asyncio.wait_for(first_token_sent.wait(), 10)
                during = scrape()
                release.set()
                await actions.wait_for_replies()
                return before, during, scrape()

    before, during, after = run(scenario())
    assert value(during, in_flight) - value(before, in_flight) == 1
    assert value(after, in_flight) == value(before, in_flight)
    ttft = "parley_reply_ttft_seconds_count"
    assert value(after, ttft, endpoint="held") - value(before, ttft, endpoint="held") == 1


def test_sockets_open_follows_opened_and_closed(db: None) -> None:
    start = value(scrape(), "parley_sockets_open", kind="dashboard")
    metrics.socket_opened("dashboard")
    metrics.socket_opened("dashboard")
    metrics.socket_closed("dashboard")
    assert value(scrape(), "parley_sockets_open", kind="dashboard") == start + 1
    metrics.socket_closed("dashboard")
    assert value(scrape(), "parley_sockets_open", kind="dashboard") == start


@override_settings(WIDGET_RATE_LIMITS={"session:ip": (2, 60)})
def test_each_rate_limit_refusal_is_counted_under_its_limit(db: None) -> None:
    name = "parley_rate_limit_refusals_total"
    before = value(scrape(), name, limit="session:ip")
    client = "198.51.100.4"
    ratelimit.hit("session:ip", client)
    ratelimit.hit("session:ip", client)
    for _ in range(3):
        with pytest.raises(ratelimit.RateLimited):
            ratelimit.hit("session:ip", client)
    assert value(scrape(), name, limit="session:ip") - before == 3


# --- The database pool ------------------------------------------------------------------------


@pytest.mark.embedded
def test_without_a_pool_no_pool_metric_is_emitted(db: None) -> None:
    assert not any(name.startswith("parley_db_pool") for name, _ in scrape())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_postgresql_pool_reports_size_available_and_waiting() -> None:
    pytest.importorskip("psycopg_pool", reason="Django's pool needs psycopg[pool]")
    from django.db import connections

    wrapper = connections["default"]
    options = wrapper.settings_dict["OPTIONS"]
    had_pool = "pool" in options
    if not had_pool:
        wrapper.close()
        options["pool"] = {"min_size": 2, "max_size": 4}
    try:
        with wrapper.cursor() as cursor:  # opens the pool and borrows a connection
            cursor.execute("SELECT 1")
            samples = scrape()
    finally:
        if not had_pool:
            wrapper.close()
            wrapper.close_pool()
            del options["pool"]
    size = value(samples, "parley_db_pool_connections", state="size")
    assert size >= 1
    assert 0 <= value(samples, "parley_db_pool_connections", state="available") < size
    assert ("parley_db_pool_connections", frozenset({("state", "waiting")})) in samples


# --- Several workers on one port ------------------------------------------------------------------

WORKER = """
import sys, django
django.setup()
from chatbot.core import metrics
metrics.first_token("shared", 0.2)
metrics.reply_ended("shared", "complete", 1.5)
metrics.socket_opened("widget")
metrics.rate_limit_refused("send:ip")
"""


def test_with_a_multiprocess_directory_a_scrape_sums_the_workers(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    for _worker in range(2):
        subprocess.run([sys.executable, "-c", WORKER], env=env, check=True, cwd=settings.BASE_DIR)
    with override_settings(PROMETHEUS_MULTIPROC_DIR=str(directory)):
        samples = scrape()
    assert value(samples, "parley_reply_ttft_seconds_count", endpoint="shared") == 2
    assert (
        value(samples, "parley_reply_duration_seconds_count", endpoint="shared", outcome="complete")
        == 2
    )
    assert value(samples, "parley_rate_limit_refusals_total", limit="send:ip") == 2
    # Both workers have exited: their open sockets are not counted any more.
    assert value(samples, "parley_sockets_open", kind="widget") == 0
    # This process's own gauges are still there.
    assert ("parley_replies_in_flight", frozenset()) in samples
