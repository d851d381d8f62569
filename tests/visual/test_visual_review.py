"""The visual review: every dashboard page and the widget's states, at desktop and phone
sizes, in light and dark, screenshotted and checked in Chromium for sideways overflow and
colour contrast (axe-core, vendored in tests/fixtures/vendor/axe-core, never shipped).

Screenshots go to PARLEY_SCREENSHOTS (a directory) when set, else to pytest's tmp_path.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from chatbot.analytics import rollup
from chatbot.analytics.tasks import today_for
from chatbot.billing import actions as billing
from chatbot.billing import meter
from chatbot.billing.models import Plan
from chatbot.conversations import actions, takeover
from chatbot.conversations.models import CannedResponse, Conversation, MessageStatus
from chatbot.installs.actions import record_sighting
from chatbot.knowledge.models import Source
from chatbot.tenants.models import Membership, User
from tests.fixtures.servers import LiveServer
from tests.inbox.helpers import chat
from tests.widget.browser.conftest import host_sites, shop  # noqa: F401 (fixtures)
from tests.widget.browser.helpers import Shop, open_widget

pytestmark = pytest.mark.browser

VENDOR = Path(__file__).resolve().parent.parent / "fixtures" / "vendor" / "axe-core"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 800}}
SCHEMES = ("light", "dark")

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')].filter((el) => {
    const box = el.getBoundingClientRect();
    if (!box.width || getComputedStyle(el).visibility === 'hidden') return false;
    // Inside a scrolling box (a wide table, code) is fine: the box scrolls, not the page.
    for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return false;
    }
    return box.right > width + 1 || box.left < -1;
  });
  return {scroll: document.documentElement.scrollWidth - width,
          wide: wide.slice(0, 5).map((el) => el.tagName + '.' + el.className + ' ' +
                                       (el.textContent || '').trim().slice(0, 40))};
}"""

CONTRAST = """async () => {
  const result = await axe.run(document, {runOnly: {type: 'rule', values: ['color-contrast']},
                                          resultTypes: ['violations']});
  return result.violations.flatMap((v) => v.nodes.map((n) => n.target.join(' ') + ': ' +
                                                            n.failureSummary.split('\\n').pop()));
}"""


