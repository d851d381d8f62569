"""`make run`'s demo host page: another origin, embedding the demo bot with its snippet."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from chatbot.bots.models import Bot
from chatbot.bots.snippets import embed_snippet
from chatbot.core.management.commands.serve import render_demo_host, serve_demo_host
from tests.fixtures.servers import free_port


@pytest.mark.django_db
def test_demo_host_page_embeds_the_demo_bot_with_exactly_the_tenants_snippet(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert render_demo_host() is None  # nothing seeded yet: no page
    call_command("seed_demo", "--port", "8000", stdout=open(os.devnull, "w"))  # noqa: SIM115
    bot = Bot.objects.get(tenant__slug="demo")
    page = render_demo_host()
    assert page is not None
    assert page.count("<script") == 2  # the snippet's two tags, nothing else
    assert embed_snippet(bot) in page

    port = free_port()
    served = serve_demo_host("127.0.0.1", port)
    assert served is not None
    url, server = served
    try:
        assert url == f"http://127.0.0.1:{port}/"
        answer = httpx.get(url)
        assert answer.status_code == 200 and answer.text == page
        assert httpx.get(url + "other").status_code == 404
    finally:
        server.shutdown()
        server.server_close()
    # seed_demo allowed the origin `make run` serves the page on (PORT + 1).
    assert bot.allows_origin("http://127.0.0.1:8001")

    # The platform's /demo points there while `serve --demo-port` runs, else 404.
    monkeypatch.delenv("PARLEY_DEMO_URL", raising=False)
    assert client.get("/demo").status_code == 404
    monkeypatch.setenv("PARLEY_DEMO_URL", url)
    response = client.get("/demo")
    assert response.status_code == 302 and response["Location"] == url
