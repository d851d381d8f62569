"""Fixtures for the widget's browser tests: host sites on their own origins, Acme's shop with
the widget embedded, model routes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chatbot.bots.actions import create_bot
from chatbot.tenants.models import Tenant, User
from tests.fixtures.servers import LiveServer

from .helpers import HostSite, Shop, embed_page, start_site


@pytest.fixture
def host_sites() -> Iterator[Callable[[], HostSite]]:
    started: list[HostSite] = []

    def make() -> HostSite:
        site = start_site()
        started.append(site)
        return site

    yield make
    for site in started:
        site.server.shutdown()
        site.server.server_close()


@pytest.fixture
def shop(
    live_db: None,
    asgi_server: LiveServer,
    acme: Tenant,
    alice: User,
    host_sites: Callable[[], HostSite],
    settings: Any,
) -> Shop:
    settings.SITE_URL = asgi_server.url
    site = host_sites()
    bot = create_bot(
        acme,
        alice,
        name="Acme Bikes assistant",
        greeting="Hi! Ask me about **repairs** and rentals.",
        suggested_questions=["Are you open on Sunday?", "How much is a full service?"],
        allowed_origins=[site.origin],
    )
    site.pages["/"] = embed_page(bot, asgi_server.url)
    return Shop(site=site, bot=bot, url=site.url("/"))
