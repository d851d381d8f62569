"""The analytics charts in a real Chromium: drawn, readable in dark mode and on a phone, and
free of accessibility violations (axe-core)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from chatbot.analytics import rollup
from chatbot.analytics.tasks import today_for
from chatbot.bots.models import Bot
from chatbot.tenants.models import User
from tests.fixtures.servers import LiveServer

from .test_rollup import _action_traffic, _traffic

pytestmark = [pytest.mark.browser]


def _log_in(page: Any, url: str) -> None:
    from tests.fixtures.personas import PASSWORD

    page.goto(url + "/accounts/login/")
    page.get_by_label("Email").fill("alice@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")


def _colours(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return len(set(image.get_flattened_data()))


@pytest.mark.usefixtures("live_db")
def test_the_charts_render_readably_and_accessibly(
    asgi_server: LiveServer, browser: Any, alice: User, charlie: User
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    bot = Bot.objects.create(tenant=alice.memberships.get().tenant, name="Acme help")
    _traffic(bot, charlie)
    _action_traffic(bot)
    rollup.roll_up(bot.tenant, today_for(bot.tenant))

    for scheme, viewport in (("light", (1200, 900)), ("dark", (390, 800))):
        context = browser.new_context(
            color_scheme=scheme, viewport={"width": viewport[0], "height": viewport[1]}
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        console: list[str] = []
        page.on("console", lambda message, seen=console: seen.append(message.text))
        try:
            _log_in(page, asgi_server.url)
            page.goto(asgi_server.url + "/analytics/?days=7")
            charts = page.locator("svg.chart")
            assert charts.count() == 5  # with the actions' stacked bars
            first = charts.first
            box = first.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 60
            assert box["width"] <= viewport[0]  # fits a phone's width: no sideways scrolling
            # Drawn, not blank: the lines, labels and grid give many colours.
            assert _colours(first.screenshot()) > 10
            # The series colour stands apart from the page in both themes.
            line = page.evaluate("getComputedStyle(document.querySelector('.chart-line')).stroke")
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert line not in ("none", background)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), (
                "the page scrolls sideways"
            )
            results = Axe().run(page, context={"include": [["main"]]})
            assert results.violations_count == 0, results.generate_report()
            assert not [c for c in console if "Content Security Policy" in c], console
        finally:
            context.close()
