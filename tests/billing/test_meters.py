"""The usage meters on the dashboard's home and the Usage page: the month's numbers against
the plan as text and as <meter>, the state at 80% and 100% in words, and what to do."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from chatbot.billing import actions as billing
from chatbot.billing import meter
from chatbot.billing.models import Plan
from chatbot.bots.actions import create_bot
from chatbot.knowledge import actions as knowledge
from chatbot.knowledge.models import Document
from chatbot.tenants.actions import invite_member
from chatbot.tenants.models import Tenant, User

pytestmark = pytest.mark.django_db


def _plan(tenant: Tenant, **limits: Any) -> Plan:
    plan = Plan.objects.create(name="Starter", **limits)
    billing.set_plan(tenant, plan, None)
    return plan


def _used(tenant: Tenant, replies: int, tokens: int) -> None:
    """This month's counters, as the periodic task restores them from the messages."""
    assert meter.reconcile(tenant.pk, meter.month_of(), replies, tokens)


def _row(page: str, key: str) -> str:
    """The HTML of one meter (its <li>) on the home page."""
    match = re.search(
        rf'<li class="meter-row meter-\w+">\s*<span class="meter-head">\s*'
        rf'<span id="h-usage-{key}">.*?</li>',
        page,
        re.S,
    )
    assert match, f"no {key} meter"
    return match.group(0)


def _text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


@pytest.fixture
def starter(acme: Tenant, alice: User, charlie: User) -> Plan:
    """Acme on a plan, one bot with 1.5 MB of knowledge, alice and charlie as members."""
    plan = _plan(
        acme,
        monthly_messages=10,
        monthly_tokens=1000,
        max_bots=2,
        max_seats=5,
        max_knowledge_mb=2,
    )
    bot = create_bot(acme, alice, name="Helper", allowed_origins=["https://shop.example"])
    source = knowledge.add_text(bot, title="Manual", text="Opening hours: 9 to 5.")
    Document.objects.create(source=source, key="text", title="Manual", chars=1536 * 1024)
    return plan


def test_home_shows_the_months_usage_against_the_plan(
    starter: Plan, acme: Tenant, alice: User, client_for: Any
) -> None:
    _used(acme, 5, 250)
    page = client_for(alice).get("/dashboard/").content.decode()
    assert "Usage this month" in page and "<strong>Starter</strong>" in page
    replies = _row(page, "replies")
    assert "Bot replies this month 5 of 10 (50%)" in _text(replies)
    assert 'max="10"' in replies and 'value="5"' in replies and 'optimum="0"' in replies
    # The meter is named by its label and its numbers (screen readers read both).
    assert 'aria-labelledby="h-usage-replies h-usage-replies-n"' in replies
    assert "Model tokens this month 250 of 1,000 (25%)" in _text(_row(page, "tokens"))
    assert "Bots 1 of 2 (50%)" in _text(_row(page, "bots"))
    assert "Members and pending invitations 2 of 5 (40%)" in _text(_row(page, "seats"))
    # A pending invitation takes a seat, as the plan's check counts it.
    invite_member(alice.memberships.get(), "dora@acme.test", "agent")
    page = client_for(alice).get("/dashboard/").content.decode()
    assert "Members and pending invitations 3 of 5 (60%)" in _text(_row(page, "seats"))
    assert "Knowledge (text kept) 1.50 MB of 2 MB (75%)" in _text(_row(page, "knowledge"))
    assert "meter-near" not in page and "meter-full" not in page
    assert "Nearly used up" not in page and "Limit reached" not in page
    assert 'href="/usage/"' in page

    # The Usage page shows the same meters.
    usage = client_for(alice).get("/usage/").content.decode()
    assert "5 of 10 (50%)" in usage and "1.50 MB of 2 MB (75%)" in usage


def test_a_french_reader_gets_french_numbers_units_and_dates(
    starter: Plan, acme: Tenant, alice: User, client_for: Any
) -> None:
    _used(acme, 5, 1250)
    client = client_for(alice)
    page = client.get("/usage/", headers={"accept-language": "fr"}).content.decode()
    text = _text(page)
    assert "1,50 Mo" in text and "2 Mo" in text  # not "1.50 MB"
    assert "1\u202f250" in text or "1 250" in text or "1\xa0250" in text  # grouped the French way
    assert re.search(r"\b01/\d\d/20\d\d\b", text), "the reset date in French short form"


def test_the_meters_cost_home_three_queries(starter: Plan, acme: Tenant) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chatbot.billing.usage import tenant_usage

    # Home passes the bots and members it counted already.
    with CaptureQueriesContext(connection) as captured:
        usage = tenant_usage(acme, bots=1, seats=2)
    # The account with its plan, the pending invitations, the knowledge size.
    assert len(captured.captured_queries) == 3
    assert [m.used for m in usage.meters] == [0, 0, 1, 2, 1536 * 1024]


def test_at_80_and_100_percent_the_meter_says_so_and_what_to_do(
    starter: Plan, acme: Tenant, alice: User, client_for: Any, settings: Any
) -> None:
    _used(acme, 8, 1200)  # the last reply overshot the token allowance
    create_bot(acme, alice, name="Second", allowed_origins=["https://shop.example"])
    page = client_for(alice).get("/dashboard/").content.decode()

    replies = _row(page, "replies")
    assert 'class="meter-row meter-near"' in replies
    assert "8 of 10 (80%) Nearly used up At the limit the bots stop answering" in _text(replies)
    assert "Ask the platform's operator for a larger plan." in _text(replies)
    assert '<a href="/usage/">See your plan</a>' in replies

    tokens = _row(page, "tokens")
    assert 'class="meter-row meter-full"' in tokens
    assert "1,200 of 1,000 (120%) Limit reached The bots no longer answer visitors" in _text(tokens)
    # The reason heads the card, announced.
    assert 'aria-labelledby="h-usage" role="alert"' in page
    assert "monthly limit is reached" in page

    bots = _row(page, "bots")
    assert "2 of 2 (100%) Limit reached No more bots can be added" in _text(bots)
    assert '<a href="/bots/">Manage bots</a>' in bots
    # Knowledge and seats are below 80%: no state, no advice.
    assert "Limit reached" not in _row(page, "seats") + _row(page, "knowledge")

    # With the operator's contact set, the monthly meters link to it.
    settings.PLAN_CONTACT_URL = "mailto:sales@parley.example"
    page = client_for(alice).get("/dashboard/").content.decode()
    assert '<a href="mailto:sales@parley.example">Ask for a larger plan</a>' in _row(page, "tokens")
    assert "operator" not in _text(_row(page, "tokens"))


def test_without_a_plan_the_meters_show_use_without_limits(
    acme: Tenant, alice: User, client_for: Any
) -> None:
    _used(acme, 3, 40)
    page = client_for(alice).get("/dashboard/").content.decode()
    assert "no plan (unlimited)" in page
    assert "Bot replies this month 3 (no limit)" in _text(_row(page, "replies"))
    assert "<meter" not in page


def test_agents_do_not_see_the_meters(starter: Plan, charlie: User, client_for: Any) -> None:
    page = client_for(charlie).get("/dashboard/").content.decode()
    assert "Usage this month" not in page and "<meter" not in page


def test_a_suspended_workspace_is_told_on_home(
    starter: Plan, acme: Tenant, alice: User, client_for: Any
) -> None:
    billing.suspend(acme, None, "Unpaid invoice")
    page = client_for(alice).get("/dashboard/").content.decode()
    assert 'aria-labelledby="h-usage" role="alert"' in page
    assert "The workspace is suspended by the platform&#39;s operator" in page
