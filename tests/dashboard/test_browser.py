"""Real-browser tests (headless Chromium against the real ASGI server)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail

from chatbot.tenants.models import Membership, Role
from tests.fixtures.servers import LiveServer

pytestmark = [pytest.mark.browser]


def _confirmation_link(email: str) -> str:
    for message in reversed(mail.outbox):
        if email in message.to:
            match = re.search(r"https?://\S+/accounts/confirm-email/\S+", message.body)
            if match:
                return match.group(0)
    raise AssertionError(f"no confirmation email to {email}: {[m.to for m in mail.outbox]}")


@pytest.mark.usefixtures("live_db")
def test_sign_up_verify_and_land_on_the_dashboard(asgi_server: LiveServer, page: Any) -> None:
    mail.outbox.clear()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(asgi_server.url + "/")
    page.get_by_role("link", name="Create a workspace").click()
    page.get_by_label("Workspace name").fill("Echo Bikes")
    page.get_by_label("Email").fill("erin@echo.test")
    page.get_by_label("Password").fill("erin rides bikes 42")
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url("**/accounts/confirm-email/")
    assert "Verify Your Email Address" in page.content() or "verification" in page.content().lower()

    # The server runs in this process: the locmem outbox holds the verification email.
    link = _confirmation_link("erin@echo.test")
    link = re.sub(r"^https?://[^/]+", asgi_server.url, link)
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/dashboard/")

    assert page.get_by_role("heading", level=1).inner_text() == "Echo Bikes"
    assert page.get_by_text("Create your first bot").is_visible()
    membership = Membership.objects.get(user__email="erin@echo.test")
    assert (membership.tenant.name, membership.role) == ("Echo Bikes", Role.OWNER)

    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"

    # Themes: the switch flips the colour scheme and remembers it across pages.
    before = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.locator("[data-theme-toggle]").first.click()
    after = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert before != after
    theme = page.evaluate("document.documentElement.dataset.theme")
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == theme
    # The dashboard's strict CSP blocks nothing the pages themselves need.
    assert not [line for line in console if "Content Security Policy" in line], console


@pytest.mark.usefixtures("live_db")
def test_the_sidebar_folds_into_a_menu_on_a_phone(
    asgi_server: LiveServer, browser: Any, alice: Any
) -> None:
    from tests.fixtures.personas import PASSWORD

    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(asgi_server.url + "/accounts/login/")
        page.get_by_label("Email").fill("alice@acme.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign In").click()
        page.wait_for_url("**/dashboard/")
        team_link = page.get_by_role("link", name="Team", exact=True)
        assert not team_link.is_visible()
        menu = page.get_by_role("button", name="Menu")
        menu.click()
        assert menu.get_attribute("aria-expanded") == "true"
        assert team_link.is_visible()
        page.keyboard.press("Escape")
        assert not team_link.is_visible()
    finally:
        context.close()


@pytest.mark.usefixtures("live_db")
def test_revoking_a_key_updates_the_list_in_place(
    asgi_server: LiveServer, page: Any, alice: Any
) -> None:
    from chatbot.tenants import actions
    from chatbot.tenants.models import ApiKey
    from tests.fixtures.personas import PASSWORD

    key, _secret = actions.create_api_key(Membership.objects.get(user=alice), "Old CRM", "read")
    page.goto(asgi_server.url + "/accounts/login/")
    page.get_by_label("Email").fill("alice@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")
    page.get_by_role("link", name="API keys").click()
    page.wait_for_url("**/dashboard/keys/")
    page.evaluate("window.__stillTheSamePage = true")
    questions: list[str] = []

    def accept(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.get_by_role("button", name="Revoke").click()
    page.get_by_text("revoked", exact=False).first.wait_for()
    assert questions == ["Revoke Old CRM? Anything using it stops working at once."]
    assert page.evaluate("window.__stillTheSamePage === true")  # no full reload
    assert "is revoked; it stops working now" in page.locator(".flashes").inner_text()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=False).exists()
