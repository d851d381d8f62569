"""The usage meters in a real Chromium: drawn in light and dark mode and on a phone, the
full one in another colour than the others, and free of accessibility violations (axe)."""

from __future__ import annotations

from typing import Any

import pytest

from chatbot.billing.models import Plan
from chatbot.bots.actions import create_bot
from chatbot.tenants.models import User
from tests.analytics.test_browser import _log_in
from tests.fixtures.servers import LiveServer

from .test_meters import _plan, _used

pytestmark = [pytest.mark.browser]


@pytest.mark.usefixtures("live_db")
def test_the_meters_read_in_both_themes_and_on_a_phone(
    asgi_server: LiveServer, browser: Any, alice: User
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    tenant = alice.memberships.get().tenant
    _plan(tenant, monthly_messages=10, monthly_tokens=1000, max_bots=4)
    create_bot(tenant, alice, name="Helper", allowed_origins=["https://shop.example"])
    _used(tenant, 8, 1000)
    assert Plan.objects.count() == 1

    for scheme, viewport in (("light", (1200, 900)), ("dark", (390, 800))):
        context = browser.new_context(
            color_scheme=scheme, viewport={"width": viewport[0], "height": viewport[1]}
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            _log_in(page, asgi_server.url)
            meters = page.locator(".usage-card meter")
            assert meters.count() == 3  # replies, tokens, bots (members: no limit)
            box = meters.first.bounding_box()
            assert box is not None and 100 < box["width"] <= viewport[0]
            assert page.get_by_text("Nearly used up").count() == 1
            assert page.get_by_text("Limit reached").count() == 1

            def state_colour(key: str, page: Any = page) -> str:
                return page.evaluate(
                    "(id) => getComputedStyle(document.querySelector(`[id='h-usage-${id}']`)"
                    ".closest('li').querySelector('.badge') || document.body).color",
                    key,
                )

            # The words of each state have their own colour, apart from the page's text.
            body = page.evaluate("getComputedStyle(document.body).color")
            assert len({state_colour("replies"), state_colour("tokens"), body}) == 3
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            results = Axe().run(page, context={"include": [["main"]]})
            assert results.violations_count == 0, results.generate_report()
        finally:
            context.close()