def axe_source() -> str:
    source = (VENDOR / "axe.min.js").read_bytes()
    assert hashlib.sha256(source).hexdigest() == AXE_SHA256, "vendored axe-core changed"
    return source.decode()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("PARLEY_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


def review(
    page: Any, name: str, shots: Path, axe: str, problems: list[str], frame: Any = None
) -> None:
    """Screenshot the page as it is, then note overflow and contrast problems (of `frame`
    when given: the widget's frame inside the host page)."""
    page.wait_for_load_state("load")
    page.screenshot(path=str(shots / f"{name}.png"), full_page=frame is None)
    page = frame or page
    overflow = page.evaluate(OVERFLOW)
    if overflow["scroll"] > 1 or overflow["wide"]:
        problems.append(f"{name}: sideways overflow {overflow}")
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(axe)
    problems += [f"{name}: contrast {v}" for v in page.evaluate(CONTRAST)]


def seed(acme_shop: Shop, charlie: User) -> dict[str, str]:
    """A workspace with something on every page; returns the pages' paths."""
    bot = acme_shop.bot
    Source.objects.create(bot=bot, kind="text", title="Opening hours", body="9 to 5, Mon-Sat")
    record_sighting(bot, acme_shop.site.origin, acme_shop.site.origin + "/")
    CannedResponse.objects.create(tenant=bot.tenant, shortcut="hours", text="We open at 9.")
    chat(bot, "Do you repair **carbon** frames? My bike is a very-long-model-name-without-spaces")
    failed = chat(bot, "Where is my order?", reply=None)
    reply = actions.create_reply_message(failed.pk)
    assert reply is not None
    actions.finish_reply(reply.pk, text="", status=MessageStatus.FAILED, error_code="connect")
    waiting = chat(bot, "Can I talk to a person?", reply=None)
    with_agent = chat(bot, "I need help with a return")
    takeover.take_over(with_agent, charlie)
    takeover.agent_reply(with_agent, charlie, "Happy to help with **returns**.")
    # A plan with one allowance nearly used and one used up: every meter state is drawn.
    plan = Plan.objects.create(name="Starter", monthly_messages=10, monthly_tokens=100, max_bots=3)
    billing.set_plan(bot.tenant, plan, None)
    meter.reconcile(bot.tenant_id, meter.month_of(), 8, 120)
    rollup.roll_up(bot.tenant, today_for(bot.tenant))
    return {
        "home": "/dashboard/",
        "team": "/dashboard/team/",
        "keys": "/dashboard/keys/",
        "audit": "/dashboard/audit/",
        "settings": "/dashboard/settings/",
        "bots": "/bots/",
        "bot-new": "/bots/new",
        "bot": f"/bots/{bot.pk}/",
        "install-check": f"/installs/{bot.pk}/check",
        "install-guides": f"/installs/{bot.pk}/guides",
        "inbox": "/conversations/",
        "conversation-waiting": f"/conversations/{waiting.public_id}/",
        "conversation-agent": f"/conversations/{with_agent.public_id}/",
        "canned": "/conversations/canned/",
        "knowledge": "/knowledge/",
        "endpoints": "/llm/endpoints/",
        "usage": "/usage/",
        "analytics": "/analytics/?days=7",
        "profile": "/accounts/profile/",
        "not-found": "/no/such/page",
    }


def test_every_dashboard_page_fits_and_reads_at_every_size_and_theme(
    browser: Any,
    shop: Shop,  # noqa: F811
    asgi_server: LiveServer,
    alice: User,
    charlie: User,
    shots: Path,
) -> None:
    pages = seed(shop, charlie)
    axe = axe_source()
    client = Client()
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    cookie = client.cookies["sessionid"]
    problems: list[str] = []
    started = time.monotonic()
    for size, viewport in SIZES.items():
        for scheme in SCHEMES:
            context = browser.new_context(viewport=viewport, color_scheme=scheme, bypass_csp=True)
            context.add_cookies(
                [{"name": cookie.key, "value": cookie.value, "url": asgi_server.url}]
            )
            page = context.new_page()
            page.set_default_timeout(15_000)
            for name, path in pages.items():
                page.goto(asgi_server.url + path)
                review(page, f"{name}-{size}-{scheme}", shots, axe, problems)
                if name == "bot":
                    # The accent colour is a swatch one can see, not a collapsed grey line.
                    swatch = page.locator("input[type=color]").bounding_box()
                    if not swatch or swatch["width"] < 40 or swatch["height"] < 30:
                        problems.append(f"bot-{size}-{scheme}: colour input {swatch}")
            context.close()
    print(
        f"visual review: {len(pages) * 4} dashboard screenshots in {shots} "
        f"({time.monotonic() - started:.1f} s)"
    )
    assert not problems, "\n".join(problems)
    assert Membership.objects.filter(user=alice).exists()


def test_the_widget_states_fit_and_read_at_every_size_and_theme(
    browser: Any,
    shop: Shop,  # noqa: F811
    charlie: User,
    shots: Path,
) -> None:
    axe = axe_source()
    problems: list[str] = []
    for size, viewport in SIZES.items():
        for scheme in SCHEMES:
            context = browser.new_context(viewport=viewport, color_scheme=scheme, bypass_csp=True)
            page = context.new_page()
            page.set_default_timeout(15_000)
            frame = open_widget(page, shop.url)
            # No model: the "assistant unavailable" banner, the greeting and suggestions.
            frame.wait_for_function("() => !document.getElementById('banner').hidden")
            review(page, f"widget-offline-{size}-{scheme}", shots, axe, problems, frame)
            frame.fill("#input", "Can I talk to a person?")
            frame.press("#input", "Enter")
            frame.wait_for_selector("#log .msg.system", state="attached")
            review(page, f"widget-waiting-{size}-{scheme}", shots, axe, problems, frame)
            conversation = Conversation.objects.filter(visitor__bot=shop.bot).latest("pk")
            takeover.take_over(conversation, charlie)
            takeover.agent_reply(conversation, charlie, "Hello! **Charlie** here.")
            frame.wait_for_selector("#log .msg.agent", state="attached")
            review(page, f"widget-agent-{size}-{scheme}", shots, axe, problems, frame)
            takeover.close(conversation, charlie)
            frame.wait_for_function("() => document.getElementById('composer-row').hidden")
            review(page, f"widget-closed-{size}-{scheme}", shots, axe, problems, frame)
            context.close()
    assert not problems, "\n".join(problems)
