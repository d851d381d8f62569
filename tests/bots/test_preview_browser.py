"""The bot edit page in a real Chromium: the live preview follows the form; copy the snippet."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from chatbot.bots.models import Bot
from chatbot.tenants.models import Tenant, User
from tests.fixtures.servers import LiveServer

pytestmark = pytest.mark.browser


def log_in(page: Any, user: User, server: LiveServer) -> None:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": server.url}])


def test_the_preview_follows_the_form_and_the_snippet_copies(
    page: Any,
    live_db: None,
    asgi_server: LiveServer,
    acme: Tenant,
    alice: User,
    settings: Any,
) -> None:
    settings.SITE_URL = asgi_server.url
    bot = Bot.objects.create(
        tenant=acme, name="Acme help", title="Acme desk", allowed_origins=["https://a.test"]
    )
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=asgi_server.url)
    log_in(page, alice, asgi_server)
    page.goto(f"{asgi_server.url}/bots/{bot.pk}/")

    preview = page.frame_locator("#bot-preview")
    title = preview.locator("#title")
    title.wait_for()
    assert title.inner_text() == "Acme desk"
    page.fill("#id_title", "Live title")
    page.wait_for_function(
        "() => document.getElementById('bot-preview').contentDocument"
        ".getElementById('title').textContent === 'Live title'"
    )
    # Nothing was saved by typing.
    bot.refresh_from_db()
    assert bot.title == "Acme desk"

    page.click("[data-copy-snippet=snippet]")
    page.wait_for_function("() => document.getElementById('copy-status').textContent !== ''")
    assert page.inner_text("#copy-status") == "Copied."
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.input_value("#snippet")
    assert f'key: "{bot.public_key}"' in copied
    assert f'src="{asgi_server.url}/widget.js"' in copied


def test_a_manager_can_chat_in_the_preview(
    page: Any,
    live_db: None,
    asgi_server: LiveServer,
    acme: Tenant,
    alice: User,
    settings: Any,
) -> None:
    from chatbot.conversations.models import Message

    settings.SITE_URL = asgi_server.url
    bot = Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=["https://a.test"])
    log_in(page, alice, asgi_server)
    page.goto(f"{asgi_server.url}/bots/{bot.pk}/")
    preview = page.frame_locator("#bot-preview")
    preview.locator("#input").fill("Does the preview talk?")
    preview.locator("#input").press("Enter")
    # The message is stored (the preview's session is accepted), and with no model connected
    # the assistant's reply ends in the "assistant offline" state rather than an error banner.
    preview.locator(".msg.visitor", has_text="Does the preview talk?").wait_for()
    preview.locator(".msg.assistant .state").wait_for()
    assert Message.objects.filter(
        conversation__bot=bot, role="visitor", text="Does the preview talk?"
    ).exists()
